// The table of weft's kinds: how users name them (kubectl-style) and where
// they live in etcd. Everything else about a kind hangs off its schema.
import type { TSchema } from '@sinclair/typebox'
import { HostLeaseSchema, type HostLease } from './hostlease.js'
import { NetworkSchema, type Network } from './network.js'
import { OverlayConfigSchema, type OverlayConfig } from './overlayconfig.js'

export type KindName = 'OverlayConfig' | 'HostLease' | 'Network'
export type AnyResource = OverlayConfig | HostLease | Network
export type ResourceOf<K extends KindName> = Extract<AnyResource, { kind: K }>

export interface KindInfo {
  kind: KindName
  /** lower-case singular, used in `kind/name` output */
  singular: string
  /** lower-case plural, also the etcd key segment */
  plural: string
  short: string
  schema: TSchema
  /** Docker allows `_` in network names, Kubernetes names do not */
  namePattern: RegExp
}

const DNS_LIKE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/
const DOCKER_LIKE = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/

export const KINDS: Record<KindName, KindInfo> = {
  OverlayConfig: { kind: 'OverlayConfig', singular: 'overlayconfig', plural: 'overlayconfigs', short: 'oc', schema: OverlayConfigSchema, namePattern: DNS_LIKE },
  HostLease: { kind: 'HostLease', singular: 'hostlease', plural: 'hostleases', short: 'hl', schema: HostLeaseSchema, namePattern: DNS_LIKE },
  Network: { kind: 'Network', singular: 'network', plural: 'networks', short: 'net', schema: NetworkSchema, namePattern: DOCKER_LIKE },
}

export const KIND_LIST: readonly KindInfo[] = Object.values(KINDS)

/** Resolve what a user typed (`oc`, `hostleases`, `Network`) to a kind, or undefined. */
export function lookupKind(typed: string): KindInfo | undefined {
  const t = typed.toLowerCase()
  return KIND_LIST.find((k) => t === k.singular || t === k.plural || t === k.short)
}
