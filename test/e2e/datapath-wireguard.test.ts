// wireguard end to end on three simulated hosts, each with a real weftd, a
// real dockerd and busybox containers, FORWARD DROP everywhere, and the real
// wireguard-go (these machines have no WireGuard kernel module): all pairs
// ping at MTU 1440; no plaintext on the underlay (a canary counted by an
// iptables string match in the receiving host's raw table: first sent in
// clear, so the check can fire, then through the overlay); the key file's mode
// and no private key anywhere under the prefix in etcd; SIGKILL of every agent
// keeps traffic, and a restart adopts the device unchanged (same daemon, same
// ifindex, same peers); a changed key reaches the peers within 5 s; a lease
// carrying another host's key, and a host with no lease, get nothing through;
// persistentKeepalive from the spec; a live switch to vxlan and back. One
// cluster for every subtest.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { HostLease, OverlayConfig } from '../../src/crds/index.js'
import { publicKeyOf } from '../../src/host/wgkey.js'
import { parseWgDump, type WgDump } from '../../src/host/wireguard.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import { run } from '../helpers/netns.js'
import { hostRunner, wireguardDaemonPids } from '../helpers/wireguard.js'
import { createCluster, freshBundle, startWeftd, until, type Cluster } from '../helpers/weftd.js'

const HOSTS = ['h1', 'h2', 'h3'] as const
type Host = (typeof HOSTS)[number]
const MTU = 1440
const CANARY = 'weft-canary-7f3a9c'

/** The condition of `type` in a host's lease status once it has `status` and matches `message`. */
async function condition(c: Cluster, host: string, type: string, status: 'True' | 'False', message?: RegExp, timeoutMs = 60_000) {
  return until(`${type}=${status}${message ? ` ${String(message)}` : ''} on ${host}`, async () => {
    const cond = (await c.lease(host))?.status?.conditions?.find((x) => x.type === type)
    return cond && cond.status === status && (!message || message.test(cond.message)) ? cond : undefined
  }, timeoutMs).catch(async (err: Error) => {
    const cond = (await c.lease(host).catch(() => undefined))?.status?.conditions?.find((x) => x.type === type)
    throw new Error(`${err.message}; now ${JSON.stringify(cond)}\n--- weftd ${host} log tail:\n${c.weftds.get(host)?.output().slice(-3000)}`)
  })
}

/**
 * DataPath=True on the host and its data path forwarding to `n` peers, by its own /metrics: the peer
 * count lives there (and in the log); the lease's message is written only with a status or reason change.
 */
async function programmedPeers(c: Cluster, host: string, n: number, backend = 'wireguard', timeoutMs = 60_000) {
  const cond = await condition(c, host, 'DataPath', 'True', undefined, timeoutMs)
  const series = new RegExp(`^weft_datapath_peers\\{backend="${backend}"\\} ${n}$`, 'm')
  await until(`${host} forwarding to ${n} ${backend} peers`, async () => series.test(await c.weftds.get(host)!.http('/metrics')), timeoutMs, 500)
  return cond
}

t.test('wireguard: three hosts with dockerd, wireguard-go, FORWARD DROP', async (t) => {
  const started = Date.now()
  const c = await createCluster({ hosts: [...HOSTS], overlay: { network: '10.2.0.0/16', backend: { type: 'wireguard' } }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-wg-'))
  const daemons = new Map<Host, Dockerd>()
  t.teardown(async () => {
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop().catch(() => undefined)
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const { topo } = c
  const hostOf = (h: Host) => topo.hosts.find((x) => x.name === h)!
  const keyFile = (h: Host) => join(dir, h, 'keys', 'wireguard.key')
  const wg = (h: Host, args: string[]) => hostRunner(hostOf(h).netns, c.weftds.get(h)!.wireguardRunDir!)('wg', args)
  const dump = async (h: Host): Promise<WgDump> => parseWgDump(await wg(h, ['show', 'weft-wg', 'dump']))
  const link = async (h: Host) => JSON.parse(await c.exec(h, 'ip', ['-j', '-d', 'link', 'show', 'weft-wg']))[0] as { ifindex: number; mtu: number }

  for (const h of HOSTS) await c.exec(h, 'iptables', ['-P', 'FORWARD', 'DROP'])
  for (const host of topo.hosts) {
    const w = await startWeftd(topo, host, {
      endpoint: c.etcd.netnsEndpoint,
      prefix: c.prefix,
      dir,
      wireguardRunDir: true,
      args: ['--wireguard-key-file', keyFile(host.name as Host)],
    })
    c.weftds.set(host.name, w)
  }
  for (const h of HOSTS) await programmedPeers(c, h, 2)
  // dockerd as the systemd drop-in starts it: with weft's DOCKER_NETWORK_OPTIONS
  for (const h of HOSTS) {
    const hostDir = dirname(c.weftds.get(h)!.subnetFile)
    const opts = await until(`${h} docker opts file`, () => readFile(join(hostDir, 'docker'), 'utf8').catch(() => undefined))
    const flags = /^DOCKER_NETWORK_OPTIONS="\s*(.*)"$/m.exec(opts)![1]!.split(' ')
    daemons.set(h, await startDockerd(topo, h, { dir: hostDir, flags }))
  }
  for (const h of HOSTS) await condition(c, h, 'Ready', 'True')
  t.comment(`three hosts ready after ${Date.now() - started} ms`)

  const leases = new Map<Host, HostLease>()
  for (const h of HOSTS) leases.set(h, (await c.lease(h))!)
  const subnetOf = (h: Host) => leases.get(h)!.spec.subnet
  const keyOf = (h: Host) => leases.get(h)!.spec.backend!.data!.publicKey as string

  const ips = new Map<Host, string>()
  const pids = new Map<Host, number>()
  for (const h of HOSTS) {
    const d = daemons.get(h)!
    const image = await importBusybox(d)
    await d.docker(['run', '-d', '--name', `c-${h}`, image, 'sleep', '3600'])
    ips.set(h, (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `c-${h}`])).trim())
    pids.set(h, Number((await d.docker(['inspect', '-f', '{{.State.Pid}}', `c-${h}`])).trim()))
  }
  /** ping's summary either way (a loss is an answer here, not an error) */
  const ping = (a: Host, b: Host, opts: { size?: number; count?: number; waitS?: number } = {}) =>
    daemons
      .get(a)!
      .docker(['exec', `c-${a}`, 'sh', '-c', `ping -c ${opts.count ?? 2} -W ${opts.waitS ?? 2} -s ${opts.size ?? 56} ${ips.get(b)!}; exit 0`], { timeoutMs: 30_000 })
      .catch((err: Error) => err.message)
  const pings = (a: Host, b: Host, size?: number) =>
    until(`c-${a} pings c-${b}`, async () => (/2 packets received/.test(await ping(a, b, size ? { size } : {})) ? true : undefined), 30_000, 300)

  await t.test('published key and port, MTU 1440, peers, implementation, all pairs ping', async (t) => {
    for (const h of HOSTS) {
      const l = leases.get(h)!
      t.match(l.spec.backend, { type: 'wireguard', data: { publicKey: /^[A-Za-z0-9+/]{43}=$/, port: 51820 } }, `${h} published {publicKey, port}`)
      t.same(Object.keys(l.spec.backend!.data!).sort(), ['port', 'publicKey'], `${h}: nothing else in backend.data`)
      t.match(await readFile(c.weftds.get(h)!.subnetFile, 'utf8'), `FLANNEL_MTU=${MTU}`, `${h}: subnet.env MTU = 1500 - 60`)
      t.equal((await link(h)).mtu, MTU, `${h}: weft-wg MTU ${MTU}`)
    }
    const d1 = await dump('h1')
    t.equal(d1.publicKey, keyOf('h1'), "the device runs on the published key's private half")
    t.equal(d1.listenPort, 51820)
    t.same(
      d1.peers.map((p) => [p.publicKey, p.endpoint, p.allowedIPs, p.persistentKeepalive]).sort(),
      (['h2', 'h3'] as const).map((h) => [keyOf(h), `${hostOf(h).ip}:51820`, [subnetOf(h)], 0]).sort(),
      'h1: one peer per other lease: key, endpoint publicIP:port, allowed IPs = its subnet',
    )
    t.match(await c.exec('h1', 'ip', ['route', 'show', subnetOf('h2')]), /dev weft-wg/, 'a route per peer subnet into weft-wg')
    const dp = (await c.lease('h1'))!.status!.conditions!.find((x) => x.type === 'DataPath')!
    t.match(dp.message, /^wireguard \(wireguard-go\): \d+ peers? programmed/, 'the implementation in the DataPath condition')
    t.match(await c.weftds.get('h1')!.http('/metrics'), /weft_wireguard_implementation\{implementation="wireguard-go"\} 1/, 'and as a metric')
    t.match(c.weftds.get('h1')!.output(), /"device":"wireguard-go"/, 'and in the log')
    t.equal(wireguardDaemonPids(hostOf('h1').netns).length, 1, 'one wireguard-go on h1')
    for (const a of HOSTS) for (const b of HOSTS) if (a !== b) t.ok(await pings(a, b, MTU - 28), `c-${a} pings c-${b} with ${MTU - 28}-byte payloads`)
    t.match(await c.exec('h2', 'iptables', ['-S', 'FORWARD']), /^-P FORWARD DROP$/m, 'FORWARD policy still DROP')
  })

  /** packets a raw-table rule with `comment` has counted on h */
  const counted = async (h: Host, comment: string) => {
    const line = (await c.exec(h, 'iptables', ['-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n'])).split('\n').find((l) => l.includes(`/* ${comment} */`))
    if (!line) throw new Error(`no rule ${comment} on ${h}`)
    return Number(line.trim().split(/\s+/)[0])
  }
  const countRule = (h: Host, comment: string, match: string[]) => c.exec(h, 'iptables', ['-t', 'raw', '-A', 'PREROUTING', ...match, '-m', 'comment', '--comment', comment])
  /** UDP datagrams carrying the canary, sent from a network namespace given as nsenter's target (`--net=...`) */
  const sendCanary = (nsArg: string, to: string, n = 5) =>
    run('nsenter', [nsArg, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');let i=0;const f=()=>s.send(${JSON.stringify(CANARY)},9999,${JSON.stringify(to)},()=>{if(++i<${n})setTimeout(f,20);else s.close()});f()`])

  await t.test('no plaintext on the underlay: the canary is seen in clear, never through the overlay', async (t) => {
    await countRule('h2', 'canary-eth0', ['-i', 'eth0', '-m', 'string', '--algo', 'bm', '--string', CANARY])
    await countRule('h2', 'canary-wg', ['-i', 'weft-wg', '-m', 'string', '--algo', 'bm', '--string', CANARY])
    // the check can fire: a plain UDP send host to host crosses eth0 in clear
    await sendCanary(`--net=/run/netns/${hostOf('h1').netns}`, hostOf('h2').ip)
    const clear = await until('the clear canary counted', async () => ((await counted('h2', 'canary-eth0')) >= 5 ? counted('h2', 'canary-eth0') : undefined), 5_000)
    t.ok(clear >= 5, `sent in clear: counted ${clear} times on h2's eth0`)
    // container to container: it reaches h2 (decrypted on weft-wg), never readable on eth0
    await sendCanary(`--net=/proc/${pids.get('h1')}/ns/net`, ips.get('h2')!)
    const inner = await until('the canary out of the tunnel', async () => ((await counted('h2', 'canary-wg')) >= 5 ? counted('h2', 'canary-wg') : undefined), 10_000)
    t.ok(inner >= 5, `the container's canary arrived: ${inner} on weft-wg`)
    t.equal(await counted('h2', 'canary-eth0'), clear, 'and none of it crossed eth0 in clear')
  })

  await t.test("the key file: 0600 in a 0700 directory; its private key nowhere in etcd, logs or metrics", async (t) => {
    const values = await c.etcd.etcdctl(['get', '--prefix', c.prefix, '--print-value-only'])
    for (const h of HOSTS) {
      const st = await stat(keyFile(h))
      t.equal(st.mode & 0o777, 0o600, `${h}: key file mode 0600`)
      t.equal((await stat(dirname(keyFile(h)))).mode & 0o777, 0o700, `${h}: its directory 0700`)
      const privateKey = (await readFile(keyFile(h), 'utf8')).trim()
      t.equal(publicKeyOf(privateKey), keyOf(h), `${h}: the file holds the key the lease publishes`)
      // the search works: it finds the public key in the same values
      t.ok(values.includes(keyOf(h)), `${h}: the public key is found in etcd's values`)
      t.notOk(values.includes(privateKey), `${h}: the private key is not`)
      t.notOk(c.weftds.get(h)!.output().includes(privateKey), `${h}: nor in the agent's log`)
      t.notOk((await c.weftds.get(h)!.http('/metrics')).includes(privateKey), `${h}: nor in /metrics`)
    }
  })

  await t.test('a key file that exists but is no key stops weftd, naming the file', async (t) => {
    const bad = join(dir, 'bad', 'wireguard.key')
    await run('mkdir', ['-p', dirname(bad)])
    await writeFile(bad, 'this is not a key\n', { mode: 0o600 })
    // a host of its own, so nothing of the cluster's is near; no etcd: the check comes before anything else
    const netns = `wgk-${topo.id}`
    await run('ip', ['netns', 'add', netns])
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up'])
    t.teardown(() => run('ip', ['netns', 'del', netns]).catch(() => undefined))
    const args = ['--endpoints', 'http://127.0.0.1:1', '--host-name', 'keycheck', '--public-ip', '192.0.2.10', '--healthz-addr', '127.0.0.1:9811', '--wireguard-key-file', bad,
      '--subnet-file', join(dir, 'bad', 'subnet.env'), '--docker-opts-file', join(dir, 'bad', 'docker')]
    const weftd = await freshBundle()
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('nsenter', [`--net=/run/netns/${netns}`, '--', 'env', '-u', 'NODE_OPTIONS', weftd, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout + stderr }),
      )
    })
    t.equal(r.code, 1, 'weftd exits 1')
    t.match(r.out, bad, 'the error names the file')
    t.match(r.out, /cannot start/)
    t.equal((await readFile(bad, 'utf8')), 'this is not a key\n', 'the file is left as it was: no new key')
  })

  const deviceFacts = async (h: Host) => {
    const d = await dump(h)
    // wireguard-go lists its peers in no fixed order
    return { daemons: wireguardDaemonPids(hostOf(h).netns), ifindex: (await link(h)).ifindex, ...d, peers: d.peers.sort((a, b) => a.publicKey.localeCompare(b.publicKey)) }
  }
  const programmed = (h: Host) => c.weftds.get(h)!.output().split('peers programmed').length - 1
  const reconciledSinceStart = (h: Host, before: number) =>
    until(`${h}'s new agent programmed the data path`, async () => (c.weftds.get(h)!.output().split('"device":"wireguard-go"').length - 1 > before ? true : undefined), 30_000)
  const logged = (h: Host) => c.weftds.get(h)!.output().split('"device":"wireguard-go"').length - 1

  await t.test('SIGKILL of every agent keeps traffic; restarted agents adopt the device unchanged', async (t) => {
    const before = new Map<Host, Awaited<ReturnType<typeof deviceFacts>>>()
    for (const h of HOSTS) before.set(h, await deviceFacts(h))
    const seen = new Map(HOSTS.map((h) => [h, logged(h)]))
    const changes = new Map(HOSTS.map((h) => [h, programmed(h)]))
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    t.ok(await pings('h1', 'h3'), 'h1 → h3 with no agent running')
    t.ok(await pings('h3', 'h2'), 'h3 → h2 with no agent running')
    for (const w of c.weftds.values()) await w.start()
    for (const h of HOSTS) await reconciledSinceStart(h, seen.get(h)!)
    for (const h of HOSTS) await programmedPeers(c, h, 2)
    for (const h of HOSTS) {
      const after = await deviceFacts(h)
      t.same(after, before.get(h), `${h}: same wireguard-go (${after.daemons.join(',')}), ifindex ${after.ifindex}, key, port and peers`)
      t.equal(programmed(h), changes.get(h), `${h}: the new agent changed no peer`)
    }
    t.ok(await pings('h2', 'h1', MTU - 28), 'still forwarding after the restart')
  })

  await t.test("a host's new key reaches its peers within 5 s", async (t) => {
    const w3 = c.weftds.get('h3')!
    await w3.kill('SIGKILL')
    await unlink(keyFile('h3'))
    await w3.start()
    const fresh = await until('h3 publishes a new key', async () => {
      const k = (await c.lease('h3'))?.spec.backend?.data?.publicKey as string | undefined
      return k && k !== keyOf('h3') ? k : undefined
    }, 30_000, 20)
    const published = Date.now()
    for (const h of ['h1', 'h2'] as const) await until(`${h} has h3's new key`, async () => (await dump(h)).peers.some((p) => p.publicKey === fresh && p.allowedIPs.includes(subnetOf('h3'))), 10_000, 50)
    const took = Date.now() - published
    t.ok(took < 5_000, `h1 and h2 updated ${took} ms after the lease changed`)
    t.notOk((await dump('h1')).peers.some((p) => p.publicKey === keyOf('h3')), 'the old key is gone')
    t.equal((await dump('h3')).publicKey, fresh, "h3's adopted device runs on the new key")
    leases.set('h3', (await c.lease('h3'))!)
    t.ok(await pings('h3', 'h1'), 'h3 ↔ h1 over the new key')
    t.ok(await pings('h2', 'h3'), 'h2 ↔ h3 over the new key')
  })

  /** what h1 sees from h3: WireGuard datagrams at eth0, and packets out of the tunnel from h3's subnet */
  const fromH3 = async () => ({ underlay: await counted('h1', 'from-h3-eth0'), tunnel: await counted('h1', 'from-h3-wg') })
  const mark = async () => {
    await c.exec('h1', 'iptables', ['-t', 'raw', '-Z', 'PREROUTING'])
    return fromH3()
  }

  await t.test("a lease carrying another host's public key gets nothing through", async (t) => {
    await countRule('h1', 'from-h3-eth0', ['-i', 'eth0', '-s', hostOf('h3').ip, '-p', 'udp', '--dport', '51820'])
    await countRule('h1', 'from-h3-wg', ['-i', 'weft-wg', '-s', subnetOf('h3')])
    const w3 = c.weftds.get('h3')!
    await w3.kill('SIGKILL')
    // h3's lease now claims h2's key (h3's device keeps its own key, as a host copying a key would)
    const forged = await c.store.get('HostLease', 'h3')
    await c.store.update({ ...forged, spec: { ...forged.spec, backend: { type: 'wireguard', data: { publicKey: keyOf('h2'), port: 51820 } } } } as HostLease)
    // a lease left out for longer than a join takes is written as the reason, with the message naming it
    const cond = await condition(c, 'h1', 'DataPath', 'True', /left out: h3 \(DuplicatePublicKey\)/)
    t.equal(cond.reason, 'PeersLeftOut', 'the reason says a lease is left out')
    t.match(cond.message, /1 peer programmed/, 'h1 keeps the key for h2, the lease that held it first')
    const d1 = await dump('h1')
    t.same(d1.peers.map((p) => p.allowedIPs).sort(), [[subnetOf('h2')]], "no peer for h3's subnet, and h2's key still routes to h2 only")
    const zero = await mark()
    t.match(await ping('h3', 'h1', { count: 3, waitS: 1 }), /0 packets received|100% packet loss/, 'c-h3 → c-h1: nothing')
    const after = await fromH3()
    t.ok(after.underlay > zero.underlay, `h3's datagrams reach h1's eth0 (${after.underlay - zero.underlay})`)
    t.equal(after.tunnel, 0, 'and not one leaves the tunnel: its key is no peer of h1')
    t.ok(await pings('h2', 'h1'), 'h2, the key holder, still talks')
  })

  await t.test('a datagram from an address with no lease gets nothing through', async (t) => {
    await c.store.delete('HostLease', 'h3')
    // nothing left out any more: the reason goes back, and that write carries the message as it is now
    const back = await condition(c, 'h1', 'DataPath', 'True', /: 1 peer programmed$/)
    t.equal(back.reason, 'Programmed')
    t.notMatch(await c.exec('h1', 'ip', ['route', 'show', 'dev', 'weft-wg']), subnetOf('h3'), "h3's route is gone")
    const zero = await mark()
    // h3's device still holds its key and h1 as a peer, and keeps sending
    t.match(await ping('h3', 'h1', { count: 3, waitS: 1 }), /0 packets received|100% packet loss/, 'c-h3 → c-h1: nothing')
    const after = await fromH3()
    t.ok(after.underlay > zero.underlay, `h3's datagrams reach h1's eth0 (${after.underlay - zero.underlay})`)
    t.equal(after.tunnel, 0, 'and nothing of them is delivered')
    // h3 comes back: a new lease, and it is a peer again
    await c.weftds.get('h3')!.start()
    for (const h of HOSTS) await programmedPeers(c, h, 2)
    leases.set('h3', (await c.lease('h3'))!)
    t.ok(await pings('h3', 'h1'), 'h3 with its lease back: c-h3 → c-h1')
  })

  await t.test('spec.backend.persistentKeepalive reaches every peer', async (t) => {
    const oc = await c.store.get('OverlayConfig', 'default')
    await c.store.update({ ...oc, spec: { ...oc.spec, backend: { type: 'wireguard', persistentKeepalive: '25s' } } } as OverlayConfig)
    for (const h of HOSTS) await until(`${h}: keepalive 25 on both peers`, async () => ((await dump(h)).peers.filter((p) => p.persistentKeepalive === 25).length === 2 ? true : undefined), 20_000)
    t.pass('every peer on every host has persistent-keepalive 25')
    t.ok(await pings('h1', 'h3'), 'and traffic flows')
  })

  await t.test('live switch wireguard → vxlan → wireguard', async (t) => {
    const setBackend = async (type: 'vxlan' | 'wireguard') => {
      const oc = await c.store.get('OverlayConfig', 'default')
      await c.store.update({ ...oc, spec: { ...oc.spec, backend: { type } } } as OverlayConfig)
    }
    await setBackend('vxlan')
    // the lease's generation moved with its backend: DataPath is written again, naming the new one
    for (const h of HOSTS) await condition(c, h, 'DataPath', 'True', /^vxlan: /)
    for (const h of HOSTS) await programmedPeers(c, h, 2, 'vxlan')
    for (const h of HOSTS) {
      await until(`${h} without weft-wg and its daemon`, async () => (!(await c.exec(h, 'ip', ['link', 'show']).then((o) => o.includes('weft-wg'))) && wireguardDaemonPids(hostOf(h).netns).length === 0 ? true : undefined), 20_000)
    }
    t.pass('weft-wg and every wireguard-go gone')
    t.match(await readFile(c.weftds.get('h1')!.subnetFile, 'utf8'), 'FLANNEL_MTU=1450')
    t.ok(await pings('h1', 'h2', MTU - 28), 'containers talk over vxlan')
    t.ok(await pings('h3', 'h1', MTU - 28), 'containers talk over vxlan (h3)')
    await setBackend('wireguard')
    for (const h of HOSTS) await condition(c, h, 'DataPath', 'True', /^wireguard \(wireguard-go\): /)
    for (const h of HOSTS) await programmedPeers(c, h, 2)
    t.notMatch(await c.exec('h1', 'ip', ['link', 'show']), 'weft.1', 'the vxlan device is gone')
    t.match(await readFile(c.weftds.get('h1')!.subnetFile, 'utf8'), `FLANNEL_MTU=${MTU}`)
    for (const a of HOSTS) for (const b of HOSTS) if (a !== b) t.ok(await pings(a, b, MTU - 28), `back on wireguard: c-${a} pings c-${b}`)
  })
})
