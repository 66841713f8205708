// PeerMemo (src/backends/peer-memo.ts) and the planners that use it: the same
// values as making each anew, and a join makes one value, not N.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import type { Peer } from '../../src/backends/backend.js'
import { beginEdit, finishEdit, ListMark, PeerMemo, peerMoves } from '../../src/backends/peer-memo.js'
import { VxlanPlanner, vxlanPlan, type VxlanLeaseData } from '../../src/backends/vxlan/plan.js'
import { parseCidr, parseCidr6 } from '../../src/net/cidr.js'

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
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => (made++, { name: p.name, subnet: p.subnet.ip }))
  let fleet = Array.from({ length: 50 }, (_, i) => peer(i))
  // a copy: the memo edits its values in place
  let last = [...memo.map('k', fleet)]
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
    if (values.length !== unique.length || values.some((v, i) => v.name !== unique[i]!.name || v.subnet !== unique[i]!.subnet.ip)) mismatches++
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
    last = [...values]
  }
  t.equal(mismatches, 0, 'every value is what make() gives')
  t.equal(wasted, 0, 'in name order, nothing kept is made again')
})

t.test('PeerMemo: a join into 2000 peers makes one value', async (t) => {
  let made = 0
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => (made++, { name: p.name }))
  const fleet = Array.from({ length: 2000 }, (_, i) => peer(i * 2))
  memo.map('k', fleet)
  made = 0
  const joined = [...fleet]
  joined.splice(700, 0, peer(1399))
  t.same(
    memo.map('k', joined).map((v) => v.name),
    joined.map((p) => p.name),
  )
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

/** a random step from one peer list (name order) to the next: joins, leaves, rewrites (the same name, a new object) */
const sameList = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i])

function step(rnd: () => number, fleet: readonly Peer<VxlanLeaseData>[], moves: number, range = 400): Peer<VxlanLeaseData>[] {
  const next = new Map(fleet.map((p) => [p.name, p]))
  for (let m = 0; m < moves; m++) {
    const p = peer(Math.floor(rnd() * range), rnd() < 0.1 ? '' : '02:00:00:00:00:01')
    const r = rnd()
    if (r < 0.4) next.set(p.name, rnd() < 0.2 ? { ...p, ipv6Subnet: parseCidr6(`fd00:0:0:${((p.subnet.ip >>> 8) & 0xffff).toString(16)}::/64`) } : p)
    else if (r < 0.7) next.delete(p.name)
    else if (next.has(p.name)) next.set(p.name, { ...next.get(p.name)!, publicIP: `172.16.0.${m}` })
  }
  return [...next.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
}

t.test('peerMoves: in name order, exactly the objects added and gone; out of name order, undefined', async (t) => {
  const rnd = random(3)
  let fleet = Array.from({ length: 100 }, (_, i) => peer(i * 3))
  let wrong = 0
  for (let k = 0; k < 1000; k++) {
    const next = step(rnd, fleet, 1 + Math.floor(rnd() * 6))
    const moves = peerMoves(fleet, next)
    const added = next.filter((p) => !fleet.includes(p))
    const gone = fleet.filter((p) => !next.includes(p))
    if (!moves || JSON.stringify(moves.added.map((p) => p.name)) !== JSON.stringify(added.map((p) => p.name)) || moves.gone.length !== gone.length || moves.gone.some((p, i) => p !== gone[i])) wrong++
    fleet = next
  }
  t.equal(wrong, 0, 'the same added and gone as a comparison of every object')
  const swapped = [fleet[1]!, fleet[0]!, ...fleet.slice(2)]
  t.equal(peerMoves(fleet, swapped), undefined, 'two peers swapped: not in name order')
  t.equal(peerMoves(fleet, [...fleet.slice(1), { ...fleet[0]! }]), undefined, 'a rewritten peer put last: not in name order')
  t.same(peerMoves(fleet, fleet), { added: [], gone: [] })
})

t.test('PeerMemo: an edit is made in place, and a ListMark following the values is told exactly what moved', async (t) => {
  const rnd = random(5)
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => ({ name: p.name, ip: p.publicIP }))
  let fleet = Array.from({ length: 300 }, (_, i) => peer(i))
  const mark = new ListMark<{ name: string; ip: string }>()
  const first = memo.map('k', fleet)
  t.same(mark.take(first), { added: first, gone: [] }, 'a first list: every value is new')
  // the values as the last call left them, to compare the edit with
  let last = [...first]
  let wrong = 0
  let edits = 0
  for (let k = 0; k < 500; k++) {
    const next = step(rnd, fleet, 1 + Math.floor(rnd() * 4))
    const values = memo.map('k', next)
    if (values.some((v, i) => v.name !== next[i]!.name || v.ip !== next[i]!.publicIP)) wrong++
    const told = mark.take(values)
    if (memo.moved) {
      edits++
      if (values !== first) wrong++
      const addedValues = values.filter((v) => !last.includes(v))
      const goneValues = last.filter((v) => !values.includes(v))
      if (memo.moved.added.length !== addedValues.length || memo.moved.added.some((v) => !addedValues.includes(v))) wrong++
      if (memo.moved.gone.length !== goneValues.length || memo.moved.gone.some((v) => !goneValues.includes(v))) wrong++
      // the mark is told the edit, in name order as a walk beside the last values finds it
      const walked = peerMoves(last, [...values])
      if (!told || !sameList(told.added, memo.moved.added) || !sameList(told.gone, memo.moved.gone)) wrong++
      if (!told || !walked || !sameList(told.added, walked.added) || !sameList(told.gone, walked.gone)) wrong++
    }
    fleet = next
    last = [...values]
  }
  t.equal(wrong, 0, 'every value right, edited in place, the moves exactly the values made and dropped, and told to the mark as a walk would find them')
  t.ok(edits > 400, `edits ran (${edits} of 500)`)
  t.equal(memo.map('k', fleet), first, 'nothing moved: the same array')
  t.same(mark.take(first), { added: [], gone: [] }, 'and the mark is told nothing moved')
})

t.test('ListMark: an edit it missed, or one given up, is no moves it can tell; a new list is walked only beside an untouched last one', async (t) => {
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => ({ name: p.name }))
  const fleet = Array.from({ length: 20 }, (_, i) => peer(i * 2))
  const values = memo.map('k', fleet)
  const mark = new ListMark<{ name: string }>()
  mark.take(values)
  const one = [...fleet, peer(41)]
  memo.map('k', one)
  t.same(
    mark.take(values)?.added.map((v) => v.name),
    ['h0041'],
    'one edit since: its moves',
  )
  memo.map('k', [...one, peer(43)])
  memo.map('k', [...one, peer(43), peer(45)])
  t.equal(mark.take(values), undefined, 'two edits since: unknown, the caller starts afresh')
  t.same(mark.take(values), { added: [], gone: [] }, 'then followed again')
  // a list edited after it was taken, then replaced: no walk beside what it no longer holds
  memo.map('k', [...one, peer(43), peer(45), peer(47)])
  t.equal(mark.take([...values]), undefined, 'the last list changed since it was taken: no walk')
  const other = [...values]
  t.same(mark.take([...other, { name: 'h9999' }])?.added.map((v) => v.name), ['h9999'], 'an untouched last list: walked')
})

t.test('PeerMemo: a list edited in place by its producer (LivePeers) is followed by its journal, a burst of moves included', async (t) => {
  let made = 0
  const memo = new PeerMemo((_: string, p: Peer<VxlanLeaseData>) => (made++, { name: p.name, ip: p.publicIP }))
  const fleet = Array.from({ length: 300 }, (_, i) => peer(i * 2))
  memo.map('k', fleet)
  const byName = (a: Peer<VxlanLeaseData>, b: Peer<VxlanLeaseData>) => (a.name < b.name ? -1 : 1)
  /** the producer's edit: `added` spliced in at their places, journaled */
  const produce = (added: Peer<VxlanLeaseData>[]) => {
    beginEdit(fleet)
    fleet.push(...added)
    fleet.sort(byName)
    finishEdit(fleet, { added: [...added].sort(byName), gone: [] })
  }
  produce([peer(101)])
  made = 0
  let values = memo.map('k', fleet)
  t.equal(made, 1, 'one join: one value made')
  t.same(memo.moved?.added.map((v) => v.name), ['h0101'], 'and the edit told')
  const before = new Map(values.map((v) => [v.name, v]))
  produce(Array.from({ length: 200 }, (_, i) => peer(i * 2 + 1001)))
  made = 0
  values = memo.map('k', fleet)
  t.equal(made, 200, 'a burst of 200 joins: 200 values made')
  t.ok(
    values.every((v, i) => v.name === fleet[i]!.name && (before.get(v.name) ?? v) === v),
    'every value in the peers\' order, a kept peer\'s the same object',
  )
  t.equal(memo.moved, undefined, 'a new array, not an edit')
})

t.test('VxlanPlanner: random passes (joins, leaves, rewrites, peers with no MAC yet, IPv6, out of order) plan what vxlanPlan plans', async (t) => {
  const rnd = random(9)
  const planner = new VxlanPlanner()
  let fleet: Peer<VxlanLeaseData>[] = []
  let wrong = 0
  const flat = (p: ReturnType<typeof vxlanPlan>) => JSON.stringify([p.routes, p.neighbours, p.routes6, p.neighbours6, p.fdb, p.skipped])
  for (let k = 0; k < 600; k++) {
    // now and then many moves at once (a full plan), or the peers out of name order
    fleet = step(rnd, fleet, rnd() < 0.05 ? 80 : 1 + Math.floor(rnd() * 3), 200)
    const given = rnd() < 0.05 ? [...fleet].reverse() : fleet
    if (flat(planner.plan('weft.1', given)) !== flat(vxlanPlan('weft.1', given))) wrong++
  }
  t.equal(wrong, 0, 'every pass the same routes, neighbours, FDB entries and skipped peers')
})

t.test('PeerMemo: its values are a packed array, full pass and edit alike (V8 splices a holey one on its generic path)', async (t) => {
  // V8's own verdict on the arrays, through its natives syntax, in a child that allows it; the same check on an
  // array made by new Array(n) first, so a check that cannot fire passes nothing
  const script = `
    import { PeerMemo } from ${JSON.stringify(new URL('../../src/backends/peer-memo.ts', import.meta.url).href)}
    const peer = (i) => ({ name: 'h' + String(i).padStart(4, '0'), subnet: { ip: i, len: 24 }, publicIP: '', data: {} })
    const fleet = Array.from({ length: 300 }, (_, i) => peer(i))
    const memo = new PeerMemo((_, p) => ({ name: p.name }))
    const full = memo.map('k', fleet)
    const holey = new Array(300)
    for (let i = 0; i < 300; i++) holey[i] = full[i]
    const fullHoley = %HasHoleyElements(full)
    const edited = memo.map('k', [...fleet.slice(0, 100), peer(1000), ...fleet.slice(100)].sort((a, b) => (a.name < b.name ? -1 : 1)))
    console.log(JSON.stringify({ control: %HasHoleyElements(holey), full: fullHoley, edited: %HasHoleyElements(edited), edit: memo.moved?.added.length }))
  `
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
  const seen = JSON.parse(out) as { control: boolean; full: boolean; edited: boolean; edit: number | undefined }
  t.equal(seen.control, true, 'the check tells a holey array')
  t.equal(seen.edit, 1, 'the second call was an edit, the joiner spliced in')
  t.equal(seen.full, false, 'a full pass: packed')
  t.equal(seen.edited, false, 'an edit: packed')
})
