// Go-style durations (`24h`, `90m`, `1h30m`, `1.5s`), the syntax flannel,
// etcd and Kubernetes users already write, as milliseconds.

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

// Go's grammar: an optional sign, then one or more decimal-number+unit pairs; a bare "0" is allowed.
const DURATION = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/
const PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/g

/** Milliseconds, or undefined when `s` is not a Go duration. */
export function tryParseDuration(s: string): number | undefined {
  if (s === '0' || s === '+0' || s === '-0') return 0
  if (!DURATION.test(s)) return undefined
  let ms = 0
  for (const [, num, unit] of s.matchAll(PART)) ms += Number(num) * UNIT_MS[unit!]!
  // `1.1s` is 1100.0000000000002 ms in binary floating point; nanoseconds are Go's resolution
  ms = Math.round(ms * 1e6) / 1e6
  return s.startsWith('-') ? -ms : ms
}

/** Milliseconds; throws a RangeError naming the bad input. */
export function parseDuration(s: string): number {
  const ms = tryParseDuration(s)
  if (ms === undefined) {
    throw new RangeError(`invalid duration ${JSON.stringify(s)}: expected e.g. 24h, 90m, 1h30m or 30s`)
  }
  return ms
}

/** Shortest Go-style spelling of whole milliseconds: 86400000 -> `24h`, 5400000 -> `1h30m`, 0 -> `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  let rest = Math.round(Math.abs(ms))
  let out = ms < 0 ? '-' : ''
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) out += `${n}${unit}`
    rest -= n * size
  }
  return out
}
