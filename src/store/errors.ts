// Typed errors of the store, shaped like the Kubernetes API server's so
// callers can `instanceof` them and users read a one-line reason.
export class StoreError extends Error {
  override name = 'StoreError'
}

export class NotFoundError extends StoreError {
  override name = 'NotFoundError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`${kind} "${objectName}" not found`)
  }
}

export class AlreadyExistsError extends StoreError {
  override name = 'AlreadyExistsError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`${kind} "${objectName}" already exists`)
  }
}

/** The object changed since it was read (compare-and-swap lost). */
export class ConflictError extends StoreError {
  override name = 'ConflictError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`Operation cannot be fulfilled on ${kind} "${objectName}": the object has been modified; please apply your changes to the latest version and try again`)
  }
}

/** etcd could not be reached or did not answer in time. */
export class UnavailableError extends StoreError {
  override name = 'UnavailableError'
  constructor(readonly endpoints: string[], cause: unknown) {
    super(`cannot reach etcd at ${endpoints.join(',')}: ${describeCause(cause)}`, { cause })
  }
}

function describeCause(cause: unknown): string {
  const msg = cause instanceof Error ? cause.message : String(cause)
  // grpc messages carry a code prefix and a resolver note that says nothing to a user
  return msg.split('\n')[0]!.replace(/^\d+ [A-Z_]+: /, '').replace(/\.?\s*Resolution note:.*$/, '')
}
