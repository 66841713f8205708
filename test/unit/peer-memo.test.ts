// PeerMemo (src/backends/peer-memo.ts) and the planners that use it: the same
// values as making each anew, and a join makes one value, not N.
import t from 'tap'
import type { Peer } from '../../src/backends/backend.js'
import { PeerMemo } from '../../src/backends/peer-memo.js'
import { VxlanPlanner, vxlanPlan, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'
import { parseCidr } from '../../src/net/cidr.js'

const peer = (i: number, mac = '02:00:00:00:00:01'): Peer<VxlanLeaseData> => ({
  name: `h${String(i).padStart(4, '0')}`,
  subnet: parseCidr(`10.${(i >> 8) & 255}.${i & 255}.0/24`),
  publicIP: `192.168.${(i >> 8) & 255}.${i & 255}`,
  data: { vtepMAC: mac },
})

/** a small deterministic random source */
const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)

t.test('PeerMemo: random joins, leaves, rewrites and reorders give what making each anew gives; a kept peer keeps its value', async (t) => {
  const rnd = random(7)
  let made = 0
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => (made++, { of: p.name, subnet: p.subnet.ip }))
  let fleet = Array.from({ length: 50 }, (_, i) => peer(i))
  let last = memo.map('k', fleet)
  let mismatches = 0
  let wasted = 0
  let lastSorted = true
  for (let step = 0; step < 2000; step++) {
    const next = [...fleet]
    const r = rnd()
    if (r < 0.3) next.push(peer(50 + Math.floor(rnd() * 200)))
    else if (r < 0.55 && next.length > 0) next.splice(Math.floor(rnd() * next.length), 1)
    else if (r < 0.8 && next.length > 0) {
      const k = Math.floor(rnd() * next.length)
      next[k] = { ...next[k]! }
    } else if (r < 0.85) next.reverse()
    // names unique, and mostly in name order as the data path hands them
    const unique = [...new Map(next.map((p) => [p.name, p])).values()]
    if (r < 0.8) unique.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    made = 0
    const values = memo.map('k', unique)
    const fresh = unique.filter((p) => !fleet.includes(p)).length
    if (values.length !== unique.length || values.some((v, i) => v.of !== unique[i]!.name || v.subnet !== unique[i]!.subnet.ip)) mismatches++
    const sorted = r < 0.8
    if (sorted && lastSorted) {
      // in name order, after a call in name order: only the new peer objects are made, a kept one keeps its value object
      if (made !== fresh) wasted++
      for (let i = 0; i < unique.length; i++) {
        const was = fleet.indexOf(unique[i]!)
        if (was >= 0 && values[i] !== last[was]) wasted++
      }
    }
    lastSorted = sorted
    fleet = unique
    last = values
  }
  t.equal(mismatches, 0, 'every value is what make() gives')
  t.equal(wasted, 0, 'in name order, nothing kept is made again')
})

t.test('PeerMemo: a join into 2000 peers makes one value', async (t) => {
  let made = 0
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => (made++, p.name))
  const fleet = Array.from({ length: 2000 }, (_, i) => peer(i * 2))
  memo.map('k', fleet)
  made = 0
  const joined = [...fleet]
  joined.splice(700, 0, peer(1399))
  t.same(memo.map('k', joined), joined.map((p) => p.name))
  t.equal(made, 1)
})

t.test('VxlanPlanner: the plan vxlanPlan makes, pass after pass, also on another device', async (t) => {
  const planner = new VxlanPlanner()
  const fleet = [peer(1), { ...peer(2), data: {} }, peer(3)]
  t.same(planner.plan('weft.1', fleet), vxlanPlan('weft.1', fleet))
  const moved = [fleet[0]!, peer(2), { ...peer(3, '02:00:00:00:00:09') }]
  t.same(planner.plan('weft.1', moved), vxlanPlan('weft.1', moved), 'a peer that published its MAC, one whose MAC moved')
  t.same(planner.plan('weft.2', moved), vxlanPlan('weft.2', moved), 'another device: every entry names it')
  t.equal(planner.plan('weft.2', moved).routes[0]!.dev, 'weft.2')
})
