// The WireGuard host adapter against the real thing: wireguard-go (or the
// kernel's WireGuard where the module is there) in two simulated hosts joined
// by the underlay bridge, configured with the real `wg`, each host with its
// own /run/wireguard (test/helpers/wireguard.ts). Every daemon this file
// starts is stopped by PID in the teardown, which also runs on failure.
import { spawn } from 'node:child_process'
import { readFileSync, readlinkSync } from 'node:fs'
import { readdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { run as runHost, type Runner } from '../../src/host/exec.js'
import { Links } from '../../src/host/links.js'
import { loadOrCreateKey, type WgKeyPair } from '../../src/host/wgkey.js'
import { WgError, WireGuard, type WgPeerConfig } from '../../src/host/wireguard.js'
import { createTopology, nsenterArgs, run, type SimHost } from '../helpers/netns.js'
import { hostRunner, inHostMounts, netnsInode, processAlive, stopWireguardDaemons, wireguardDaemonPids, wireguardRunDir } from '../helpers/wireguard.js'
import { createCluster, until } from '../helpers/weftd.js'

const DEV = 'weft-wg'
const PORT = 51820

interface Host {
  sim: SimHost
  runDir: string
  run: Runner
  wg: WireGuard
  links: Links
  key: WgKeyPair
  /** this host's overlay subnet and the device's address in it */
  subnet: string
  address: string
}

const topo = await createTopology({ hosts: ['h1', 'h2', 'h3'] })
const tmp = await mkdtemp(join(tmpdir(), 'weft-wg-'))
const inodes = topo.hosts.map((h) => netnsInode(h.netns))
t.teardown(async () => {
  // by PID, before the namespaces go: a daemon would otherwise keep its namespace (and TUN) alive
  for (const inode of inodes) await stopWireguardDaemons(inode)
  await topo.destroy()
  await rm(tmp, { recursive: true, force: true })
})

async function host(sim: SimHost, n: number, runDir?: string): Promise<Host> {
  const dir = runDir ?? (await wireguardRunDir(tmp, sim.name))
  const runner = hostRunner(sim.netns, dir)
  return {
    sim,
    runDir: dir,
    run: runner,
    wg: new WireGuard({ runner }),
    links: new Links({ netns: sim.netns }),
    key: await loadOrCreateKey(join(tmp, sim.name, 'keys', 'wireguard.key')),
    subnet: `10.77.${n}.0/24`,
    address: `10.77.${n}.1`,
  }
}
const h1 = await host(topo.hosts[0]!, 1)
const h2 = await host(topo.hosts[1]!, 2)

const peerOf = (h: Host, key = h.key.publicKey): WgPeerConfig => ({ publicKey: key, endpoint: `${h.sim.ip}:${PORT}`, allowedIPs: [h.subnet], persistentKeepalive: 0 })
const ping = (from: Host, to: Host, args: string[] = ['-c', '2', '-W', '2']) =>
  run('nsenter', nsenterArgs(from.sim.netns, 'busybox', ['ping', ...args, to.address]), 60_000)
const pingFails = (from: Host, to: Host) =>
  ping(from, to, ['-c', '3', '-W', '1']).then(
    () => false,
    () => true,
  )
const daemonPid = (h: Host) => {
  const pids = wireguardDaemonPids(h.sim.netns)
  return pids.length === 1 ? pids[0] : undefined
}

t.test('two hosts bring up weft-wg with keys from their key files, peer each other, and ping through the tunnel', async (t) => {
  for (const h of [h1, h2]) {
    const r = await h.wg.ensureDevice(DEV, { privateKey: h.key.privateKey, listenPort: PORT, mtu: 1440 })
    t.equal(r.created, true, `${h.sim.name}: device made`)
    t.ok(r.implementation === 'kernel' || r.implementation === 'wireguard-go', `${h.sim.name}: runs ${r.implementation}`)
    const link = await h.links.getLink(DEV)
    t.equal(link?.mtu, 1440, `${h.sim.name}: MTU set`)
    t.equal(link?.up, true, `${h.sim.name}: device up`)
    await h.links.addAddress(DEV, `${h.address}/32`)
  }
  await h1.run('ip', ['route', 'replace', h2.subnet, 'dev', DEV])
  await h2.run('ip', ['route', 'replace', h1.subnet, 'dev', DEV])

  t.same(await h1.wg.syncPeers(DEV, [peerOf(h2)]), { added: [h2.key.publicKey], changed: [], removed: [] })
  t.same(await h2.wg.syncPeers(DEV, [peerOf(h1)]), { added: [h1.key.publicKey], changed: [], removed: [] })
  t.same(await h1.wg.syncPeers(DEV, [peerOf(h2)]), { added: [], changed: [], removed: [] }, 'a second sync changes nothing')

  await ping(h1, h2)
  await ping(h2, h1)
  // the overlay addresses exist only on the two weft-wg devices, so a reply means the tunnel carried it
  const handshakes = await h1.run('wg', ['show', DEV, 'latest-handshakes'])
  t.match(handshakes, new RegExp(`^${h2.key.publicKey.replace(/[+/]/g, '\\$&')}\\t[1-9]\\d*$`, 'm'), 'h1 completed a handshake with h2')

  const state = await h1.wg.state(DEV)
  t.same(state, {
    implementation: state?.implementation,
    publicKey: h1.key.publicKey,
    listenPort: PORT,
    peers: [{ publicKey: h2.key.publicKey, endpoint: `${h2.sim.ip}:${PORT}`, allowedIPs: [h2.subnet], persistentKeepalive: 0 }],
  })
  // state() drops the private key: the same search finds it in what wg printed
  const dump = await h1.run('wg', ['show', DEV, 'dump'])
  t.ok(dump.includes(h1.key.privateKey), 'wg show dump carries the private key (the check below can fire)')
  t.notOk(JSON.stringify(state).includes(h1.key.privateKey), 'state() does not')

  if (state?.implementation === 'wireguard-go') {
    // each host's daemon has its own socket in its own /run/wireguard, though both devices are weft-wg
    t.ok(daemonPid(h1) && daemonPid(h2) && daemonPid(h1) !== daemonPid(h2), 'one wireguard-go per host')
    t.same(await readdir(h1.runDir), [`${DEV}.sock`])
    t.same(await readdir(h2.runDir), [`${DEV}.sock`])
  }
})

t.test('a second ensureDevice adopts the live device: same daemon, same ifindex, pings go on', async (t) => {
  const pidBefore = daemonPid(h1)
  const indexBefore = (await h1.links.getLink(DEV))?.index
  t.ok(indexBefore, 'the device exists')
  // 30 pings 100 ms apart straddle the adoption; a recreated device would have lost its peers and dropped the rest
  const pinging = ping(h1, h2, ['-c', '30', '-i', '0.1', '-W', '2'])
  await new Promise((r) => setTimeout(r, 500))
  const r = await h1.wg.ensureDevice(DEV, { privateKey: h1.key.privateKey, listenPort: PORT, mtu: 1440 })
  t.same(r, { implementation: r.implementation, created: false }, 'adopted, not created')
  // only what differs is set: a new MTU is applied to the same device
  await h1.wg.ensureDevice(DEV, { privateKey: h1.key.privateKey, listenPort: PORT, mtu: 1420 })
  t.equal((await h1.links.getLink(DEV))?.mtu, 1420)
  await h1.wg.ensureDevice(DEV, { privateKey: h1.key.privateKey, listenPort: PORT, mtu: 1440 })
  const out = await pinging
  const stats = /(\d+) packets transmitted, (\d+) packets received/.exec(out)
  t.ok(stats, 'ping printed its statistics')
  t.equal(stats?.[2], stats?.[1], `no ping lost across adoption (${stats?.[0]})`)
  t.equal((await h1.links.getLink(DEV))?.index, indexBefore, 'same ifindex')
  if (r.implementation === 'wireguard-go') {
    t.ok(pidBefore, 'a wireguard-go daemon ran before')
    t.equal(daemonPid(h1), pidBefore, 'same wireguard-go PID')
  }
  t.same((await h1.wg.state(DEV))?.peers.map((p) => p.publicKey), [h2.key.publicKey], 'peers kept')
})

t.test('cryptokey routing: a peer configured with the wrong public key gets nothing through', async (t) => {
  await ping(h1, h2) // the same check passes with the right key
  const stranger = await loadOrCreateKey(join(tmp, 'stranger', 'wireguard.key'))
  // h1 believes h2's subnet belongs to a key h2 does not hold
  t.same(await h1.wg.syncPeers(DEV, [peerOf(h2, stranger.publicKey)]), { added: [stranger.publicKey], changed: [], removed: [h2.key.publicKey] })
  t.equal(await pingFails(h1, h2), true, 'h1 -> h2: h2 cannot open a handshake sealed to a key it does not hold')
  t.equal(await pingFails(h2, h1), true, "h2 -> h1: h1 drops a handshake from a key that is not its peer's")

  await h1.wg.syncPeers(DEV, [peerOf(h2)])
  await until('pings again with the right key', () => ping(h1, h2).then(() => true), 30_000, 500)
  t.pass('the right key works again')
})

t.test('a host without its own /run/wireguard collides on the socket of another host with the same device name', async (t) => {
  // h3 shares h1's directory, as two hosts on one machine would share the real /run/wireguard
  const h3 = await host(topo.hosts[2]!, 3, h1.runDir)
  const err = await h3.wg.ensureDevice(DEV, { privateKey: h3.key.privateKey, listenPort: PORT, mtu: 1440 }).then(
    () => undefined,
    (e: unknown) => e,
  )
  if (err === undefined) {
    // a kernel device needs no socket: there is no collision to show
    t.equal((await h3.wg.state(DEV))?.implementation, 'kernel', 'no error only with kernel WireGuard')
    await h3.wg.remove(DEV)
    return
  }
  t.type(err, WgError)
  t.match((err as Error).message, /weft-wg: wireguard-go could not start: .*socket in use/)
  t.equal(await h3.links.getLink(DEV), null, 'no half-made device left on h3')
  await ping(h1, h2) // h1's daemon and socket are untouched
  t.same(await readdir(h1.runDir), [`${DEV}.sock`])
})

t.test('refusals leave nothing half-made: a port in use, a foreign link of that name, a bad key', async (t) => {
  const h3 = await host(topo.hosts[2]!, 3)
  await h3.wg.ensureDevice('weft-wg-a', { privateKey: h3.key.privateKey, listenPort: 51830, mtu: 1440 })
  const pidsBefore = wireguardDaemonPids(h3.sim.netns)
  const err = await h3.wg.ensureDevice('weft-wg-b', { privateKey: h3.key.privateKey, listenPort: 51830, mtu: 1440 }).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.type(err, WgError, 'the second device cannot have the port')
  t.match(err?.message, /^weft-wg-b: wg set listen-port 51830 failed: /)
  t.notOk(err?.message.includes(h3.key.privateKey), 'no private key in the message')
  t.equal(await h3.links.getLink('weft-wg-b'), null, 'the device it made is gone again')
  await until('its daemon gone', async () => wireguardDaemonPids(h3.sim.netns).length === pidsBefore.length, 10_000, 50)
  t.same(wireguardDaemonPids(h3.sim.netns), pidsBefore, 'only the first daemon runs')
  t.equal(await h3.wg.remove('weft-wg-a'), true)

  await h3.run('ip', ['link', 'add', DEV, 'type', 'bridge'])
  await t.rejects(h3.wg.ensureDevice(DEV, { privateKey: h3.key.privateKey, listenPort: PORT, mtu: 1440 }), { name: 'WgError', message: /weft-wg: a link of that name exists and is no WireGuard device \(kind bridge\)/ })
  t.equal((await h3.links.getLink(DEV))?.kind, 'bridge', 'the foreign link is left alone')
  t.equal(await h3.wg.state(DEV), undefined, 'and is no WireGuard device to state()')
  await h3.run('ip', ['link', 'del', DEV])

  await t.rejects(h3.wg.ensureDevice(DEV, { privateKey: 'not a key', listenPort: PORT, mtu: 1440 }), { name: 'WgKeyError' })
  t.equal(await h3.links.getLink(DEV), null, 'a bad key makes no device')
})

t.test("the daemon holds none of the agent's stdio, even with LOG_LEVEL in the agent's environment", async (t) => {
  const h3 = await host(topo.hosts[2]!, 3)
  const daemonOf = (dev: string) =>
    wireguardDaemonPids(h3.sim.netns).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dev))
  // the hazard, shown first: with LOG_LEVEL set, wireguard-go hands its caller's stdout and stderr to the daemon,
  // so a caller waiting for them to close waits for the daemon to exit (and the daemon dies of EPIPE once the caller has)
  const control = spawn('nsenter', [`--net=/run/netns/${h3.sim.netns}`, '--', ...inHostMounts(h3.runDir), 'setsid', '--wait', 'wireguard-go', 'weft-wg-ctl'], {
    env: { ...process.env, LOG_LEVEL: 'verbose' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  control.stdout.resume()
  control.stderr.resume()
  let closed = false
  const allClosed = new Promise<void>((r) => control.once('close', () => r()))
  void allClosed.then(() => (closed = true))
  const code = await new Promise<number | null>((r) => control.once('exit', (c) => r(c)))
  t.equal(code, 0, 'the starting wireguard-go exits 0 once its daemon is forked')
  const held = await until('the control daemon', async () => daemonOf('weft-wg-ctl'), 10_000, 50)
  t.teardown(() => {
    if (processAlive(held)) process.kill(held, 'SIGKILL')
  })
  t.match(readlinkSync(`/proc/${held}/fd/1`), /^(socket|pipe):/, "the daemon holds its caller's stdout")
  await new Promise((r) => setTimeout(r, 1_000))
  t.equal(closed, false, "so the caller's pipes do not close while the daemon runs (exec.ts run() would never return)")
  process.kill(held, 'SIGTERM')
  await allClosed
  t.pass('they close when the daemon exits')

  const saved = process.env.LOG_LEVEL
  process.env.LOG_LEVEL = 'verbose'
  try {
    const started = Date.now()
    await h3.wg.ensureDevice(DEV, { privateKey: h3.key.privateKey, listenPort: PORT, mtu: 1440 })
    t.ok(Date.now() - started < 15_000, 'ensureDevice returns once the device is up')
  } finally {
    if (saved === undefined) delete process.env.LOG_LEVEL
    else process.env.LOG_LEVEL = saved
  }
  const pid = daemonOf(DEV)
  t.ok(pid, 'the daemon runs')
  for (const fd of [0, 1, 2]) t.equal(readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null', `its fd ${fd} is /dev/null`)
  // /proc/<pid>/stat after the ')': state ppid pgrp session ...
  const ids = (p: number | 'self') => {
    const text = readFileSync(`/proc/${p}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) }
  }
  const mine = ids('self')
  t.not(ids(pid!).pgrp, mine.pgrp, 'in a process group of its own: no group kill or terminal signal aimed at the caller reaches it')
  // a session of its own would be a scheduling autogroup of its own, which cost the data path about 30% of its throughput (bench/datapath.ts)
  t.equal(ids(pid!).session, mine.session, "and in the caller's session, as a daemon started by hand from a shell is")
  t.not(ids(pid!).ppid, process.pid, 'and no child of the caller')

  // a daemon that dies takes its TUN with it and leaves its socket file: the next ensureDevice starts afresh
  process.kill(pid!, 'SIGKILL')
  await until('the TUN gone with its daemon', async () => (await h3.links.getLink(DEV)) === null, 10_000, 50)
  t.same(await readdir(h3.runDir), [`${DEV}.sock`], 'a stale socket is left behind')
  const again = await h3.wg.ensureDevice(DEV, { privateKey: h3.key.privateKey, listenPort: PORT, mtu: 1440 })
  t.equal(again.created, true, 'a new device over the stale socket')
  t.not(daemonOf(DEV), pid, 'run by a new daemon')
  t.equal((await h3.wg.state(DEV))?.publicKey, h3.key.publicKey)
  t.equal(await h3.wg.remove(DEV), true)
})

t.test('remove() removes the device and stops its daemon', async (t) => {
  const pid = daemonPid(h2)
  t.equal(await h2.wg.remove(DEV), true)
  t.equal(await h2.links.getLink(DEV), null, 'device gone')
  t.equal(await h2.wg.state(DEV), undefined, 'state: no device')
  if (pid !== undefined) {
    await until('the daemon to exit', async () => !processAlive(pid), 10_000, 50)
    t.same(await readdir(h2.runDir), [], 'its socket removed')
  }
  t.equal(await h2.wg.remove(DEV), false, 'a second remove finds nothing')
  await t.rejects(h2.wg.syncPeers(DEV, []), /weft-wg: no WireGuard device/)
})

t.test('agents started with wireguardRunDir: two hosts own a weft-wg each, and a restarted agent reaches its running daemon', async (t) => {
  const c = await createCluster({ hosts: ['a1', 'a2'], overlay: { network: '10.78.0.0/16', backend: { type: 'vxlan' } }, wireguardRunDir: true })
  t.teardown(() => c.destroy())
  // not weft-wg: these vxlan agents remove a weft-wg they find (another backend's leftover), on their own schedule
  const DEV = 'weft-wg-agt'
  const [w1, w2] = [c.weftds.get('a1')!, c.weftds.get('a2')!]
  await Promise.all([w1.started(), w2.started()])
  // what the agent would see: its network and mount namespaces, entered by its PID
  const agentView = (pid: () => number): Runner => (cmd, args, o) => runHost('nsenter', ['-t', String(pid()), '--net', '--mount', '--', cmd, ...args], o)
  const wg1 = new WireGuard({ runner: agentView(() => w1.pid) })
  const wg2 = new WireGuard({ runner: agentView(() => w2.pid) })
  const k1 = await loadOrCreateKey(join(tmp, 'a1', 'wireguard.key'))
  const k2 = await loadOrCreateKey(join(tmp, 'a2', 'wireguard.key'))
  const r1 = await wg1.ensureDevice(DEV, { privateKey: k1.privateKey, listenPort: PORT, mtu: 1440 })
  const r2 = await wg2.ensureDevice(DEV, { privateKey: k2.privateKey, listenPort: PORT, mtu: 1440 })
  t.same([r1.created, r2.created], [true, true], 'both hosts made weft-wg')
  t.equal((await wg1.state(DEV))?.publicKey, k1.publicKey)
  t.equal((await wg2.state(DEV))?.publicKey, k2.publicKey, 'each device its own key: no shared socket')
  const a1 = c.topo.hosts.find((h) => h.name === 'a1')!
  const pid = wireguardDaemonPids(a1.netns)[0]
  if (r1.implementation === 'wireguard-go') {
    t.ok(pid, 'a1 runs a wireguard-go')
    t.same(await readdir(w1.wireguardRunDir!), [`${DEV}.sock`], "the socket is in a1's directory")
  }

  const oldPid = w1.pid
  await w1.kill('SIGKILL')
  if (pid !== undefined) t.ok(processAlive(pid), 'the daemon outlived its SIGKILLed agent')
  await w1.start()
  await w1.started()
  t.not(w1.pid, oldPid, 'a new agent process')
  const again = await wg1.ensureDevice(DEV, { privateKey: k1.privateKey, listenPort: PORT, mtu: 1440 })
  t.equal(again.created, false, 'the restarted agent adopts the device through the same socket')
  if (pid !== undefined) t.same(wireguardDaemonPids(a1.netns), [pid], 'the same daemon')
})
