// The WireGuard adapter's pure parts: which implementation a host runs, how
// `wg show dump` reads, and the peer plan and the `wg set` arguments it becomes.
import t from 'tap'
import { WgError, chooseImplementation, parseWgDump, peerArgs, planPeers, type WgPeerConfig } from '../../src/host/wireguard.js'

const key = (n: number) => Buffer.alloc(32, n).toString('base64')
const peer = (n: number, extra: Partial<WgPeerConfig> = {}): WgPeerConfig => ({
  publicKey: key(n),
  endpoint: `192.168.1.${n}:51820`,
  allowedIPs: [`10.2.${n}.0/24`],
  persistentKeepalive: 0,
  ...extra,
})

t.test('chooseImplementation: the kernel where it works, else wireguard-go, else a clear error', async (t) => {
  t.equal(chooseImplementation({ kernel: true, userspace: true }), 'kernel')
  t.equal(chooseImplementation({ kernel: true, userspace: false }), 'kernel')
  t.equal(chooseImplementation({ kernel: false, userspace: true }), 'wireguard-go')
  t.throws(() => chooseImplementation({ kernel: false, userspace: false }), { name: 'WgError', message: /no WireGuard on this host: .*kernel module.*wireguard-go/ })
})

t.test('parseWgDump: interface line and peers, (none) and off, allowed IPs sorted, no private key kept', async (t) => {
  const priv = key(99)
  const dump = [
    [priv, key(1), '51820', 'off'],
    [key(2), '(none)', '192.168.1.2:51820', '10.2.2.0/24', '1733040000', '1234', '5678', 'off'],
    [key(3), '(none)', '(none)', '10.2.30.0/24,10.2.3.0/24', '0', '0', '0', '25'],
    [key(4), '(none)', '[fd00::4]:51820', '(none)', '0', '0', '0', 'off'],
  ]
    .map((f) => f.join('\t'))
    .join('\n')
  const parsed = parseWgDump(`${dump}\n`)
  t.same(parsed, {
    publicKey: key(1),
    listenPort: 51820,
    peers: [
      { publicKey: key(2), endpoint: '192.168.1.2:51820', allowedIPs: ['10.2.2.0/24'], persistentKeepalive: 0 },
      { publicKey: key(3), endpoint: '', allowedIPs: ['10.2.3.0/24', '10.2.30.0/24'], persistentKeepalive: 25 },
      { publicKey: key(4), endpoint: '[fd00::4]:51820', allowedIPs: [], persistentKeepalive: 0 },
    ],
  })
  t.ok(dump.includes(priv), 'the dump holds the private key (the check below can fire)')
  t.notOk(JSON.stringify(parsed).includes(priv), 'the parse does not')
  t.equal(parseWgDump(`(none)\t(none)\t0\toff\n`).publicKey, '', 'a device without a key yet')
  t.throws(() => parseWgDump(''), WgError)
  t.throws(() => parseWgDump(`${priv}\t${key(1)}\t51820\toff\n${key(2)}\t(none)\n`), { name: 'WgError', message: /short peer line/ })
})

t.test('planPeers: by public key, add, change what differs, remove the rest', async (t) => {
  const current = [peer(1), peer(2), peer(3, { allowedIPs: ['10.2.33.0/24', '10.2.3.0/24'] }), peer(4)]
  const desired = [
    peer(1), // same
    peer(2, { endpoint: '192.168.9.2:51820' }), // moved
    peer(3, { allowedIPs: ['10.2.3.0/24', '10.2.33.0/24'] }), // same set, other order
    peer(5), // new
    peer(6, { endpoint: '' }), // new, endpoint unknown
  ]
  const plan = planPeers(current, desired)
  t.same(plan.add.map((p) => p.publicKey), [key(5), key(6)])
  t.same(plan.change.map((p) => p.publicKey), [key(2)])
  t.same(plan.remove, [key(4)])
  t.same(planPeers(current, current), { add: [], change: [], remove: [] }, 'nothing to do when they match')
  t.same(planPeers([], []), { add: [], change: [], remove: [] })
  t.same(planPeers(current, []).remove, current.map((p) => p.publicKey), 'no desired peers: all go')

  t.same(planPeers([peer(1)], [peer(1, { persistentKeepalive: 25 })]).change.length, 1, 'keepalive change')
  t.same(planPeers([peer(1)], [peer(1, { allowedIPs: [] })]).change.length, 1, 'allowed IPs change')
  t.same(planPeers([peer(1)], [peer(1, { endpoint: '' })]).change.length, 0, 'no desired endpoint keeps the learnt one (wg cannot unset it)')
})

t.test('planPeers: refuses a bad key, a duplicate and a bad keepalive before anything runs', async (t) => {
  t.throws(() => planPeers([], [peer(1, { publicKey: 'not-a-key' })]), { name: 'WgError', message: /"not-a-key" is not a base64 32-byte WireGuard key/ })
  t.throws(() => planPeers([], [peer(1, { publicKey: Buffer.alloc(31).toString('base64') })]), WgError)
  t.throws(() => planPeers([], [peer(1), peer(1, { endpoint: '192.168.1.9:51820' })]), { message: /wanted twice/ })
  t.throws(() => planPeers([], [peer(1, { persistentKeepalive: -1 })]), { message: /persistentKeepalive -1/ })
  t.throws(() => planPeers([], [peer(1, { persistentKeepalive: 1.5 })]), { message: /persistentKeepalive 1.5/ })
  t.throws(() => planPeers([], [peer(1, { persistentKeepalive: 70000 })]), { message: /persistentKeepalive 70000/ })
})

t.test('peerArgs: removals first, then each peer whole (keepalive off, allowed IPs sorted, no empty endpoint)', async (t) => {
  t.same(peerArgs({ add: [], change: [], remove: [] }), [])
  t.same(
    peerArgs({
      add: [peer(5, { allowedIPs: ['10.2.50.0/24', '10.2.5.0/24'] }), peer(6, { endpoint: '', persistentKeepalive: 25 })],
      change: [peer(2, { allowedIPs: [] })],
      remove: [key(4)],
    }),
    [
      'peer', key(4), 'remove',
      'peer', key(5), 'endpoint', '192.168.1.5:51820', 'persistent-keepalive', 'off', 'allowed-ips', '10.2.5.0/24,10.2.50.0/24',
      'peer', key(6), 'persistent-keepalive', '25', 'allowed-ips', '10.2.6.0/24',
      'peer', key(2), 'endpoint', '192.168.1.2:51820', 'persistent-keepalive', 'off', 'allowed-ips', '',
    ],
  )
})
