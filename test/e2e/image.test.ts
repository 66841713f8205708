// The weftd image, built by scripts/image.sh into a simulated host's dockerd
// and run there exactly as manifests/kubernetes/daemonset.yaml says (its pod
// translated to docker run flags by test/helpers/daemonset.ts: host network,
// its capabilities and no more, not privileged, its hostPaths as binds, env
// from its ConfigMap and the Downward API, its memory limit). A second host
// runs weftd straight from the checkout. Per backend (vxlan, udp, wireguard): the
// containerized agent leases, puts its iptables chains in place and peers
// with the other host; dockerd restarted onto the written options (as the
// systemd drop-in does) brings the agent back by its restart policy; busybox
// containers on the two hosts ping each other; the probes' paths answer as
// kubelet and the container itself ask them.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import type { BackendType } from '../../src/crds/index.js'
import { run as runCommand } from '../../src/host/exec.js'
import { loadManifests, translateDaemonSet, type DockerRun } from '../helpers/daemonset.js'
import { dockerdRestartHook } from '../helpers/dockerd-hook.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { importBusybox } from '../helpers/image.js'
import type { SimHost } from '../helpers/netns.js'
import { createCluster, freshBundle, REPO, startWeftd, until, type Cluster } from '../helpers/weftd.js'

const { daemonset, configMaps } = loadManifests()
const IMAGE: string = daemonset.spec.template.spec.containers[0].image

// built once per test run (the Debian packages downloaded once), then moved between daemons with save/load
let built: Promise<string> | undefined
const work = mkdtemp(join(tmpdir(), 'weft-image-test-'))
t.teardown(async () => rm(await work, { recursive: true, force: true }))

async function loadImage(t: Test, d: Dockerd): Promise<void> {
  if (!built) {
    built = (async () => {
      await freshBundle()
      const dir = await work
      const started = Date.now()
      const out = await runCommand('bash', [join(REPO, 'scripts/image.sh'), '--docker-host', d.url, '--cache', join(dir, 'debs')], {
        timeoutMs: 600_000,
        env: { ...process.env, DOCKER_CONFIG: join(dir, 'docker-cli') },
      })
      t.comment(`${out.trim()} (${Date.now() - started} ms)`)
      const tar = join(dir, 'weftd-image.tar')
      await d.docker(['save', '-o', tar, IMAGE], { timeoutMs: 120_000 })
      return tar
    })()
    await built
    return
  }
  await d.docker(['load', '-i', await built], { timeoutMs: 120_000 })
}

const CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE']

/** A process's effective capabilities by name, from /proc/PID/status. */
async function effectiveCapabilities(pid: number): Promise<string[]> {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]!
  const bits = BigInt(`0x${hex}`)
  return CAPABILITIES.filter((_, i) => (bits >> BigInt(i)) & 1n).sort()
}

/** docker run flags without one flag and its value */
function withoutFlag(flags: string[], flag: string): string[] {
  return flags.filter((f, i) => f !== flag && flags[i - 1] !== flag)
}

/** What kubelet does for DirectoryOrCreate and FileOrCreate before it binds them. */
async function prepareHostPaths(spec: DockerRun): Promise<void> {
  for (const v of spec.hostPaths) {
    if (v.type === 'DirectoryOrCreate') await runCommand('mkdir', ['-p', v.source])
    else if (v.type === 'FileOrCreate' && !existsSync(v.source)) {
      await runCommand('mkdir', ['-p', dirname(v.source)])
      await writeFile(v.source, '')
    }
    else if (!existsSync(v.source)) throw new Error(`hostPath ${v.path} (${v.type}) has nothing at ${v.source}`)
  }
}

/**
 * The simulated host's own /run: /run/weft, the docker socket, the xtables lock
 * (in a dir of the test's, so the test creates nothing of the machine's); the
 * device is the machine's /dev/net/tun.
 */
function hostPaths(hostRun: string, d: Dockerd): (path: string) => string {
  const own: Record<string, string> = {
    '/run/weft': join(hostRun, 'weft'),
    '/run/xtables.lock': join(hostRun, 'xtables.lock'),
    '/var/run/docker.sock': d.socketPath,
    '/var/lib/weft': join(hostRun, 'var-lib-weft'),
  }
  return (p) => own[p] ?? p
}

/** The DaemonSet's pod on a simulated host's dockerd: its settings translated, its hostPaths prepared, `docker run`. */
async function runAsDaemonSet(c: Cluster, host: SimHost, d: Dockerd, dir: string, charDevices: 'bind' | 'device' = 'bind'): Promise<{ spec: DockerRun; hostRunWeft: string }> {
  const hostRun = join(dir, `${host.name}-run`)
  const hostRunWeft = join(hostRun, 'weft')
  const spec = translateDaemonSet(daemonset, configMaps, {
    node: { name: host.name, hostIP: host.ip },
    name: 'weftd',
    charDevices,
    configOverrides: { WEFT_ETCD_ENDPOINTS: c.etcd.netnsEndpoint, WEFT_PREFIX: c.prefix },
    hostPath: hostPaths(hostRun, d),
  })
  await prepareHostPaths(spec)
  await d.docker(['run', '-d', ...spec.flags, spec.image, ...spec.args])
  return { spec, hostRunWeft }
}

async function scenario(t: Test, backend: BackendType, mtu: number): Promise<void> {
  const c: Cluster = await createCluster({ hosts: ['h1', 'h2'], overlay: { network: '10.2.0.0/16', backend: { type: backend } }, start: false })
  t.teardown(() => c.destroy())
  const dir = await mkdtemp(join(tmpdir(), 'weft-image-hosts-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const daemons: Dockerd[] = []
  t.teardown(async () => {
    for (const d of daemons) await d.stop()
  })
  const [h1, h2] = c.topo.hosts as [(typeof c.topo.hosts)[0], (typeof c.topo.hosts)[0]]

  // h2: weftd from the checkout, restarting its dockerd onto the lease's options
  const d2 = await startDockerd(c.topo, h2)
  daemons.push(d2)
  const hook = await dockerdRestartHook(() => d2, dir)
  t.teardown(() => hook.close())
  const w2 = await startWeftd(c.topo, h2, {
    endpoint: c.etcd.netnsEndpoint,
    prefix: c.prefix,
    dir,
    args: ['--docker-host', d2.url, '--dockerd-restart-command', hook.command],
    // the image on h1 has a /run of its own; the agent on h2 gets its own too
    ...(backend === 'wireguard' ? { wireguardRunDir: true } : {}),
  })
  c.weftds.set('h2', w2)

  // h1: the image, run as the DaemonSet says
  const d1 = await startDockerd(c.topo, h1)
  daemons.push(d1)
  await loadImage(t, d1)
  if (backend === 'vxlan') {
    // dockerd turned ip_forward on when it started; off, it shows the agent cannot do it itself
    await c.exec('h1', 'sh', ['-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward'])
  }
  const { spec, hostRunWeft } = await runAsDaemonSet(c, h1, d1, dir)
  const logs = () => d1.docker(['logs', '--tail', '60', 'weftd']).catch((err: Error) => err.message)
  const inspect = JSON.parse(await d1.docker(['inspect', 'weftd']))[0]
  t.equal(inspect.HostConfig.Privileged, spec.privileged, `privileged: ${spec.privileged}, as the manifest says`)
  // measured on the agent's own process, not read back from the configuration
  const caps = await effectiveCapabilities(inspect.State.Pid as number)
  if (spec.capDrop.includes('ALL')) t.same(caps, [...spec.capAdd].sort(), `the agent runs with exactly ${spec.capAdd.join(' ')}`)
  else for (const cap of spec.capAdd) t.ok(caps.includes(cap), `the agent holds ${cap}`)

  const condition = async (host: string, type: string) => (await c.lease(host))?.status?.conditions?.find((x) => x.type === type)
  const waitTrue = (host: string, type: string, timeoutMs = 60_000) =>
    until(`${type}=True on ${host}`, async () => (await condition(host, type))?.status === 'True', timeoutMs).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${type}: ${JSON.stringify(await condition(host, type))}\n--- h1 container log:\n${await logs()}\n--- h2 weftd:\n${w2.output().slice(-2000)}`)
    })
  if (backend === 'vxlan') {
    const off = await until('DataPath=False on h1', async () => {
      const dp = await condition('h1', 'DataPath')
      return dp?.status === 'False' && /ip_forward/.test(dp.message ?? '') ? dp : undefined
    }, 60_000)
    t.match(off.message, /read-only/, `with ip_forward off, DataPath=False names it: ${off.message}`)
    t.equal((await c.exec('h1', 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), '0', 'the container could not turn it on: a host prerequisite')
    await c.exec('h1', 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'])
  }
  await waitTrue('h1', 'DataPath')
  await waitTrue('h2', 'DataPath')
  const l1 = (await c.lease('h1'))!
  t.equal(l1.spec.publicIP, h1.ip, "h1's lease: the node address the Downward API gave")
  t.match(await readFile(join(hostRunWeft, 'subnet.env'), 'utf8'), `FLANNEL_MTU=${mtu}`, 'subnet.env written through the /run/weft hostPath')

  const saved = await c.exec('h1', 'iptables-save', [])
  t.match(saved, /-A FORWARD .*-j WEFT-FWD/, "the host's FORWARD jumps to WEFT-FWD")
  t.match(saved, /-A POSTROUTING .*-j WEFT-POSTRTG/, "the host's nat POSTROUTING jumps to WEFT-POSTRTG")
  const l2 = (await c.lease('h2'))!
  if (backend === 'vxlan') {
    await until('h1 and h2 hold FDB entries for each other', async () => {
      const fdb1 = await c.exec('h1', 'bridge', ['fdb', 'show', 'dev', 'weft.1'])
      const fdb2 = await c.exec('h2', 'bridge', ['fdb', 'show', 'dev', 'weft.1'])
      return fdb1.includes(`dst ${h2.ip}`) && fdb2.includes(`dst ${h1.ip}`)
    })
    t.match(await c.exec('h1', 'ip', ['route', 'show', l2.spec.subnet]), 'dev weft.1 onlink', "h1 routes h2's subnet into its VXLAN device")
  } else {
    const device = backend === 'wireguard' ? 'weft-wg' : 'weft0'
    const inH2 = l2.spec.subnet.replace(/0\/24$/, '2')
    t.match(await c.exec('h1', 'ip', ['route', 'get', inH2]), ` dev ${device} `, `h2's subnet is routed into the TUN the container opened (${device})`)
  }
  const publicKey = l1.spec.backend?.data?.publicKey
  if (backend === 'wireguard') {
    const key = await stat(join(hostRunWeft, '..', 'var-lib-weft', 'wireguard.key'))
    t.equal(key.mode & 0o777, 0o600, "the private key is kept on the host, through the /var/lib/weft hostPath, mode 0600")
    t.match(publicKey, /^[A-Za-z0-9+/]{43}=$/, "h1's lease publishes only its public key")
  }

  // the systemd drop-in's part: dockerd restarted onto the options weftd wrote; the agent comes back by its restart policy
  const opts = /DOCKER_NETWORK_OPTIONS="\s*([^"]*)"/.exec(await readFile(join(hostRunWeft, 'docker'), 'utf8'))![1]!.split(/\s+/)
  const firstStart = inspect.State.StartedAt as string
  await d1.restart(opts)
  await until('the weftd container restarted', async () => {
    const s = JSON.parse(await d1.docker(['inspect', 'weftd']))[0].State
    return s.Running && s.StartedAt !== firstStart
  })
  await waitTrue('h1', 'Ready', 90_000)
  if (backend === 'wireguard') t.equal((await c.lease('h1'))!.spec.backend?.data?.publicKey, publicKey, 'the new container kept the host\'s key')
  await until("h2's dockerd on its lease", async () => hook.restarts.length > 0 && (await condition('h2', 'Ready'))?.status === 'True', 90_000)

  const image = await importBusybox(d1)
  await importBusybox(d2)
  const ips: string[] = []
  for (const [h, d] of [['h1', d1], ['h2', d2]] as const) {
    await d.docker(['run', '-d', '--name', `c-${h}`, image, 'sleep', '600'])
    ips.push((await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `c-${h}`])).trim())
  }
  t.ok(ips[0]!.startsWith(l1.spec.subnet.replace(/0\/24$/, '')), `h1's container got an address of h1's lease (${ips[0]})`)
  const ping = (d: Dockerd, from: string, ip: string) => d.docker(['exec', from, 'ping', '-c', '2', '-W', '2', '-s', String(mtu - 28), ip])
  t.match(await ping(d1, 'c-h1', ips[1]!), /2 packets received/, `h1 container pings h2 container with a full ${mtu}-byte packet`)
  t.match(await ping(d2, 'c-h2', ips[0]!), /2 packets received/, 'and back')

  // the probes, as kubelet asks them (the pod IP, from the node) and from inside the container
  for (const [kind, probe] of [['liveness', spec.liveness], ['readiness', spec.readiness]] as const) {
    if (!probe) {
      t.fail(`the DaemonSet has no ${kind} probe`)
      continue
    }
    const url = `http://${probe.host}:${probe.port}${probe.path}`
    const get = `require('http').get(${JSON.stringify(url)}, (r) => { r.resume(); process.stdout.write(String(r.statusCode)) }).on('error', (e) => { console.error(e.message); process.exit(1) })`
    t.equal((await c.exec('h1', process.execPath, ['-e', get])).trim(), '200', `${kind} probe ${url} answers 200 from the node`)
    t.equal((await d1.docker(['exec', 'weftd', 'node', '-e', get])).trim(), '200', `${kind} probe ${url} answers 200 inside the container`)
  }

  const pid = JSON.parse(await d1.docker(['inspect', 'weftd']))[0].State.Pid as number
  t.comment(`the agent in its container: ${/VmRSS:\s*(\d+ kB)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]} resident, under the pod's memory limit`)
  // the entrypoint execs weftd, so docker stop's SIGTERM reaches the agent, not a shell
  await d1.docker(['stop', 'weftd'], { timeoutMs: 60_000 })
  const stopped = JSON.parse(await d1.docker(['inspect', 'weftd']))[0].State
  t.equal(stopped.ExitCode, 0, 'SIGTERM: the agent stopped cleanly (exit 0, not killed)')
}

t.test('vxlan: the image on h1 as the DaemonSet runs it, weftd on h2', (t) => scenario(t, 'vxlan', 1450))
t.test('udp: the image on h1 as the DaemonSet runs it, weftd on h2', (t) => scenario(t, 'udp', 1472))
t.test('wireguard: the image on h1 as the DaemonSet runs it (wireguard-go, no kernel module here), weftd on h2', (t) => scenario(t, 'wireguard', 1440))

t.test('one more host: legacy iptables, the docker run example, wireguard-go', async (t) => {
  const c = await createCluster({ hosts: ['h1'], overlay: { network: '10.2.0.0/16', backend: { type: 'udp' } }, start: false })
  t.teardown(() => c.destroy())
  const dir = await mkdtemp(join(tmpdir(), 'weft-image-hosts-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // this dockerd leaves iptables alone; the host's firewall is someone's legacy rule
  const d = await startDockerd(c.topo, 'h1', { flags: ['--iptables=false'] })
  t.teardown(() => d.stop())
  await loadImage(t, d)
  const host = c.topo.hosts[0]!

  await t.test('rules in legacy iptables: the image uses legacy too; /dev/net/tun by --device, as manifests/docker/run.sh has it', async (t) => {
    await c.exec('h1', 'iptables-legacy', ['-A', 'INPUT', '-s', '192.0.2.1', '-j', 'ACCEPT'])
    await runAsDaemonSet(c, host, d, dir, 'device')
    const legacy = await until('WEFT-FWD in the legacy tables', async () => {
      const saved = await c.exec('h1', 'iptables-legacy-save', [])
      return /-A FORWARD .*-j WEFT-FWD/.test(saved) ? saved : undefined
    }, 60_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await d.docker(['logs', '--tail', '40', 'weftd']).catch((e: Error) => e.message)}`)
    })
    t.match(legacy, /-A POSTROUTING .*-j WEFT-POSTRTG/, 'both chains, in legacy')
    t.notMatch(await c.exec('h1', 'iptables-nft-save', []), /WEFT-FWD/, 'and none in nf_tables, where the host would not look')
    await until('weft0 up', async () => (await c.exec('h1', 'ip', ['link', 'show'])).includes('weft0'), 30_000)
    t.pass('the udp backend opened its TUN through --device')
    await d.docker(['rm', '-f', 'weftd'])
  })

  await t.test('wireguard-go: the same privileges suffice, /dev/net/tun included and needed', async (t) => {
    const node = { name: 'h1', hostIP: host.ip }
    const hostPath = hostPaths(join(dir, 'wg-run'), d)
    const probe = translateDaemonSet(daemonset, configMaps, { node, name: 'wg-probe', hostPath })
    await prepareHostPaths(probe)
    // the same pod without its /dev/net/tun mount, run once to its end (--rm, so no --restart)
    const withoutTun = structuredClone(daemonset)
    const container = withoutTun.spec.template.spec.containers[0]
    container.volumeMounts = container.volumeMounts.filter((m: { mountPath: string }) => m.mountPath !== '/dev/net/tun')
    const once = withoutFlag(translateDaemonSet(withoutTun, configMaps, { node, name: 'wg-notun', hostPath }).flags, '--restart')
    // wireguard-go logs its failure to stdout: sent to stderr, it is in the error
    await t.rejects(d.docker(['run', '--rm', ...once, '--entrypoint', '/bin/sh', probe.image, '-c', 'exec wireguard-go -f weft-wgn 1>&2']), /Failed to create TUN device.*\/dev\/net\/tun/, 'without the /dev/net/tun hostPath, wireguard-go cannot start')
    await d.docker(['run', '-d', ...probe.flags, '--env', 'WG_PROCESS_FOREGROUND=1', '--entrypoint', 'wireguard-go', probe.image, '-f', 'weft-wgp'])
    t.teardown(() => d.docker(['rm', '-f', 'wg-probe']).catch(() => undefined))
    await until('weft-wgp on the host', async () => (await c.exec('h1', 'ip', ['-d', 'link', 'show', 'weft-wgp'])).includes('tun'), 20_000)
    t.match(await d.docker(['exec', 'wg-probe', 'wg', 'show', 'weft-wgp']), /listening port: \d+/, 'wg talks to it: the device is up on the host')
  })
})
