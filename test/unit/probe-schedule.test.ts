// The probe schedule and verdicts (src/probe/schedule.ts), the wire format, the
// target addresses, and the report/matrix `weftctl check` reads.
import t from 'tap'
import type { HostLease } from '../../src/crds/index.js'
import { KIND_LIST } from '../../src/crds/kinds.js'
import { claimPrefixOf } from '../../src/lease/registry.js'
import { parseCidr } from '../../src/net/cidr.js'
import { formatProblem, formatSummary, reachabilityMatrix, unreachablePeersOf } from '../../src/probe/matrix.js'
import { decodeReport, encodeReport, InvalidReportError, reportKey, type ReachabilityReport } from '../../src/probe/report.js'
import { MISSES_TO_UNREACHABLE, NEW_PEER_VERDICT_MS, NO_REPLY, PeerHealth, PROBE_INTERVAL_MS, ProbeRound, retryTargets, sendOffsets } from '../../src/probe/schedule.js'
import { probeAddress, ProbeTargets } from '../../src/probe/targets.js'
import { coveringRange, kindPrefix } from '../../src/store/index.js'
import { decodeProbe, encodeProbe, PROBE_BYTES, replyTo } from '../../src/probe/wire.js'

t.test('sendOffsets: evenly over the spread, first at 0, none at or past its end', async (t) => {
  t.same(sendOffsets(4, 3000), [0, 750, 1500, 2250])
  t.same(sendOffsets(0, 3000), [])
  const big = sendOffsets(5000, 3000)
  t.equal(big.length, 5000)
  t.ok(big.every((o, i) => o >= 0 && o < 3000 && (i === 0 || o >= big[i - 1]!)), 'monotonic inside [0, 3000)')
})

t.test('PeerHealth.unreachable: in name order whatever order the peers came in (the report compares as written)', async (t) => {
  const h = new PeerHealth()
  const names = ['h9', 'h10', 'a1', 'h2', 'z0']
  h.setPeers(names.map((name, i) => ({ name, address: `10.2.${i}.0` })))
  for (const name of names) for (let i = 0; i < MISSES_TO_UNREACHABLE; i++) h.record(name, name === 'h2' ? { ok: true, rttSeconds: 0.001 } : { ok: false, reason: NO_REPLY })
  t.same(Object.keys(h.unreachable()), ['a1', 'h10', 'h9', 'z0'])
})

t.test('PeerHealth: a reply makes reachable at once; only 3 misses in a row make unreachable', async (t) => {
  const h = new PeerHealth()
  h.setPeers([{ name: 'h2', address: '10.2.2.0' }, { name: 'h3', address: '10.2.3.0' }])
  t.equal(h.state('h2'), 'unknown')
  t.notOk(h.settled(), 'unknown peers: not settled')
  h.record('h2', { ok: true, rttSeconds: 0.002 })
  t.equal(h.state('h2'), 'reachable')
  t.equal(h.rttSeconds('h2'), 0.002)
  for (let i = 1; i < MISSES_TO_UNREACHABLE; i++) h.record('h3', { ok: false, reason: NO_REPLY })
  t.equal(h.state('h3'), 'unknown', `${MISSES_TO_UNREACHABLE - 1} misses decide nothing`)
  h.record('h3', { ok: false, reason: NO_REPLY })
  t.equal(h.state('h3'), 'unreachable')
  t.ok(h.settled())
  t.same(h.unreachable(), { h3: NO_REPLY })

  // a reachable peer survives two lost probes, a third flips it
  h.record('h2', { ok: false, reason: NO_REPLY })
  h.record('h2', { ok: false, reason: NO_REPLY })
  t.equal(h.state('h2'), 'reachable', 'two lost datagrams flip nothing')
  t.equal(h.rttSeconds('h2'), 0.002, 'the last RTT stays while reachable')
  h.record('h2', { ok: false, reason: 'cannot send: ENETUNREACH' })
  t.equal(h.state('h2'), 'unreachable')
  t.equal(h.rttSeconds('h2'), undefined, 'no RTT for an unreachable peer')
  t.same(h.unreachable(), { h2: 'cannot send: ENETUNREACH', h3: NO_REPLY }, 'the last miss says why')

  h.record('h3', { ok: true, rttSeconds: 0.001 })
  t.same(h.unreachable(), { h2: 'cannot send: ENETUNREACH' }, 'one reply repairs')

  // gone peers are forgotten; a moved address starts over
  h.setPeers([{ name: 'h2', address: '10.2.9.0' }, { name: 'h4', address: '10.2.4.0' }])
  t.same(h.names(), ['h2', 'h4'])
  t.equal(h.state('h2'), 'unknown', 'a peer whose address moved is judged anew')
  t.same(h.unreachable(), {})

  // as many peers as before, one of them another: the one gone is forgotten, the one kept keeps its verdict
  h.record('h4', { ok: false, reason: NO_REPLY })
  h.record('h4', { ok: false, reason: NO_REPLY })
  h.record('h4', { ok: false, reason: NO_REPLY })
  h.setPeers([{ name: 'h4', address: '10.2.4.0' }, { name: 'h5', address: '10.2.5.0' }])
  t.same(h.names(), ['h4', 'h5'])
  t.same(h.unreachable(), { h4: NO_REPLY }, 'the kept peer is still unreachable')
  t.equal(h.state('h5'), 'unknown')
})

t.test('PeerHealth: settled, unjudged and unreachable, kept as verdicts move, agree with every peer\'s state on random rounds', async (t) => {
  let seed = 11
  const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647)
  const h = new PeerHealth()
  let wrong = 0
  for (let step = 0; step < 3000; step++) {
    if (rnd() < 0.2) {
      // a new peer set: some gone, some new, some with a moved address
      const peers = Array.from({ length: 12 }, (_, i) => i).filter(() => rnd() < 0.7).map((i) => ({ name: `h${i}`, address: `10.2.${i}.${rnd() < 0.1 ? 1 : 0}` }))
      h.setPeers(peers)
    } else {
      const name = `h${Math.floor(rnd() * 14)}`
      h.record(name, rnd() < 0.5 ? { ok: true, rttSeconds: 0.001 } : { ok: false, reason: `lost at ${step}` })
    }
    const names = h.names()
    const unknown = names.filter((n) => h.state(n) === 'unknown')
    const down = names.filter((n) => h.state(n) === 'unreachable')
    if (h.settled() !== (unknown.length === 0)) wrong++
    if (JSON.stringify(h.unjudged().sort()) !== JSON.stringify(unknown)) wrong++
    if (JSON.stringify(Object.keys(h.unreachable())) !== JSON.stringify(down)) wrong++
  }
  t.equal(wrong, 0)
})

t.test('PeerHealth.setPeers: peer sets kept by object from round to round, in name order or not, give the verdicts a fresh map would', async (t) => {
  let seed = 29
  const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647)
  const h = new PeerHealth()
  // the model: what setPeers means, kept the plain way
  const model = new Map<string, { address: string; state: string }>()
  let peers: { name: string; address: string }[] = []
  let wrong = 0
  let walked = 0
  for (let step = 0; step < 4000; step++) {
    const roll = rnd()
    if (roll < 0.3) {
      const next = [...peers]
      const k = Math.floor(rnd() * 40)
      const name = `h${String(k).padStart(2, '0')}`
      const at = next.findIndex((p) => p.name === name)
      if (at >= 0 && rnd() < 0.5) next.splice(at, 1)
      else if (at >= 0) next[at] = { name, address: rnd() < 0.5 ? next[at]!.address : `10.2.${k}.${step}` }
      else next.push({ name, address: `10.2.${k}.0` })
      next.sort((a, b) => (a.name < b.name ? -1 : 1))
      if (rnd() < 0.05) next.reverse()
      const before = new Map(model)
      model.clear()
      for (const p of next) {
        const was = before.get(p.name)
        model.set(p.name, was && was.address === p.address ? was : { address: p.address, state: 'unknown' })
      }
      if (peers.length > 0 && next.length > 0 && next[0]!.name < next[next.length - 1]!.name) walked++
      h.setPeers(next)
      peers = next
    } else if (peers.length > 0) {
      const p = peers[Math.floor(rnd() * peers.length)]!
      const ok = rnd() < 0.5
      h.record(p.name, ok ? { ok: true, rttSeconds: 0.001 } : { ok: false, reason: 'lost' })
      const m = model.get(p.name)!
      // three misses in a row: the model asks PeerHealth only for the verdict it must agree with below
      if (ok) m.state = 'reachable'
      else if (h.state(p.name) === 'unreachable') m.state = 'unreachable'
    }
    if (JSON.stringify(h.names()) !== JSON.stringify([...model.keys()].sort())) wrong++
    for (const [name, m] of model) if (m.state !== 'unknown' && h.state(name) === 'unknown') wrong++
    for (const [name, m] of model) if (m.state === 'unknown' && h.state(name) === 'reachable') wrong++
  }
  t.equal(wrong, 0, 'the same peers, and no verdict kept or lost that a fresh map would not')
  t.ok(walked > 500, `most sets were in name order (${walked}), so the walk beside the last set ran`)
})

t.test('ProbeTargets: each peer probed at its backend\'s address; the same peer object keeps its target, a new one or another backend is looked at again', async (t) => {
  const peer = (name: string, subnet: string) => ({ name, subnet: parseCidr(subnet), publicIP: '192.168.1.7', data: {} })
  const targets = new ProbeTargets()
  const [h5, h7, h9] = [peer('h5', '10.2.5.0/24'), peer('h7', '10.2.7.0/24'), peer('h9', '10.2.9.0/24')]
  const first = targets.of('vxlan', [h5, h7, h9])
  t.same(first, [{ name: 'h5', address: '10.2.5.0' }, { name: 'h7', address: '10.2.7.0' }, { name: 'h9', address: '10.2.9.0' }])
  // a join between them, one leaving, one rewritten (a new object)
  const h6 = peer('h6', '10.2.6.0/24')
  const h9b = peer('h9', '10.2.19.0/24')
  const next = targets.of('vxlan', [h6, h7, h9b])
  t.same(next, [{ name: 'h6', address: '10.2.6.0' }, { name: 'h7', address: '10.2.7.0' }, { name: 'h9', address: '10.2.19.0' }])
  t.equal(next[1], first[1], 'a kept peer keeps its target object')
  // out of name order: still right, only made again
  t.same(targets.of('vxlan', [h9b, h6]), [{ name: 'h9', address: '10.2.19.0' }, { name: 'h6', address: '10.2.6.0' }])
  t.same(targets.of('host-gw', [h7]), [{ name: 'h7', address: '10.2.7.1' }], 'another backend: host-gw answers on its gateway address')
})

t.test('ProbeRound: replies match by seq and source, within the timeout; the rest are lost', async (t) => {
  const r = new ProbeRound(['h2', 'h3', 'h4'], 2000)
  r.sent('h2', '10.2.2.0', 1, 1000)
  r.sent('h3', '10.2.3.0', 2, 1000)
  r.sent('h4', '10.2.4.0', 3, 1000)
  t.notOk(r.replied(1, '10.2.3.0', 1010), 'a reply from another address does not count')
  t.notOk(r.replied(9, '10.2.2.0', 1010), 'an unknown seq does not count')
  t.ok(r.replied(1, '10.2.2.0', 1012))
  t.notOk(r.replied(1, '10.2.2.0', 1013), 'a duplicate counts once')
  t.notOk(r.replied(2, '10.2.3.0', 3001), 'past the timeout: lost')
  r.sendFailed(3, 'cannot send: EHOSTUNREACH')
  t.notOk(r.done(), 'h3 still outstanding')
  const res = r.finish()
  t.same(res.get('h2'), { ok: true, rttSeconds: 0.012 })
  t.same(res.get('h3'), { ok: false, reason: NO_REPLY })
  t.same(res.get('h4'), { ok: false, reason: 'cannot send: EHOSTUNREACH' })

  const quick = new ProbeRound(['a'])
  quick.sent('a', '10.2.1.0', 7, 0)
  quick.replied(7, '10.2.1.0', 5)
  t.ok(quick.done(), 'every request answered: the round may end early')
})

t.test('wire: a request round-trips, the reply differs only in type; anything else is ignored', async (t) => {
  const req = encodeProbe({ type: 'request', nonce: 0xdeadbeef, seq: 42 })
  t.equal(req.length, PROBE_BYTES)
  t.same(decodeProbe(req), { type: 'request', nonce: 0xdeadbeef, seq: 42 })
  t.same(decodeProbe(replyTo(req)), { type: 'reply', nonce: 0xdeadbeef, seq: 42 })
  t.equal(decodeProbe(Buffer.from('hello world, 16b')), undefined)
  t.equal(decodeProbe(req.subarray(0, 15)), undefined, 'short')
  const bad = Buffer.from(req)
  bad.writeUInt8(3, 5)
  t.equal(decodeProbe(bad), undefined, 'unknown type')
})

t.test('probeAddress: the device address on vxlan/udp/wireguard, the gateway on host-gw', async (t) => {
  const s = parseCidr('10.2.45.0/24')
  t.equal(probeAddress('vxlan', s), '10.2.45.0')
  t.equal(probeAddress('udp', s), '10.2.45.0')
  t.equal(probeAddress('host-gw', s), '10.2.45.1')
  t.equal(probeAddress('wireguard', s), '10.2.45.0')
})

t.test('report: encoded in a fixed order, decoded strictly with the key and field named', async (t) => {
  const r: ReachabilityReport = { host: 'h1', overlay: 'default', backend: 'vxlan', unreachable: { h3: NO_REPLY, h2: 'x' } }
  const key = reportKey('/weft/', 'h1')
  t.equal(key, '/weft/check/reachability/h1', 'outside every kind prefix (/weft/hostleases/, ...)')
  // what an agent's manager watches: every kind and its overlay's claims (an overlay name sorting last, the widest)
  const agentWatch = coveringRange([...KIND_LIST.map((k) => kindPrefix('/weft', k.kind)), claimPrefixOf('/weft', 'zz-last')])
  for (const kind of KIND_LIST) t.ok(agentWatch.includes(kindPrefix('/weft', kind.kind)), `the range an agent watches covers ${kind.plural}`)
  t.notOk(agentWatch.includes(key), 'and not the reports: they sort before hostleases/, not among the kinds and claims')
  t.equal(encodeReport(r), encodeReport({ ...r, unreachable: { h2: 'x', h3: NO_REPLY } }), 'the same set encodes the same: no rewrite for an order change')
  t.same(decodeReport(key, encodeReport(r)), r)
  const bad = (v: string, msg: RegExp) => t.throws(() => decodeReport(key, v), { name: 'InvalidReportError', message: msg })
  bad('nope', /^\/weft\/check\/reachability\/h1: holds no JSON$/)
  bad('[]', /is not a JSON object/)
  bad('{"host":"h1","overlay":"default","backend":"vxlan"}', /unreachable: must be an object/)
  bad('{"host":"h1","overlay":"default","backend":"vxlan","unreachable":{"h2":1}}', /unreachable\.h2: must be a string/)
  bad('{"host":"h2","overlay":"default","backend":"vxlan","unreachable":{}}', /host: "h2" is not the key's host "h1"/)
  bad('{"host":"h1","backend":"vxlan","unreachable":{}}', /overlay: must be a non-empty string/)
})

const lease = (name: string, overlay = 'default'): HostLease => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'HostLease',
  metadata: { name, creationTimestamp: '2024-05-01T11:00:00Z' },
  spec: { overlay, subnet: '10.2.1.0/24', publicIP: '192.168.1.1' },
})
const report = (host: string, unreachable: Record<string, string> = {}, overlay = 'default'): ReachabilityReport => ({ host, overlay, backend: 'vxlan', unreachable })

t.test('matrix: every ordered pair of one overlay, judged by the first host; no report = unknown', async (t) => {
  const leases = [lease('h3'), lease('h1'), lease('h2')]
  const all = new Map([['h1', report('h1')], ['h2', report('h2')], ['h3', report('h3')]])
  const ok = reachabilityMatrix(leases, all)
  t.same(ok, { hosts: 3, pairs: 6, reachable: 6, problems: [] })
  t.equal(formatSummary(ok), '3 hosts, 6/6 pairs reachable')

  const broken = new Map([['h1', report('h1', { h3: NO_REPLY })], ['h3', report('h3', { h1: NO_REPLY })], ['h2', report('h2')]])
  const m = reachabilityMatrix(leases, broken)
  t.same(m.problems.map(formatProblem), [`h1 -> h3: unreachable (${NO_REPLY})`, `h3 -> h1: unreachable (${NO_REPLY})`])
  t.equal(formatSummary(m), '3 hosts, 4/6 pairs reachable')
  t.same(unreachablePeersOf('h1', m).map((p) => p.to), ['h3'], "describe's list: h1's own view")

  const missing = reachabilityMatrix(leases, new Map([['h1', report('h1')], ['h3', report('h3', { gone: 'x' })]]))
  t.same(missing.problems.map((p) => `${p.from}>${p.to} ${p.verdict}`), ['h2>h1 unknown', 'h2>h3 unknown'], 'a live host without a report: its pairs unknown; reports about non-live hosts ignored')
  t.match(missing.problems[0]!.why, /h2 has no fresh report/)

  const invalid = reachabilityMatrix([lease('h1'), lease('h2')], new Map<string, ReachabilityReport | InvalidReportError>([['h1', new InvalidReportError('/weft/reachability/h1', 'holds no JSON')], ['h2', report('h2')]]))
  t.same(invalid.problems.map(formatProblem), ["h1 -> h2: unknown (h1's report is invalid: /weft/reachability/h1: holds no JSON)"])

  const two = reachabilityMatrix([lease('a1', 'a'), lease('a2', 'a'), lease('b1', 'b'), lease('b2', 'b')], new Map([['a1', report('a1', {}, 'a')], ['a2', report('a2', {}, 'a')], ['b1', report('b1', {}, 'b')], ['b2', report('b2', {}, 'a')]]))
  t.equal(formatSummary(two), '4 hosts, 3/4 pairs reachable', 'pairs only inside an overlay')
  t.match(two.problems[0]!, { from: 'b2', to: 'b1', verdict: 'unknown', why: /about overlay "a", not "b"/ })
  t.equal(formatSummary(reachabilityMatrix([], new Map())), '0 hosts, 0/0 pairs reachable')
})

t.test('matrix: a report silent about a peer whose lease is younger than a verdict takes proves nothing', async (t) => {
  const joined = Date.parse('2024-05-01T12:00:00Z')
  const young = { ...lease('h9'), metadata: { name: 'h9', creationTimestamp: '2024-05-01T12:00:00Z' } }
  const reports = new Map([['h1', report('h1')], ['h9', report('h9')]])
  const soon = reachabilityMatrix([lease('h1'), young], reports, joined + 4_000)
  t.same(soon.problems.map(formatProblem), ["h1 -> h9: unknown (h9's lease is 4 s old: h1's probes may not have judged it yet)"], 'the old host on the new one: unknown')
  t.equal(soon.reachable, 1, "the new host's own report covers the old host")
  t.equal(reachabilityMatrix([lease('h1'), young], reports, joined + NEW_PEER_VERDICT_MS).reachable, 2, 'once a verdict had time, silence is reachable')
  const named = reachabilityMatrix([lease('h1'), young], new Map([['h1', report('h1', { h9: NO_REPLY })], ['h9', report('h9')]]), joined + 4_000)
  t.same(named.problems.map((p) => p.verdict), ['unreachable'], 'a verdict given is shown at once')
  t.ok(NEW_PEER_VERDICT_MS >= PROBE_INTERVAL_MS * 2 && NEW_PEER_VERDICT_MS <= 30_000, `${NEW_PEER_VERDICT_MS} ms: more than a round and its retries, less than a report's TTL`)
})

t.test('retryTargets: only peers whose request was just lost and that have no unreachable verdict yet', async (t) => {
  const h = new PeerHealth()
  const targets = [{ name: 'a', address: '10.2.1.0' }, { name: 'b', address: '10.2.2.0' }, { name: 'c', address: '10.2.3.0' }]
  h.setPeers(targets)
  for (let i = 0; i < MISSES_TO_UNREACHABLE; i++) h.record('c', { ok: false, reason: NO_REPLY })
  const results = new Map([
    ['a', { ok: true as const, rttSeconds: 0.001 }],
    ['b', { ok: false as const, reason: NO_REPLY }],
    ['c', { ok: false as const, reason: NO_REPLY }],
  ])
  h.record('a', results.get('a')!)
  h.record('b', results.get('b')!)
  t.same(retryTargets(targets, results, h).map((p) => p.name), ['b'], 'a answered; c is already unreachable: one request per round is its budget')
})
