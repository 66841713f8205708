import fc from 'fast-check'
import t from 'tap'
import { parseSubnetKeyName } from '../../src/lease/allocate.js'
import {
  blockSize,
  broadcastOf,
  compareCidr,
  contains,
  formatCidr,
  formatIPv4,
  gatewayCidr,
  gatewayOf,
  isAligned,
  isCanonical,
  mask,
  networkOf,
  nextSubnet,
  overlaps,
  parseCidr,
  parseIPv4,
  prevSubnet,
  rangeOf,
  subnetAt,
  subnetCount,
  subnetCountIn,
  subnetIndex,
  subnets,
  tryParseCidr,
  tryParseIPv4,
  type Cidr,
} from '../../src/net/cidr.js'

const ip = fc.integer({ min: 0, max: 2 ** 32 - 1 })
const len = fc.integer({ min: 0, max: 32 })
const cidr = fc.record({ ip, len })
const canonical = cidr.map(networkOf)

t.test('parses and formats dotted quads', async (t) => {
  t.equal(parseIPv4('0.0.0.0'), 0)
  t.equal(parseIPv4('255.255.255.255'), 2 ** 32 - 1)
  t.equal(parseIPv4('10.2.45.1'), 0x0a022d01)
  t.equal(formatIPv4(0x0a022d01), '10.2.45.1')
  t.equal(formatIPv4(0xc0a8980e), '192.168.152.14', 'high bit set stays unsigned')
})

t.test('refuses sloppy addresses', async (t) => {
  for (const bad of ['', '10.2.0', '10.2.0.0.1', '10.2.0.256', '010.2.0.1', '10.02.0.1', '10.2.0.-1', '10.2.0.1 ', ' 10.2.0.1', '1e1.0.0.1', '0x0a.0.0.1', '10..0.1', '10.2.0.1/24', 'a.b.c.d', '+1.2.3.4']) {
    t.equal(tryParseIPv4(bad), undefined, JSON.stringify(bad))
  }
  t.throws(() => parseIPv4('10.2.0.256'), { name: 'TypeError', message: /"10\.2\.0\.256"/ })
})

// the parsers scan characters (they run per peer at every join); these regular expressions are what they must agree with
const OCTET = /^(0|[1-9][0-9]{0,2})$/
const PREFIX = /^(0|[1-9][0-9]?)$/
const ipByRegex = (s: string): number | undefined => {
  const parts = s.split('.')
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) return undefined
  return parts.reduce((ip, p) => ip * 256 + Number(p), 0)
}
const cidrByRegex = (s: string, separator: string) => {
  const at = s.lastIndexOf(separator)
  const ip = at < 0 ? undefined : ipByRegex(s.slice(0, at))
  const len = s.slice(at + 1)
  return ip === undefined || !PREFIX.test(len) || Number(len) > 32 ? undefined : { ip, len: Number(len) }
}

t.test('the character scans agree with the strict regular expressions on any string of address characters', async (t) => {
  const text = fc.array(fc.constantFrom('0', '1', '2', '5', '9', '.', '/', '-', '3', 'x', ' '), { maxLength: 22 }).map((cs) => cs.join(''))
  const quadLike = fc
    .tuple(fc.array(fc.oneof(fc.nat(300).map(String), fc.constantFrom('00', '01', '255', '256', '')), { minLength: 3, maxLength: 5 }), fc.oneof(fc.nat(40).map(String), fc.constantFrom('', '08', '0')), fc.constantFrom('/', '-'))
    .map(([octets, len, sep]) => `${octets.join('.')}${sep}${len}`)
  fc.assert(
    fc.property(fc.oneof(text, quadLike), (s) => {
      if (tryParseIPv4(s) !== ipByRegex(s)) throw new Error(`tryParseIPv4(${JSON.stringify(s)})`)
      const slash = s.indexOf('/')
      if (slash === s.lastIndexOf('/') && JSON.stringify(tryParseCidr(s)) !== JSON.stringify(cidrByRegex(s, '/'))) throw new Error(`tryParseCidr(${JSON.stringify(s)})`)
      if (JSON.stringify(parseSubnetKeyName(s)) !== JSON.stringify(cidrByRegex(s, '-'))) throw new Error(`parseSubnetKeyName(${JSON.stringify(s)})`)
    }),
    { numRuns: 20_000 },
  )
  t.same(parseSubnetKeyName('10.2.45.0-24'), { ip: 0x0a022d00, len: 24 })
  for (const bad of ['10.2.45.0/24', '10.2.45.0-', '10.2.45.0-024', '10.2.45.0-33', '10.2.45-24', '10.2.45.0-2-4']) t.equal(parseSubnetKeyName(bad), undefined, JSON.stringify(bad))
})

t.test('parses CIDRs strictly, host bits allowed but visible', async (t) => {
  t.same(parseCidr('10.2.0.0/16'), { ip: 0x0a020000, len: 16 })
  t.same(parseCidr('0.0.0.0/0'), { ip: 0, len: 0 })
  t.same(parseCidr('10.2.45.1/24'), { ip: 0x0a022d01, len: 24 })
  for (const bad of ['10.2.0.0', '10.2.0.0/', '10.2.0.0/33', '10.2.0.0/016', '10.2.0.0/-1', '10.2.0.0/24/1', '10.2.0/16', '/16', '10.2.0.0/1.5']) {
    t.equal(tryParseCidr(bad), undefined, JSON.stringify(bad))
  }
  t.throws(() => parseCidr('10.2.0.0'), { name: 'TypeError' })
  t.equal(formatCidr(parseCidr('10.2.45.1/24')), '10.2.45.1/24')
})

t.test('canonical form, masks, ranges', async (t) => {
  t.equal(mask(0), 0)
  t.equal(mask(24), 0xffffff00)
  t.equal(mask(32), 0xffffffff)
  t.ok(isCanonical(parseCidr('10.2.0.0/16')))
  t.notOk(isCanonical(parseCidr('10.2.3.0/16')))
  t.same(formatCidr(networkOf(parseCidr('10.2.3.4/16'))), '10.2.0.0/16')
  t.equal(formatIPv4(broadcastOf(parseCidr('10.2.0.0/16'))), '10.2.255.255')
  t.same(rangeOf(parseCidr('10.2.45.7/24')), { first: 0x0a022d00, last: 0x0a022dff })
  t.ok(isAligned(parseIPv4('10.2.4.0'), 22))
  t.notOk(isAligned(parseIPv4('10.2.5.0'), 22))
  t.equal(blockSize(24), 256)
  t.equal(blockSize(0), 2 ** 32)
})

t.test('contains and overlaps', async (t) => {
  const net = parseCidr('10.2.0.0/16')
  t.ok(contains(net, parseIPv4('10.2.255.255')))
  t.notOk(contains(net, parseIPv4('10.3.0.0')))
  t.ok(contains(net, parseCidr('10.2.45.0/24')))
  t.notOk(contains(parseCidr('10.2.45.0/24'), net), 'a wider prefix is not inside a narrower one')
  t.ok(contains(parseCidr('0.0.0.0/0'), parseCidr('255.255.255.255/32')))
  t.ok(overlaps(net, parseCidr('10.0.0.0/8')))
  t.notOk(overlaps(net, parseCidr('10.3.0.0/16')))
  t.equal(compareCidr(parseCidr('10.2.0.0/16'), parseCidr('10.2.0.0/24')) < 0, true, 'wider first at the same address')
})

t.test('subnets of a network', async (t) => {
  const net = parseCidr('10.2.0.0/16')
  t.equal(subnetCountIn(net, 24), 256)
  t.equal(formatCidr(subnetAt(net, 24, 0)), '10.2.0.0/24')
  t.equal(formatCidr(subnetAt(net, 24, 45)), '10.2.45.0/24')
  t.equal(formatCidr(subnetAt(net, 24, 255)), '10.2.255.0/24')
  t.throws(() => subnetAt(net, 24, 256), RangeError)
  t.throws(() => subnetAt(net, 24, -1), RangeError)
  t.throws(() => subnetAt(net, 15, 0), RangeError, 'wider than the network')
  t.equal(subnetIndex(net, parseCidr('10.2.45.0/24')), 45)
  t.equal(subnetIndex(net, parseCidr('10.3.45.0/24')), -1)
  t.equal(subnetIndex(net, parseCidr('10.2.45.1/24')), -1, 'not a subnet address')
  t.equal(subnetCount(net, 24, parseIPv4('10.2.1.0'), parseIPv4('10.2.255.0')), 255, 'flannel default bounds')
  t.equal(subnetCount(net, 24, parseIPv4('10.2.1.1'), parseIPv4('10.2.3.0')), 2, 'min rounds up to the next subnet')
  t.equal(subnetCount(net, 24, parseIPv4('10.2.9.0'), parseIPv4('10.2.3.0')), 0, 'min above max is empty')
  t.equal(subnetCount(net, 24, parseIPv4('9.0.0.0'), parseIPv4('11.0.0.0')), 256, 'bounds outside the network clamp')
  t.same([...subnets(net, 18)].map(formatCidr), ['10.2.0.0/18', '10.2.64.0/18', '10.2.128.0/18', '10.2.192.0/18'])
  t.equal(subnetCountIn(parseCidr('0.0.0.0/0'), 32), 2 ** 32, 'the whole address space counts exactly')
})

t.test('gateway and neighbours', async (t) => {
  const s = parseCidr('10.2.45.0/24')
  t.equal(formatIPv4(gatewayOf(s)), '10.2.45.1')
  t.equal(formatCidr(gatewayCidr(s)), '10.2.45.1/24', "docker's --bip form")
  t.equal(formatCidr(nextSubnet(s)!), '10.2.46.0/24')
  t.equal(formatCidr(prevSubnet(s)!), '10.2.44.0/24')
  t.equal(nextSubnet(parseCidr('255.255.255.0/24')), undefined)
  t.equal(prevSubnet(parseCidr('0.0.0.0/24')), undefined)
  t.equal(formatCidr(nextSubnet(parseCidr('10.2.45.9/24'))!), '10.2.46.0/24', 'host bits ignored')
})

t.test('property: format then parse is the identity', async (t) => {
  fc.assert(fc.property(ip, (a) => parseIPv4(formatIPv4(a)) === a))
  fc.assert(fc.property(cidr, (c) => {
    const back = parseCidr(formatCidr(c))
    return back.ip === c.ip && back.len === c.len
  }))
  fc.assert(fc.property(fc.ipV4(), (s) => formatIPv4(parseIPv4(s)) === s))
  t.pass('round trips hold')
})

t.test('property: contains and overlaps agree with address ranges', async (t) => {
  fc.assert(fc.property(canonical, ip, (c, a) => {
    const { first, last } = rangeOf(c)
    return contains(c, a) === (a >= first && a <= last)
  }))
  fc.assert(fc.property(canonical, canonical, (a, b) => {
    const ra = rangeOf(a)
    const rb = rangeOf(b)
    const byRange = ra.first <= rb.last && rb.first <= ra.last
    return overlaps(a, b) === byRange && overlaps(a, b) === overlaps(b, a) && overlaps(a, b) === (contains(a, b) || contains(b, a))
  }))
  fc.assert(fc.property(cidr, (c) => isCanonical(networkOf(c)) && contains(c, c.ip) && contains(networkOf(c), c)))
  t.pass('consistent')
})

t.test('property: subnets cover exactly the bounded range, aligned, without overlap', async (t) => {
  const setup = fc
    .record({ netLen: fc.integer({ min: 8, max: 28 }), extra: fc.integer({ min: 0, max: 6 }), base: ip })
    .chain(({ netLen, extra, base }) => {
      const network = networkOf({ ip: base, len: netLen })
      const { first, last } = rangeOf(network)
      const addr = fc.integer({ min: first - 1000, max: last + 1000 }).map((a) => Math.min(Math.max(a, 0), 2 ** 32 - 1))
      return fc.record({ network: fc.constant(network), subnetLen: fc.constant(Math.min(netLen + extra, 32)), min: addr, max: addr })
    })
  fc.assert(
    fc.property(setup, ({ network, subnetLen, min, max }) => {
      const list: Cidr[] = [...subnets(network, subnetLen, min, max)]
      if (list.length !== subnetCount(network, subnetLen, min, max)) return false
      for (const [i, s] of list.entries()) {
        if (s.len !== subnetLen || !isCanonical(s) || !contains(network, s)) return false
        if (s.ip < min || s.ip > max) return false
        if (i > 0 && nextSubnet(list[i - 1]!)!.ip !== s.ip) return false // adjacent: no gap, no overlap
      }
      // nothing left out at either end
      const before = list.length ? prevSubnet(list[0]!) : undefined
      const after = list.length ? nextSubnet(list[list.length - 1]!) : undefined
      if (before && contains(network, before) && before.ip >= min) return false
      if (after && contains(network, after) && after.ip <= max) return false
      return true
    }),
    { numRuns: 300 },
  )
  fc.assert(
    fc.property(canonical.filter((c) => c.len >= 16 && c.len <= 30), fc.integer({ min: 0, max: 2 }), (network, extra) => {
      const subnetLen = network.len + extra
      const all = [...subnets(network, subnetLen)]
      return (
        all.length === subnetCountIn(network, subnetLen) &&
        all.every((s, i) => subnetIndex(network, s) === i && subnetAt(network, subnetLen, i).ip === s.ip) &&
        all[0]!.ip === network.ip &&
        broadcastOf(all[all.length - 1]!) === broadcastOf(network)
      )
    }),
  )
  t.pass('exact cover')
})
