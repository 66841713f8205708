// The iptables reconciler on two simulated hosts with real dockerds: FORWARD's
// policy is DROP on both (as Docker leaves it), and weft's own chains alone
// let containers on different hosts reach each other (the tutorial's
// `iptables -P FORWARD ACCEPT` is never needed); a deleted rule, jump or chain
// is back within 5 s; Docker's and the user's rules are never touched; the rules
// outlive the agent; deleting the overlay removes them.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { createCluster, startWeftd, until, type Cluster } from '../helpers/weftd.js'

const HOSTS = ['h1', 'h2'] as const

/** The condition of `type` in a host's lease status once it has `status` (and `reason`). */
async function condition(c: Cluster, host: string, type: string, status: 'True' | 'False', reason?: string, timeoutMs = 60_000) {
  return until(`${type}=${status}${reason ? `/${reason}` : ''} on ${host}`, async () => {
    const cond = (await c.lease(host))?.status?.conditions?.find((x) => x.type === type)
    return cond && cond.status === status && (!reason || cond.reason === reason) ? cond : undefined
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n--- weftd ${host} log tail:\n${c.weftds.get(host)?.output().slice(-3000)}`)
  })
}

t.test('FORWARD DROP on both hosts, weft rules pass container traffic, drift repaired, foreign rules untouched', async (t) => {
  const started = Date.now()
  const c = await createCluster({ hosts: [...HOSTS], overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' } }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-fw-'))
  const daemons = new Map<string, Dockerd>()
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop()
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const { topo } = c
  const ipt = (h: string, args: string[]) => topo.exec(h, 'iptables', args)
  const chain = (h: string, table: string, name: string) => ipt(h, ['-t', table, '-S', name]).catch(() => '')
  const save = async (h: string) => (await topo.exec(h, 'iptables-save', [])).split('\n').filter((l) => !l.startsWith('#'))

  // the user's rules and Docker's policy, before weft runs
  for (const h of HOSTS) {
    await ipt(h, ['-P', 'FORWARD', 'DROP'])
    await ipt(h, ['-A', 'FORWARD', '-s', '192.0.2.0/24', '-j', 'DROP'])
    await ipt(h, ['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE'])
  }

  for (const h of topo.hosts) c.weftds.set(h.name, await startWeftd(topo, h, { endpoint: c.etcd.netnsEndpoint, prefix: c.prefix, dir }))
  // no dockerd yet: the agent runs anyway and says so
  await condition(c, 'h1', 'Docker', 'False', 'DaemonUnavailable')

  // dockerd starts as the systemd drop-in starts it: with weft's DOCKER_NETWORK_OPTIONS
  for (const h of HOSTS) {
    const hostDir = dirname(c.weftds.get(h)!.subnetFile)
    const opts = await until(`${h} docker opts file`, () => readFile(join(hostDir, 'docker'), 'utf8').catch(() => undefined))
    const flags = /^DOCKER_NETWORK_OPTIONS="\s*(.*)"$/m.exec(opts)![1]!.split(' ')
    daemons.set(h, await startDockerd(topo, h, { dir: hostDir, flags }))
  }
  for (const h of HOSTS) {
    await condition(c, h, 'Docker', 'True')
    await condition(c, h, 'Firewall', 'True')
    await condition(c, h, 'DataPath', 'True')
  }
  t.comment(`two hosts converged after ${Date.now() - started} ms`)

  const [d1, d2] = [daemons.get('h1')!, daemons.get('h2')!]
  const image = await importBusybox(d1)
  await importBusybox(d2)
  await d1.docker(['run', '-d', '--name', 'c1', image, 'sleep', '600'])
  await d2.docker(['run', '-d', '--name', 'c2', image, 'sleep', '600'])
  const ip2 = (await d2.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'c2'])).trim()
  const lease2 = await c.lease('h2')
  t.ok(ip2.startsWith(lease2!.spec.subnet.replace(/0\/24$/, '')), `c2 (${ip2}) is in h2's lease ${lease2!.spec.subnet}`)
  const ping = (count = 2) => d1.docker(['exec', 'c1', 'ping', '-c', String(count), '-W', '2', ip2], { timeoutMs: 20_000 })
  t.match(await ping(), /2 packets received/, 'c1 on h1 pings c2 on h2 with FORWARD DROP on both hosts')

  for (const h of HOSTS) {
    const rules = await save(h)
    t.ok(rules.some((l) => /^:FORWARD DROP/.test(l)), `${h}: FORWARD policy still DROP`)
    t.ok(rules.includes('-A FORWARD -s 192.0.2.0/24 -j DROP'), `${h}: the user's FORWARD rule is untouched`)
    t.ok(rules.includes('-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE'), `${h}: the user's nat rule is untouched`)
    t.ok(rules.some((l) => l.startsWith('-A FORWARD -j DOCKER-USER')), `${h}: Docker's jumps are untouched`)
    t.match(await chain(h, 'nat', 'WEFT-POSTRTG'), /MASQUERADE --random-fully/, `${h}: masquerade with --random-fully`)
    // host-gw answers probes on its docker0 gateway, the .1 of its lease
    const gateway = (await c.lease(h))!.spec.subnet.replace(/0\/24$/, '1')
    t.match(await chain(h, 'filter', 'WEFT-INPUT'), new RegExp(`-A WEFT-INPUT -s 10\\.2\\.0\\.0/16 -d ${gateway.replace(/\./g, '\\.')}/32 -p udp -m udp --dport 9812 .*-j ACCEPT`), `${h}: peers' probes may reach ${gateway} whatever INPUT's policy`)
    t.ok(rules.some((l) => l.startsWith('-A INPUT') && l.endsWith('-j WEFT-INPUT')), `${h}: jumped to from INPUT`)
  }

  // drift: a deleted rule, a deleted jump, a deleted chain, each back within 5 s (the monitor: well under a second)
  const fwdBefore = await chain('h2', 'filter', 'WEFT-FWD')
  const repaired = async (what: string, damage: () => Promise<unknown>, check: () => Promise<boolean>) => {
    await damage()
    const at = Date.now()
    await until(what, async () => check(), 5_000, 50)
    t.pass(`${what}: repaired in ${Date.now() - at} ms`)
  }
  await repaired('a deleted WEFT-FWD rule on h2', () => ipt('h2', ['-D', 'WEFT-FWD', '2']), async () => (await chain('h2', 'filter', 'WEFT-FWD')) === fwdBefore)
  const masqJump = ['-t', 'nat', '-D', 'POSTROUTING', '-m', 'comment', '--comment', 'weft masq', '-j', 'WEFT-POSTRTG']
  await repaired('a deleted POSTROUTING jump on h1', () => ipt('h1', masqJump), async () => (await save('h1')).some((l) => l.includes('-j WEFT-POSTRTG') && l.startsWith('-A POSTROUTING')))
  const fwdJumpRule = '-D FORWARD -m comment --comment "weft forward" -j WEFT-FWD'
  const fwdJump = ['-D', 'FORWARD', '-m', 'comment', '--comment', 'weft forward', '-j', 'WEFT-FWD']
  await repaired(
    'a deleted WEFT-FWD chain on h2',
    // one transaction: the agent repairs a lone deleted jump before a second command could delete the chain
    () => topo.exec('h2', 'sh', ['-c', `printf '%s\\n' '*filter' '${fwdJumpRule}' '-F WEFT-FWD' '-X WEFT-FWD' COMMIT | iptables-restore --noflush`]),
    async () => (await chain('h2', 'filter', 'WEFT-FWD')) === fwdBefore && (await save('h2')).some((l) => l.startsWith('-A FORWARD') && l.endsWith('-j WEFT-FWD')),
  )
  t.match(await ping(), /2 packets received/, 'traffic passes after the repairs')

  // the rules outlive the agent; without them FORWARD DROP blocks the traffic; a new agent puts them back
  const w2 = c.weftds.get('h2')!
  await w2.kill('SIGTERM')
  t.equal(await chain('h2', 'filter', 'WEFT-FWD'), fwdBefore, 'a stopped agent leaves its rules in place')
  t.match(await ping(), /2 packets received/, 'and traffic keeps flowing')
  await ipt('h2', fwdJump)
  await t.rejects(ping(1), 'without the WEFT-FWD jump, FORWARD DROP on h2 drops c1 -> c2')
  await w2.start()
  await until('traffic after the agent came back', async () => ping(1).then(() => true, () => false), 30_000, 500)
  t.pass('the restarted agent restored the jump; c1 reaches c2 again')

  // deleting the overlay removes weft's chains, and only them
  const userOnly = async (h: string) => (await save(h)).filter((l) => !/WEFT-/.test(l))
  const before = new Map<string, string[]>()
  for (const h of HOSTS) before.set(h, await userOnly(h))
  await c.store.delete('OverlayConfig', 'default')
  for (const h of HOSTS) {
    await until(`${h}: weft chains removed`, async () => !(await save(h)).some((l) => /WEFT-/.test(l)), 15_000, 100)
    t.pass(`${h}: WEFT-FWD, WEFT-POSTRTG and WEFT-INPUT removed with the overlay`)
    t.same(await userOnly(h), before.get(h), `${h}: every other rule and policy is as it was`)
  }
  await condition(c, 'h1', 'Firewall', 'False', 'OverlayMissing')
  t.comment(`whole test ${Date.now() - started} ms`)
})
