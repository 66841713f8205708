// When a lease is renewed. flannel renews 60 minutes before a 24 h lease
// expires; that margin is absurd for the short TTLs tests and small labs use,
// so below 2 h the lease is renewed at half its TTL instead. Either way one
// missed renewal (etcd briefly away) still leaves time for the next.
const HOUR_MS = 3_600_000

export function renewMarginMs(ttlMs: number): number {
  return ttlMs >= 2 * HOUR_MS ? HOUR_MS : ttlMs / 2
}

/** etcd leases count whole seconds. */
export function ttlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000))
}

/** How long until the lease should be renewed, given the seconds etcd says it has left. */
export function renewInMs(remainingSeconds: number, ttlMs: number): number {
  return Math.max(0, remainingSeconds * 1000 - renewMarginMs(ttlMs))
}
