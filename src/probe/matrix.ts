// `weftctl check`'s answer as pure logic: every ordered pair of live hosts of
// one overlay, judged by the first host's own report. A pair is reachable when
// the prober has a fresh report that does not name the peer; unreachable when
// it names it; unknown when the prober has no fresh report (its agent is down,
// stalled, still starting, or its key is not a valid report), or when the peer's
// lease is too young for the prober to have judged it (NEW_PEER_VERDICT_MS).
import type { HostLease } from '../crds/index.js'
import { byName } from '../crds/meta.js'
import type { InvalidReportError, ReachabilityReport } from './report.js'
import { NEW_PEER_VERDICT_MS } from './schedule.js'

export type PairVerdict = 'reachable' | 'unreachable' | 'unknown'

export interface PairProblem {
  from: string
  to: string
  verdict: Exclude<PairVerdict, 'reachable'>
  why: string
}

export interface Matrix {
  hosts: number
  pairs: number
  reachable: number
  /** the pairs that are not reachable, in (from, to) name order */
  problems: PairProblem[]
}

export function reachabilityMatrix(leases: readonly HostLease[], reports: ReadonlyMap<string, ReachabilityReport | InvalidReportError>, now = Date.now()): Matrix {
  const byOverlay = new Map<string, HostLease[]>()
  for (const l of [...leases].sort(byName)) {
    const list = byOverlay.get(l.spec.overlay) ?? []
    list.push(l)
    byOverlay.set(l.spec.overlay, list)
  }
  const m: Matrix = { hosts: leases.length, pairs: 0, reachable: 0, problems: [] }
  for (const [overlay, members] of byOverlay) {
    for (const a of members) {
      const from = a.metadata.name
      const report = reports.get(from)
      const fresh = report && !(report instanceof Error) && report.overlay === overlay ? report : undefined
      const stale =
        report === undefined
          ? `${from} has no fresh report: its agent is down, stalled or still starting`
          : report instanceof Error
            ? `${from}'s report is invalid: ${report.message}`
            : `${from}'s report is about overlay "${report.overlay}", not "${overlay}"`
      for (const b of members) {
        const to = b.metadata.name
        if (to === from) continue
        m.pairs++
        const age = now - Date.parse(b.metadata.creationTimestamp ?? '')
        if (!fresh) m.problems.push({ from, to, verdict: 'unknown', why: stale })
        else if (fresh.unreachable[to] !== undefined) m.problems.push({ from, to, verdict: 'unreachable', why: fresh.unreachable[to]! })
        else if (age < NEW_PEER_VERDICT_MS) m.problems.push({ from, to, verdict: 'unknown', why: `${to}'s lease is ${Math.max(0, Math.round(age / 1000))} s old: ${from}'s probes may not have judged it yet` })
        else m.reachable++
      }
    }
  }
  m.problems.sort((x, y) => (x.from === y.from ? cmp(x.to, y.to) : cmp(x.from, y.from)))
  return m
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

export function formatProblem(p: PairProblem): string {
  return `${p.from} -> ${p.to}: ${p.verdict} (${p.why})`
}

export function formatSummary(m: Matrix): string {
  return `${m.hosts} hosts, ${m.reachable}/${m.pairs} pairs reachable`
}

/** What `weftctl describe hostlease H` would list: the peers H's own probes cannot reach. */
export function unreachablePeersOf(host: string, matrix: Matrix): PairProblem[] {
  return matrix.problems.filter((p) => p.from === host)
}
