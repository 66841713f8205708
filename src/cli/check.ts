// `weftctl check` (DESIGN.md §4): which pairs of live hosts reach each other
// over the overlay, from every host's own probes through its data path. A live
// host is one with a HostLease; its view is its reachability report
// (src/probe/report.ts), which exists only while its agent's probe rounds
// complete, so a report that is there is fresh (within 30 s). One read of the
// leases, one of the reports: nothing is written, nothing waits on the agents.
//
// Exit status: 0 every pair reachable, 1 any pair unreachable or unknown,
// 2 an error (etcd unreachable, --timeout passed, bad flags).
import type { HostLease } from '../crds/index.js'
import { formatProblem, formatSummary, reachabilityMatrix, unreachablePeersOf, type Matrix } from '../probe/matrix.js'
import { decodeReport, InvalidReportError, legacyReportPrefix, reportPrefix, type ReachabilityReport } from '../probe/report.js'
import type { Store } from '../store/index.js'
import { durationFlag, type OptionSpec } from './args.js'
import type { Command } from './context.js'
import { formatError, UsageError } from './errors.js'

const options: OptionSpec = {
  timeout: { type: 'string' },
}

const usage = `Check which pairs of live hosts reach each other over the overlay.

Every weftd probes every peer through its data path (encapsulated as container traffic is)
and publishes the peers it cannot reach. check prints one line per unreachable or unknown
pair (unknown: the first host has no fresh report, e.g. its agent is down, or the
second host's lease is too new for the first to have judged it), then a summary.

Exit status: 0 every pair reachable, 1 some pair unreachable or unknown, 2 an error.

Examples:
  weftctl check
  weftctl check --timeout=10s

Usage:
  weftctl check [--timeout=60s]

Options:
      --timeout=60s   give up (exit 2) when etcd has not answered within this long`

/** Every live lease and every report, as etcd holds them now. */
export async function readMatrix(store: Store): Promise<Matrix> {
  const [{ items }, reports] = await Promise.all([store.list('HostLease'), readReports(store)])
  return reachabilityMatrix(items as HostLease[], reports)
}

/**
 * Every host's report by host name; a key that is no valid report maps to its
 * error (that host's pairs are unknown). A host not yet upgraded has its report
 * where agents kept it before; a host's report where they keep it now wins.
 */
export async function readReports(store: Store): Promise<Map<string, ReachabilityReport | InvalidReportError>> {
  const prefixes = [legacyReportPrefix(store.prefix), reportPrefix(store.prefix)]
  const reads = await Promise.all(prefixes.map((p) => store.call(() => store.etcd.getAll().prefix(p).exec())))
  const out = new Map<string, ReachabilityReport | InvalidReportError>()
  reads.forEach((res, i) => {
    for (const kv of res.kvs) {
      const key = kv.key.toString()
      const host = key.slice(prefixes[i]!.length)
      try {
        out.set(host, decodeReport(key, kv.value.toString()))
      } catch (err) {
        if (!(err instanceof InvalidReportError)) throw err
        out.set(host, err)
      }
    }
  })
  return out
}

/**
 * For `weftctl describe hostlease H`: the peers H's own probes cannot reach, one
 * line each (`h3: unreachable (no reply to the last 3 probes)`), or why H's view is unknown.
 */
export async function unreachablePeerLines(store: Store, host: string): Promise<string[]> {
  return unreachablePeersOf(host, await readMatrix(store)).map((p) => `${p.to}: ${p.verdict} (${p.why})`)
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'Show which pairs of hosts cannot reach each other over the overlay',
  usage,
  options,
  errorExitCode: 2,
  async run(ctx) {
    // every failure is exit 2, so 1 can only mean "some pair is not reachable"
    try {
      if (ctx.positionals.length) throw new UsageError(`Unexpected args: [${ctx.positionals.join(' ')}]`)
      const timeoutMs = durationFlag(ctx.values, 'timeout', 60_000)
      let timer: NodeJS.Timeout | undefined
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UsageError(`timed out after ${ctx.values.timeout ?? '60s'} waiting for etcd`)), timeoutMs)
      })
      const m = await Promise.race([readMatrix(ctx.store()), timedOut]).finally(() => clearTimeout(timer))
      ctx.out(m.problems.map((p) => formatProblem(p) + '\n').join('') + formatSummary(m) + '\n')
      return m.problems.length === 0 ? 0 : 1
    } catch (err) {
      ctx.err(formatError(err))
      return 2
    }
  },
}
