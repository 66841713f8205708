// Status conditions, Kubernetes' meta.SetStatusCondition semantics:
// lastTransitionTime moves only when status flips, so "since when" stays
// truthful across the many reconciles that merely confirm it; reason, message
// and observedGeneration always reflect the latest look. Pure functions that
// return new arrays, so a caller can compare before/after and skip writes
// that would change nothing.
import { isDeepStrictEqual } from 'node:util'
import type { Condition } from '../crds/meta.js'

export type ConditionStatus = Condition['status']

export interface ConditionInput {
  type: string
  status: ConditionStatus
  /** CamelCase, machine-readable: `Acquired`, `SubnetsExhausted` */
  reason: string
  /** one human sentence */
  message: string
  observedGeneration?: number
}

/** RFC 3339 at second precision, as Kubernetes writes times. */
export function timestamp(now: Date = new Date()): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z')
}

/** Set (add or update) one condition; existing order is kept, new types are appended. */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, now: Date = new Date()): Condition[] {
  const list = [...(conditions ?? [])]
  const i = list.findIndex((c) => c.type === input.type)
  const prev = i >= 0 ? list[i] : undefined
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: prev && prev.status === input.status ? prev.lastTransitionTime : timestamp(now),
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
  }
  if (i >= 0) list[i] = next
  else list.push(next)
  return list
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type)
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type)
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True'
}

/** True when writing `b` over `a` would change nothing. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  return isDeepStrictEqual(a ?? [], b ?? [])
}

/**
 * Whether `b` tells a reader of the status something `a` does not: a
 * condition's status or reason changed, one came or went, or it now speaks of
 * another generation of the spec. A message, a count in it or a time moving
 * alone is not such a change (the host status writer skips those writes).
 */
export function conditionsTransitioned(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const gist = (list: readonly Condition[] | undefined) => (list ?? []).map((c) => [c.type, c.status, c.reason, c.observedGeneration])
  return !isDeepStrictEqual(gist(a), gist(b))
}
