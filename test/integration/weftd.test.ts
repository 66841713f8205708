import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nsenterArgs } from '../helpers/netns.js'
import { createCluster } from '../helpers/weftd.js'

// bin/weftd as built (dist/), as a user runs it, inside a simulated host's
// namespace: with the data path, iptables and dockerd controllers registered,
// a weftd must never run in the test machine's own network namespace.
const WEFTD = fileURLToPath(new URL('../../bin/weftd', import.meta.url))
const cluster = await createCluster({ hosts: ['proc-a'], start: false, overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' }, mtu: 1400 } })
t.teardown(() => cluster.destroy())
const host = cluster.topo.hosts[0]!
const dir = await mkdtemp(join(tmpdir(), 'weftd-test-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const store = cluster.store

const children = new Set<ChildProcess>()
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL')
})

/** weftd as a user runs it: without tap's loader options and WEFT_ settings of the test's own environment */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('WEFT_')))
}

const PORT = 9811
async function weftd(args: string[], env: NodeJS.ProcessEnv = {}) {
  const argv = [
    '--endpoints', cluster.etcd.netnsEndpoint, '--prefix', cluster.prefix, '--host-name', 'proc-a', '--iface', host.iface,
    '--subnet-file', join(dir, 'subnet.env'), '--docker-opts-file', join(dir, 'docker'), '--healthz-addr', `127.0.0.1:${PORT}`,
    '--docker-host', `unix://${join(dir, 'docker.sock')}`,
    ...args,
  ]
  // nsenter and env(1) both exec in place, so the PID is weftd's own; env drops the
  // NODE_OPTIONS tap's spawn patch adds, which cannot load an extensionless ES module
  const child = spawn('nsenter', nsenterArgs(host.netns, 'env', ['-u', 'NODE_OPTIONS', WEFTD, ...argv]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), ...env } })
  children.add(child)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  return { child, exited, output: () => out }
}

/** GET from inside the host's namespace: "<status> <body>" */
async function get(path: string): Promise<string> {
  const js = `fetch('http://127.0.0.1:${PORT}${path}').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())), () => process.stdout.write('down'))`
  return cluster.exec(host.name, process.execPath, ['-e', js])
}

async function answering(path: string, pred: (s: string) => boolean, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    last = await get(path)
    if (pred(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${path}: ${last}`)
}

t.test('a real weftd: healthz, metrics; SIGKILL + restart keeps the subnet; SIGTERM exits 0', async (t) => {
  const first = await weftd([])
  const metrics = await answering('/metrics', (s) => /weft_lease_held\{overlay="default",subnet="10\.2\.\d+\.0\/24"\} 1/.test(s))
  t.match(metrics, /weft_etcd_up 1/)
  t.match(metrics, /weft_reconcile_total\{controller="lease",result="requeue_after"\} \d+/)
  t.match(metrics, /weft_workqueue_depth\{controller="lease"\} \d+/)
  // no dockerd on this host: not converged, and /healthz says why
  t.match(await answering('/healthz', (s) => s.startsWith('503 not converged')), /^503 not converged: .*Docker/)
  t.match(await get('/readyz'), /^503 not converged: .*Docker/, '/readyz is /healthz')
  t.equal(await get('/livez'), '200 ok\n', '/livez: its loops run, whatever dockerd does')
  const lease = await store.get('HostLease', 'proc-a')
  t.equal(lease.spec.publicIP, host.ip, 'public IP from --iface')
  for (const line of first.output().trim().split('\n')) t.doesNotThrow(() => JSON.parse(line), 'JSON log line')

  process.kill(first.child.pid!, 'SIGKILL')
  await first.exited
  const second = await weftd([])
  await answering('/metrics', (s) => /weft_lease_held\{[^}]*\} 1/.test(s))
  t.equal((await store.get('HostLease', 'proc-a')).spec.subnet, lease.spec.subnet, 'same subnet after SIGKILL + restart')

  process.kill(second.child.pid!, 'SIGTERM')
  t.equal(await second.exited, 0, 'SIGTERM exits 0')
  t.match(second.output(), /"msg":"stopped"/)
})

t.test('etcd hung (SIGSTOP): /readyz says so within 10 s and recovers; /livez stays 200', async (t) => {
  const p = await weftd(['--host-name', 'proc-c'])
  t.teardown(() => cluster.etcd.signal('SIGCONT'))
  await answering('/readyz', (s) => s.startsWith('503 not converged'))
  const hungAt = Date.now()
  cluster.etcd.signal('SIGSTOP')
  const down = await answering('/readyz', (s) => s.startsWith('503 etcd unreachable'), 20_000)
  const downMs = Date.now() - hungAt
  t.comment(`/readyz after etcd hung: "${down.trim()}" after ${downMs} ms`)
  t.ok(downMs < 10_000, `etcd lost shows within 10 s (${downMs} ms)`)
  t.equal(await get('/livez'), '200 ok\n', '/livez does not depend on etcd')
  const resumedAt = Date.now()
  cluster.etcd.signal('SIGCONT')
  await answering('/readyz', (s) => s.startsWith('503 not converged'), 20_000)
  const upMs = Date.now() - resumedAt
  t.comment(`/readyz after SIGCONT: etcd reachable again after ${upMs} ms`)
  t.ok(upMs < 15_000, `etcd's return shows within 15 s (${upMs} ms)`)
  process.kill(p.child.pid!, 'SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('healthz is 503 with the reason while the overlay is missing', async (t) => {
  const p = await weftd(['--overlay', 'nonexistent', '--host-name', 'proc-b'])
  t.match(await answering('/healthz', (s) => /OverlayConfig "nonexistent" not found/.test(s)), /^503 not converged: LeaseHeld: OverlayConfig "nonexistent" not found/)
  process.kill(p.child.pid!, 'SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('bad flags: a clear message and exit 2', async (t) => {
  for (const [args, msg] of [
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['--public-ip', '300.1.1.1'], /--public-ip: invalid IPv4 address "300.1.1.1"/],
    [['--log-level', 'loud'], /--log-level: invalid level "loud"/],
    [['--labels', 'zone'], /--labels: "zone" is not key=value/],
    [['--healthz-addr', 'nowhere'], /--healthz-addr: invalid address/],
  ] as const) {
    const p = await weftd([...args])
    t.equal(await p.exited, 2, args.join(' '))
    t.match(p.output(), msg)
  }
  const fromEnv = await weftd([], { WEFT_LOG_LEVEL: 'loud' })
  t.equal(await fromEnv.exited, 2, 'WEFT_LOG_LEVEL is read like --log-level')
  t.match(fromEnv.output(), /--log-level: invalid level "loud"/)
})
