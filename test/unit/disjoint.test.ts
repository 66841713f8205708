// DisjointPrefixes against the scan it replaces: random prefixes of mixed
// lengths, each kept only if it overlaps none kept before; the index and the
// scan must agree on every one, in both families.
import t from 'tap'
import { overlaps, overlaps6, type Cidr, type Cidr6 } from '../../src/net/cidr.js'
import { DisjointPrefixes, range4, range6 } from '../../src/net/disjoint.js'

/** a small deterministic generator: the same run every time */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)
}

t.test('IPv4: the index finds an overlap exactly when a scan does', async (t) => {
  const next = rng(7)
  const index = new DisjointPrefixes<Cidr, number>()
  const kept: Cidr[] = []
  let disagreements = 0
  let clashes = 0
  for (let i = 0; i < 4000; i++) {
    const len = 12 + Math.floor(next() * 17)
    const ip = (Math.floor(next() * 2 ** 14) << 10) >>> 0
    const c = { ip: (ip & ~(2 ** (32 - len) - 1)) >>> 0, len }
    const scanned = kept.find((k) => overlaps(k, c))
    const found = index.overlapping(range4(c))
    if ((scanned === undefined) !== (found === undefined) || (found && !overlaps(found, c))) disagreements++
    if (found) clashes++
    else {
      kept.push(c)
      index.add(range4(c), c)
    }
  }
  t.equal(disagreements, 0)
  t.ok(clashes > 100 && kept.length > 100, `both outcomes exercised: ${clashes} clashes, ${kept.length} kept`)
})

t.test('IPv6: the same', async (t) => {
  const next = rng(11)
  const index = new DisjointPrefixes<Cidr6, bigint>()
  const kept: Cidr6[] = []
  let disagreements = 0
  let clashes = 0
  for (let i = 0; i < 2000; i++) {
    const len = 56 + Math.floor(next() * 9)
    const ip = (0xfd00n << 112n) | (BigInt(Math.floor(next() * 2 ** 12)) << 64n)
    const c = { ip: ip & ~((1n << BigInt(128 - len)) - 1n), len }
    const scanned = kept.find((k) => overlaps6(k, c))
    const found = index.overlapping(range6(c))
    if ((scanned === undefined) !== (found === undefined) || (found && !overlaps6(found, c))) disagreements++
    if (found) clashes++
    else {
      kept.push(c)
      index.add(range6(c), c)
    }
  }
  t.equal(disagreements, 0)
  t.ok(clashes > 100 && kept.length > 100, `both outcomes exercised: ${clashes} clashes, ${kept.length} kept`)
})
