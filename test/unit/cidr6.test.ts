import fc from 'fast-check'
import { isIPv6 } from 'node:net'
import t from 'tap'
import {
  blockSize6,
  compareCidr6,
  contains6,
  formatCidr6,
  formatIPv6,
  gatewayCidr6,
  isAligned6,
  isCanonical6,
  lastOf6,
  mask6,
  networkOf6,
  overlaps6,
  parseCidr6,
  parseIPv6,
  subnetAt6,
  subnetCount6,
  subnetIndex6,
  subnetIndexRange6,
  tryParseCidr6,
  tryParseIPv6,
  type Cidr6,
} from '../../src/net/cidr.js'

const ip6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
const len6 = fc.integer({ min: 0, max: 128 })
const cidr6 = fc.record({ ip: ip6, len: len6 })
const canonical6 = cidr6.map(networkOf6)

/** An independent canonical form: WHATWG URL serialises IPv6 hosts as RFC 5952 does (no dotted quad). */
function urlForm(s: string): string {
  return new URL(`http://[${s}]/`).hostname.slice(1, -1)
}

t.test('parses and formats IPv6 in RFC 5952 form', async (t) => {
  t.equal(parseIPv6('::'), 0n)
  t.equal(parseIPv6('::1'), 1n)
  t.equal(parseIPv6('fd10:2::'), 0xfd100002n << 96n)
  t.equal(parseIPv6('FD10:0002:0000:002D:0000:0000:0000:0001'), (0xfd100002n << 96n) | (0x2dn << 64n) | 1n)
  t.equal(parseIPv6('::ffff:10.2.0.1'), (0xffffn << 32n) | 0x0a020001n, 'a trailing dotted quad')
  t.equal(parseIPv6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), (1n << 128n) - 1n)
  t.equal(formatIPv6(parseIPv6('FD10:0002:0000:002D:0000:0000:0000:0001')), 'fd10:2:0:2d::1')
  t.equal(formatIPv6(parseIPv6('1:0:0:2:0:0:0:3')), '1:0:0:2::3', 'the longest zero run is compressed')
  t.equal(formatIPv6(parseIPv6('1:0:0:2:0:0:3:4')), '1::2:0:0:3:4', 'the first of equal runs')
  t.equal(formatIPv6(parseIPv6('1:0:2:3:4:5:6:7')), '1:0:2:3:4:5:6:7', 'a single zero group stays')
  t.equal(formatIPv6(0n), '::')
  t.equal(formatIPv6(1n << 112n), '1::')
})

t.test('refuses sloppy IPv6 addresses', async (t) => {
  for (const bad of ['', ':', ':::', '1:::2', '1::2::3', ':1::', '1::2:', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', '12345::', 'g::', 'fe80::1%eth0', '[::1]', ' ::1', '::1 ', '1.2.3.4', '::1.2.3', '::1.2.3.4:5', '1.2.3.4::', '::010.2.0.1', 'fd10:2::/64']) {
    t.equal(tryParseIPv6(bad), undefined, JSON.stringify(bad))
  }
  t.throws(() => parseIPv6('fe80::1%eth0'), { name: 'TypeError', message: /"fe80::1%eth0"/ })
})

t.test('parses IPv6 CIDRs strictly, host bits allowed but visible', async (t) => {
  t.same(parseCidr6('fd10:2::/48'), { ip: 0xfd100002n << 96n, len: 48 })
  t.same(parseCidr6('::/0'), { ip: 0n, len: 0 })
  for (const bad of ['fd10::', 'fd10::/', 'fd10::/129', 'fd10::/064', 'fd10::/-1', 'fd10::/64/1', '/64', '10.2.0.0/16', 'fd10::/6.4']) {
    t.equal(tryParseCidr6(bad), undefined, JSON.stringify(bad))
  }
  t.throws(() => parseCidr6('fd10::'), { name: 'TypeError' })
  t.equal(formatCidr6(parseCidr6('fd10:2:0:2d::1/64')), 'fd10:2:0:2d::1/64')
  t.notOk(isCanonical6(parseCidr6('fd10:2:0:2d::1/64')))
  t.equal(formatCidr6(networkOf6(parseCidr6('fd10:2:0:2d::1/64'))), 'fd10:2:0:2d::/64')
  t.ok(isCanonical6(parseCidr6('::/0')))
  t.equal(mask6(0), 0n)
  t.equal(mask6(128), (1n << 128n) - 1n)
  t.equal(formatIPv6(lastOf6(parseCidr6('fd10:2::/48'))), 'fd10:2:0:ffff:ffff:ffff:ffff:ffff')
})

t.test('IPv6 containment, subnets and gateway', async (t) => {
  const net = parseCidr6('fd10:2::/48')
  t.ok(contains6(net, parseCidr6('fd10:2:0:2d::/64')))
  t.notOk(contains6(net, parseCidr6('fd10:3::/64')))
  t.notOk(contains6(parseCidr6('fd10:2:0:2d::/64'), net), 'a wider prefix is not inside a narrower one')
  t.ok(overlaps6(parseCidr6('fd10:2:0:2d::/64'), net))
  t.notOk(overlaps6(parseCidr6('fd10:3::/48'), net))
  t.equal(formatCidr6(subnetAt6(net, 64, 45n)), 'fd10:2:0:2d::/64')
  t.equal(subnetIndex6(net, parseCidr6('fd10:2:0:2d::/64')), 45n)
  t.equal(subnetIndex6(net, parseCidr6('fd10:2:0:2d::1/64')), -1n, 'host bits: not one of its subnets')
  t.equal(subnetCount6(net, 64), 65536n)
  t.equal(subnetCount6(net, 64, parseIPv6('fd10:2:0:1::'), parseIPv6('fd10:2:0:ffff::')), 65535n)
  t.equal(subnetCount6(parseCidr6('fd00::/8'), 124), 1n << 116n, 'exact far beyond 2^53')
  t.throws(() => subnetAt6(net, 64, 65536n), RangeError)
  t.throws(() => subnetAt6(net, 40, 0n), RangeError)
  t.equal(formatCidr6(gatewayCidr6(parseCidr6('fd10:2:0:2d::/64'))), 'fd10:2:0:2d::1/64')
})

t.test('property: IPv6 format then parse is the identity, and the text is canonical', async () => {
  fc.assert(fc.property(ip6, (a) => parseIPv6(formatIPv6(a)) === a))
  fc.assert(fc.property(ip6, (a) => formatIPv6(a) === urlForm(formatIPv6(a))))
  fc.assert(fc.property(cidr6, (c) => {
    const back = parseCidr6(formatCidr6(c))
    return back.ip === c.ip && back.len === c.len
  }))
  // every spelling fast-check makes (compressed, full, with a dotted quad) parses to what Node's URL parser reads
  fc.assert(fc.property(fc.ipV6(), (s) => isIPv6(s) && formatIPv6(parseIPv6(s)) === urlForm(s)))
})

t.test('property: IPv6 contains and overlaps agree with address ranges', async () => {
  fc.assert(fc.property(canonical6, ip6, (c, a) => contains6(c, a) === (a >= c.ip && a <= lastOf6(c))))
  fc.assert(fc.property(canonical6, canonical6, (a, b) => {
    const shared = a.ip <= lastOf6(b) && b.ip <= lastOf6(a)
    return overlaps6(a, b) === shared && overlaps6(b, a) === shared
  }))
  fc.assert(fc.property(cidr6, (c) => isCanonical6(networkOf6(c)) && contains6(c, c.ip) && contains6(networkOf6(c), c)))
  fc.assert(fc.property(cidr6, cidr6, (a, b) => Math.sign(compareCidr6(a, b)) === -Math.sign(compareCidr6(b, a))))
})

t.test('property: IPv6 subnets index back and stay aligned inside their network', async () => {
  const netAndSub = canonical6.chain((n) =>
    fc.integer({ min: n.len, max: 128 }).chain((len) =>
      fc.bigInt({ min: 0n, max: (1n << BigInt(len - n.len)) - 1n }).map((index) => ({ n, len, index })),
    ),
  )
  fc.assert(fc.property(netAndSub, ({ n, len, index }) => {
    const s: Cidr6 = subnetAt6(n, len, index)
    return isAligned6(s.ip, len) && contains6(n, s) && subnetIndex6(n, s) === index
  }))
  // the bounded index range holds exactly the subnets whose address lies between min and max
  const bounded = canonical6
    .filter((n) => n.len <= 120)
    .chain((n) => fc.record({ n: fc.constant(n), extra: fc.integer({ min: 0, max: 8 }), a: ip6, b: ip6 }))
  fc.assert(fc.property(bounded, ({ n, extra, a, b }) => {
    const len = n.len + extra
    const span = blockSize6(n.len)
    const min = n.ip + (a % span)
    const max = n.ip + (b % span)
    const { first, last } = subnetIndexRange6(n, len, min, max)
    for (let i = 0n; i < 1n << BigInt(extra); i++) {
      const ip = subnetAt6(n, len, i).ip
      const inside = ip >= min && ip <= max
      if (inside !== (i >= first && i <= last)) return false
    }
    return true
  }))
})
