// Probe cost benchmark: what one host's share of the all-pairs probing costs
// at fleet size N, on loopback in this process (no namespaces, no etcd).
//
//   node --jitless --import tsx bench/probe.ts [--peers 5000] [--rounds 4]
//
// One ProbeSocket (src/probe/socket.ts) on 127.0.0.1 sends a round of
// requests to N "peers" (N ports would be N hosts; here one responder socket
// on 127.0.0.2 plays all of them) paced as the agent paces them, and answers
// as the agent answers; so one round costs what a host of an N-host fleet does
// per 5 s: N requests sent, N replies received, N requests answered. Prints
// CPU per round (user+system of this process), packets/s and replies lost,
// beside the reference of the same packets sent unpaced in one burst.
// --jitless as bin/weftd runs the agent.
import { parseArgs } from 'node:util'
import { parseCidr } from '../src/net/cidr.js'
import { PROBE_INTERVAL_MS, PROBE_SPREAD_MS, PROBE_TIMEOUT_MS, ProbeRound, SEND_TICK_MS, sendOffsets } from '../src/probe/schedule.js'
import { ProbeSocket } from '../src/probe/socket.js'

const { values } = parseArgs({ options: { peers: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '4' }, port: { type: 'string', default: '19812' } } })
const n = Number(values.peers)
const rounds = Number(values.rounds)
const port = Number(values.port)
const network = parseCidr('127.0.0.0/8')

let round: ProbeRound | undefined
const prober = await ProbeSocket.open({ address: '127.0.0.1', port, network, onReply: (from, d, at) => void round?.replied(d.seq, from, at) })
// the peers' side: answers every request, as each peer's agent would
const responder = await ProbeSocket.open({ address: '127.0.0.2', port, network, onReply: () => undefined })
const names = Array.from({ length: n }, (_, i) => `p${i}`)
let seq = 0

async function oneRound(spreadMs: number): Promise<{ cpuMs: number; lost: number; wallMs: number }> {
  const cpu = process.cpuUsage()
  const start = Date.now()
  const r = new ProbeRound(names, PROBE_TIMEOUT_MS)
  round = r
  const offsets = sendOffsets(n, spreadMs)
  for (let i = 0; i < n; i++) {
    const due = start + offsets[i]! - Date.now()
    if (due > 0) await new Promise((res) => setTimeout(res, Math.max(due, SEND_TICK_MS)))
    const s = ++seq
    r.sent(names[i]!, '127.0.0.2', s, Date.now())
    prober.send('127.0.0.2', { type: 'request', nonce: 1, seq: s }).catch(() => r.sendFailed(s, 'send failed'))
  }
  const end = Date.now() + PROBE_TIMEOUT_MS
  while (!r.done() && Date.now() < end) await new Promise((res) => setTimeout(res, 20))
  const wallMs = Date.now() - start
  const lost = [...r.finish().values()].filter((x) => !x.ok).length
  if (process.env.DEBUG) console.log({ wallMs, lost, answered: responder.answered, ignored: prober.ignored + responder.ignored })
  const used = process.cpuUsage(cpu)
  return { cpuMs: (used.user + used.system) / 1000, lost, wallMs }
}

const row = (label: string, rs: { cpuMs: number; lost: number; wallMs: number }[]) => {
  const cpu = rs.reduce((a, r) => a + r.cpuMs, 0) / rs.length
  const lost = rs.reduce((a, r) => a + r.lost, 0)
  console.log(`${label.padEnd(34)} ${cpu.toFixed(0).padStart(8)} ms ${((100 * cpu) / PROBE_INTERVAL_MS).toFixed(1).padStart(6)} %   ${String(lost).padStart(6)} / ${n * rs.length}`)
}

console.log(`peers ${n}; per round: ${n} requests sent + ${n} replies received + ${n} requests answered (${((3 * n * 1000) / PROBE_INTERVAL_MS).toFixed(0)} packets/s)`)
console.log(`${'mode'.padEnd(34)} ${'CPU/round'.padStart(11)} ${'of 5 s'.padStart(8)}   replies lost`)
await oneRound(PROBE_SPREAD_MS) // warm-up
const paced = []
for (let i = 0; i < rounds; i++) paced.push(await oneRound(PROBE_SPREAD_MS))
row(`weft: paced over ${PROBE_SPREAD_MS} ms`, paced)
const burst = []
for (let i = 0; i < rounds; i++) burst.push(await oneRound(0))
row('reference: one burst', burst)
prober.close()
responder.close()
