// The resource kinds' public surface: types and schemas, validation, defaults,
// and the generated CRDs. IPv4 arithmetic lives apart, in src/net/cidr.ts.
export * from './meta.js'
export * from './overlayconfig.js'
export * from './hostlease.js'
export * from './network.js'
export * from './kinds.js'
export * from './errors.js'
export * from './duration.js'
export * from './validation.js'
export * from './defaults.js'
export * from './resolve.js'
