// DisjointPrefixes against the scan it replaces: random prefixes of mixed
// lengths, each kept only if it overlaps none kept before; the index and the
// scan must agree on every one, in both families.
import t, { type Test } from 'tap'
import { overlaps, overlaps6, type Cidr, type Cidr6 } from '../../src/net/cidr.js'
import { DisjointPrefixes, range4, range6 } from '../../src/net/disjoint.js'

/** a small deterministic generator: the same run every time */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)
}

function agreesWithScan<C, A extends number | bigint>(t: Test, n: number, draw: () => C, range: (c: C) => [A, A], overlap: (a: C, b: C) => boolean): void {
  const index = new DisjointPrefixes<C, A>()
  const kept: C[] = []
  let disagreements = 0
  let clashes = 0
  for (let i = 0; i < n; i++) {
    const c = draw()
    const scanned = kept.find((k) => overlap(k, c))
    const found = index.overlapping(range(c))
    if ((scanned === undefined) !== (found === undefined) || (found !== undefined && !overlap(found, c))) disagreements++
    if (found) clashes++
    else {
      kept.push(c)
      index.add(range(c), c)
    }
  }
  t.equal(disagreements, 0, 'the index and the scan agree on every prefix')
  t.ok(clashes > 100 && kept.length > 100, `both outcomes exercised: ${clashes} clashes, ${kept.length} kept`)
}

t.test('IPv4: the index finds an overlap exactly when a scan does', async (t) => {
  const next = rng(7)
  agreesWithScan(t, 4000, (): Cidr => {
    const len = 12 + Math.floor(next() * 17)
    const ip = (Math.floor(next() * 2 ** 14) << 10) >>> 0
    return { ip: (ip & ~(2 ** (32 - len) - 1)) >>> 0, len }
  }, range4, overlaps)
})

t.test('IPv6: the same', async (t) => {
  const next = rng(11)
  agreesWithScan(t, 2000, (): Cidr6 => {
    const len = 56 + Math.floor(next() * 9)
    const ip = (0xfd00n << 112n) | (BigInt(Math.floor(next() * 2 ** 12)) << 64n)
    return { ip: ip & ~((1n << BigInt(128 - len)) - 1n), len }
  }, range6, overlaps6)
})
