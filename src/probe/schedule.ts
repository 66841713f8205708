// The probe schedule and what its results mean, as pure logic (no sockets, no
// clock of its own): rounds of one request per peer, paced, and a per-peer
// verdict that only flips on evidence, so the published set of unreachable
// peers changes when reachability does and never because time moved.
//
// Budget: one 16-byte request and one reply per peer per 5 s round, the sends
// spread evenly over the first 3 s (no burst that overflows a socket buffer at
// thousands of peers), each answered within 2 s or counted lost. A peer that
// stops answering gets at most 2 retries in that round, 1 s apart, until its
// verdict is in; an unreachable one gets the one request per round. So at most
// 3 requests per peer per round, 1 in steady state. At 5000 hosts a host sends
// 1000 requests/s and 1000 replies/s and receives as many: about 2000 packets/s
// each way, 94 bytes each on the vxlan wire (16 + UDP 8 + IP 20 inside, 50 of
// VXLAN around), about 1.5 Mbit/s each way per host.
//
// Verdict: a reply makes a peer reachable at once; 3 requests in a row without
// one make it unreachable (a single lost datagram on a busy link flips
// nothing). So a break shows within one round and its retries (at most
// 5 + 2 + 2 x 1 s) and a repair within one round.

import { ListMark } from '../backends/peer-memo.js'

export const PROBE_INTERVAL_MS = 5_000
export const PROBE_SPREAD_MS = 3_000
export const PROBE_TIMEOUT_MS = 2_000
export const MISSES_TO_UNREACHABLE = 3
export const RETRY_TIMEOUT_MS = 1_000
/**
 * How long a new peer can be "not named unreachable" in a report only because
 * its prober has not judged it yet: reports are rewritten only when the
 * unreachable set changes (no write per join), so silence about a lease younger
 * than this proves nothing. The next round (one interval), its spread, timeout
 * and retries, and the claim grace a lease seen before its claim waits out
 * (src/lease/ownership.ts), with a second to spare.
 */
export const NEW_PEER_VERDICT_MS = PROBE_INTERVAL_MS + PROBE_SPREAD_MS + PROBE_TIMEOUT_MS + (MISSES_TO_UNREACHABLE - 1) * RETRY_TIMEOUT_MS + 5_000 + 1_000
/** sends due within this long go out together: a timer per tick, not one per peer */
export const SEND_TICK_MS = 20

export interface ProbePeer {
  /** the peer's host name */
  name: string
  /** its overlay address (targets.ts) */
  address: string
}

export type PeerState = 'unknown' | 'reachable' | 'unreachable'

/** When, from a round's start, each of `n` peers (in the order given) gets its request. */
export function sendOffsets(n: number, spreadMs = PROBE_SPREAD_MS): number[] {
  return Array.from({ length: n }, (_, i) => sendOffset(i, n, spreadMs))
}

/** When, from a round's start, the `i`th of `n` peers gets its request. */
export function sendOffset(i: number, n: number, spreadMs = PROBE_SPREAD_MS): number {
  return Math.floor((i * spreadMs) / Math.max(n, 1))
}

/** One peer's result in a round: a reply's round-trip time, or why there was none. */
export type ProbeResult = { ok: true; rttSeconds: number } | { ok: false; reason: string }

export const NO_REPLY = `no reply to the last ${MISSES_TO_UNREACHABLE} probes`

interface Entry {
  address: string
  state: PeerState
  misses: number
  reason: string
  rttSeconds?: number
  /** the last setPeers that named it */
  round: number
}

/** Every peer's verdict across rounds. */
export class PeerHealth {
  private readonly entries = new Map<string, Entry>()
  private rounds = 0
  // every round asks whether all are judged and which are unreachable: kept by name as verdicts move, not found in all N
  private readonly unknown = new Set<string>()
  private readonly down = new Set<string>()
  /** the peers set last (ProbeTargets edits its list in place: the mark tells what moved) */
  private readonly last = new ListMark<ProbePeer>()

  /** The peers of the coming round: gone ones are forgotten, new ones (and one whose address moved) start unknown. */
  setPeers(peers: readonly ProbePeer[]): void {
    // every round calls this with all N peers, most of them the last round's objects: what moved is told, or found by a walk
    const moves = this.last.take(peers)
    if (moves) {
      for (const { name, address } of moves.added) if (this.entries.get(name)?.address !== address) this.start(name, address)
      for (const { name } of moves.gone) {
        if (moves.added.length > 0 && moves.added.some((p) => p.name === name)) continue
        this.entries.delete(name)
        this.judged(name, undefined)
      }
      return
    }
    // marked by round, not copied into a map of the wanted ones
    const round = ++this.rounds
    for (const { name, address } of peers) {
      const e = this.entries.get(name)
      if (e?.address === address) e.round = round
      else this.start(name, address, round)
    }
    // names are unique: as many entries as peers means none is left from an earlier round
    if (this.entries.size === peers.length) return
    for (const [name, e] of this.entries) {
      if (e.round === round) continue
      this.entries.delete(name)
      this.judged(name, undefined)
    }
  }

  private start(name: string, address: string, round = this.rounds): void {
    this.entries.set(name, { address, state: 'unknown', misses: 0, reason: '', round })
    this.judged(name, 'unknown')
  }

  record(name: string, result: ProbeResult): void {
    const e = this.entries.get(name)
    if (!e) return
    if (result.ok) {
      e.state = 'reachable'
      e.misses = 0
      e.reason = ''
      e.rttSeconds = result.rttSeconds
      this.judged(name, 'reachable')
      return
    }
    e.misses++
    if (e.misses >= MISSES_TO_UNREACHABLE) {
      e.state = 'unreachable'
      e.reason = result.reason
      delete e.rttSeconds
      this.judged(name, 'unreachable')
    }
  }

  private judged(name: string, state: PeerState | undefined): void {
    if (state === 'unknown') this.unknown.add(name)
    else this.unknown.delete(name)
    if (state === 'unreachable') this.down.add(name)
    else this.down.delete(name)
  }

  state(name: string): PeerState | undefined {
    return this.entries.get(name)?.state
  }

  rttSeconds(name: string): number | undefined {
    return this.entries.get(name)?.rttSeconds
  }

  names(): string[] {
    return [...this.entries.keys()].sort()
  }

  /** Every peer has a verdict (the first report waits for this: before it, silence would read as "reachable"). */
  settled(): boolean {
    return this.unknown.size === 0
  }

  /** the peers with no verdict yet */
  unjudged(): string[] {
    return [...this.unknown]
  }

  /** The unreachable peers and why, in name order: what the report publishes. */
  unreachable(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const name of [...this.down].sort()) out[name] = this.entries.get(name)!.reason
    return out
  }
}

/**
 * Who gets another request in this round: peers whose last request was lost
 * and that have no verdict of unreachable yet (an unreachable peer gets its
 * one request per round, no more).
 */
export function retryTargets(targets: readonly ProbePeer[], results: ReadonlyMap<string, ProbeResult>, health: PeerHealth): ProbePeer[] {
  return targets.filter((t) => results.get(t.name)?.ok === false && health.state(t.name) !== 'unreachable')
}

/** The requests of one round in flight, matched to replies by sequence number and source address. */
export class ProbeRound {
  private readonly outstanding = new Map<number, { name: string; address: string; sentAt: number }>()
  private readonly results = new Map<string, ProbeResult>()

  constructor(
    readonly names: readonly string[],
    private readonly timeoutMs = PROBE_TIMEOUT_MS,
  ) {}

  sent(name: string, address: string, seq: number, at: number): void {
    this.outstanding.set(seq, { name, address, sentAt: at })
  }

  /** The request `seq` never left (no route, no address): a miss with that reason. */
  sendFailed(seq: number, reason: string): void {
    const o = this.outstanding.get(seq)
    if (!o) return
    this.outstanding.delete(seq)
    this.results.set(o.name, { ok: false, reason })
  }

  /** A reply to `seq` from `from` arrived at `at`; false when it answers nothing of this round (late, duplicate, from elsewhere). */
  replied(seq: number, from: string, at: number): boolean {
    const o = this.outstanding.get(seq)
    if (!o || o.address !== from || at - o.sentAt > this.timeoutMs) return false
    this.outstanding.delete(seq)
    this.results.set(o.name, { ok: true, rttSeconds: (at - o.sentAt) / 1000 })
    return true
  }

  /** Every request answered or failed: the round may end early. */
  done(): boolean {
    return this.outstanding.size === 0 && this.results.size === this.names.length
  }

  /** Each peer's result; requests unanswered by now are lost. */
  finish(): Map<string, ProbeResult> {
    for (const name of this.names) if (!this.results.has(name)) this.results.set(name, { ok: false, reason: NO_REPLY })
    this.outstanding.clear()
    return this.results
  }
}
