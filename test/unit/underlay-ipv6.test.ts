// publicIPv6 discovery: which of the underlay link's addresses peers route IPv6 via.
import t from 'tap'
import { pickIPv6 } from '../../src/agent/underlay.js'
import type { Address } from '../../src/host/links.js'

const v4: Address = { cidr: '192.168.1.11/24', family: 'inet', scope: 'global' }
const ll: Address = { cidr: 'fe80::a8c1:abff:fe12:3456/64', family: 'inet6', scope: 'link' }
const global: Address = { cidr: '2001:db8::11/64', family: 'inet6', scope: 'global' }

t.test('pickIPv6: global first, else link-local; never a tentative one; none without IPv6', async (t) => {
  t.equal(pickIPv6([v4, ll, global]), '2001:db8::11')
  t.equal(pickIPv6([v4, ll]), 'fe80::a8c1:abff:fe12:3456')
  t.equal(pickIPv6([v4, { ...global, tentative: true }, ll]), 'fe80::a8c1:abff:fe12:3456', 'a global address still in DAD waits')
  t.equal(pickIPv6([v4, { ...ll, tentative: true }]), undefined)
  t.equal(pickIPv6([v4]), undefined)
  t.equal(pickIPv6([v4, { cidr: '::1/128', family: 'inet6', scope: 'host' }]), undefined, 'loopback scope is never published')
})
