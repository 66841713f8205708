// The reachability report: what one host's probes found, one etcd key per
// host, `<prefix>/check/reachability/<host>`, outside every kind's prefix and
// sorted before them all (`check` < `hostleases`), so it is outside the one
// range an agent watches (store/watch-group.ts) and no report write wakes an
// agent. Its value changes only when the set of
// unreachable peers (or why) changes; its freshness is the etcd lease it is
// bound to, which the agent keeps alive only while its probe rounds complete,
// so a stalled or dead agent's report vanishes on its own (publisher.ts).
import { normalizePrefix } from '../store/keys.js'

export const REPORT_TTL_SECONDS = 30

export interface ReachabilityReport {
  host: string
  overlay: string
  /** the backend the probes went through */
  backend: string
  /** the peers that answered none of the last probes, by name, with why */
  unreachable: Record<string, string>
}

export function reportPrefix(prefix: string): string {
  return `${normalizePrefix(prefix)}/check/reachability/`
}

/** Where agents before the one-range watch published (inside that range): read by `weftctl check` while a fleet upgrades. */
export function legacyReportPrefix(prefix: string): string {
  return `${normalizePrefix(prefix)}/reachability/`
}

export function reportKey(prefix: string, host: string): string {
  return reportPrefix(prefix) + host
}

export function encodeReport(r: ReachabilityReport): string {
  const unreachable = Object.fromEntries(Object.keys(r.unreachable).sort().map((k) => [k, r.unreachable[k]!]))
  return JSON.stringify({ host: r.host, overlay: r.overlay, backend: r.backend, unreachable })
}

/** A report key written by hand (or by another version) as the agent would; otherwise an error naming the key and the field. */
export class InvalidReportError extends Error {
  override name = 'InvalidReportError'
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`${key}: ${detail}`)
  }
}

export function decodeReport(key: string, value: string): ReachabilityReport {
  let v: unknown
  try {
    v = JSON.parse(value)
  } catch {
    throw new InvalidReportError(key, 'holds no JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidReportError(key, 'is not a JSON object')
  const o = v as Record<string, unknown>
  for (const f of ['host', 'overlay', 'backend'] as const) {
    if (typeof o[f] !== 'string' || o[f] === '') throw new InvalidReportError(key, `${f}: must be a non-empty string`)
  }
  const u = o.unreachable
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new InvalidReportError(key, 'unreachable: must be an object of peer name to reason')
  for (const [peer, reason] of Object.entries(u)) {
    if (typeof reason !== 'string') throw new InvalidReportError(key, `unreachable.${peer}: must be a string`)
  }
  const name = key.slice(key.lastIndexOf('/') + 1)
  if (o.host !== name) throw new InvalidReportError(key, `host: ${JSON.stringify(o.host)} is not the key's host "${name}"`)
  return { host: o.host as string, overlay: o.overlay as string, backend: o.backend as string, unreachable: { ...(u as Record<string, string>) } }
}
