import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { OverlayConfig } from '../../src/crds/overlayconfig.js'
import { Store } from '../../src/store/index.js'
import { freePort, startEtcd } from '../helpers/etcd.js'

const WEFTD = fileURLToPath(new URL('../../bin/weftd', import.meta.url))
const etcd = await startEtcd()
t.teardown(() => etcd.destroy())
const dir = await mkdtemp(join(tmpdir(), 'weftd-test-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const prefix = `/weft-weftd-${process.pid}`
const store = Store.connect({ endpoints: [etcd.endpoint], prefix })
t.teardown(() => store.close())
await store.create({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'OverlayConfig',
  metadata: { name: 'default' },
  spec: { network: '10.2.0.0/16', backend: { type: 'udp' }, mtu: 1400 },
} as OverlayConfig)

const children = new Set<ChildProcess>()
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL')
})

/** weftd as a user runs it: without tap's loader options and WEFT_ settings of the test's own environment */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('WEFT_')))
}

async function weftd(args: string[], env: NodeJS.ProcessEnv = {}) {
  const port = await freePort()
  // through env(1), which execs weftd under the same PID: tap patches spawn to
  // preload its process tracker via NODE_OPTIONS, which cannot load an
  // extensionless ES module entry point; a user's shell sets no such thing
  const child = spawn(
    'env',
    [
      '-u', 'NODE_OPTIONS', WEFTD,
      '--endpoints', etcd.endpoint, '--prefix', prefix, '--host-name', 'proc-a', '--public-ip', '192.0.2.10',
      '--subnet-file', join(dir, 'subnet.env'), '--docker-opts-file', join(dir, 'docker'), '--healthz-addr', `127.0.0.1:${port}`,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), ...env } },
  )
  children.add(child)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  const base = `http://127.0.0.1:${port}`
  return { child, exited, base, output: () => out }
}

async function healthy(base: string, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/healthz`)
      last = `${res.status} ${await res.text()}`
      if (res.status === 200) return last
    } catch (err) {
      last = String(err)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`not healthy: ${last}`)
}

t.test('a real weftd: healthz, metrics, files; SIGKILL + restart keeps the subnet; SIGTERM exits 0', async (t) => {
  const first = await weftd([])
  t.match(await healthy(first.base), /^200 ok/)
  const metrics = await (await fetch(`${first.base}/metrics`)).text()
  t.match(metrics, /weft_lease_held\{overlay="default",subnet="10\.2\.\d+\.0\/24"\} 1/)
  t.match(metrics, /weft_etcd_up 1/)
  t.match(metrics, /weft_reconcile_total\{controller="lease",result="requeue_after"\} \d+/)
  t.match(metrics, /weft_workqueue_depth\{controller="lease"\} 0/)
  const lease = await store.get('HostLease', 'proc-a')
  const env = await readFile(join(dir, 'subnet.env'), 'utf8')
  t.match(env, `FLANNEL_SUBNET=${lease.spec.subnet.replace(/0\/24$/, '1/24')}`)
  t.match(env, 'FLANNEL_MTU=1400')
  for (const line of first.output().trim().split('\n')) t.doesNotThrow(() => JSON.parse(line), 'JSON log line')

  process.kill(first.child.pid!, 'SIGKILL')
  await first.exited
  const second = await weftd([])
  await healthy(second.base)
  t.equal((await store.get('HostLease', 'proc-a')).spec.subnet, lease.spec.subnet, 'same subnet after SIGKILL + restart')

  process.kill(second.child.pid!, 'SIGTERM')
  t.equal(await second.exited, 0, 'SIGTERM exits 0')
  t.match(second.output(), /"msg":"stopped"/)
})

t.test('healthz is 503 with the reason while not converged', async (t) => {
  const p = await weftd(['--overlay', 'nonexistent', '--host-name', 'proc-b'])
  const deadline = Date.now() + 20_000
  let text = ''
  while (Date.now() < deadline) {
    const res = await fetch(`${p.base}/healthz`).catch(() => undefined)
    if (res) {
      t.equal(res.status, 503)
      text = await res.text()
      if (/OverlayConfig "nonexistent" not found/.test(text)) break
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  t.match(text, /not converged: LeaseHeld: OverlayConfig "nonexistent" not found/)
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
