// The main job, one command: the tutorial (shared/seed) on one machine.
// N simulated hosts (network namespaces on a private bridge), each with its
// own dockerd and weftd; etcd on loopback (started here unless --endpoints);
// the tutorial's OverlayConfig applied with weftctl; then a container on the
// first host pings a container on every other host across the overlay.
//
//   demo [--hosts 2] [--backend udp|vxlan|host-gw|wireguard] [--endpoints URL] [--keep]
//   demo down          remove what a --keep run left up
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTopology, nsenterArgs, run, type SimHost, type Topology } from '../test/helpers/netns.js'
import { startEtcd, type EtcdProcess } from '../test/helpers/etcd.js'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { BUSYBOX_IMAGE, importBusybox } from '../test/helpers/image.js'
import { hostRunner, inHostMounts, stopWireguardDaemons, wireguardDaemonPids, wireguardRunDir } from '../test/helpers/wireguard.js'
import { BACKEND_TYPES } from '../src/crds/overlayconfig.js'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const STATE_DIR = '/run/weft-demo'
const STATE_FILE = join(STATE_DIR, 'state.json')

interface KeptState {
  pids: number[]
  namespaces: string[]
  dockerdDirs: string[]
  etcdDataDir?: string
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    hosts: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'udp' },
    endpoints: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

if (values.help) {
  console.log('usage: demo [--hosts N] [--backend udp|vxlan|host-gw|wireguard] [--endpoints URL] [--keep] | demo down')
  process.exit(0)
}

const started = Date.now()
const children: ChildProcess[] = []
const dockerds: Dockerd[] = []
let topo: Topology | undefined
let etcd: EtcdProcess | undefined
let tearingDown = false

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('the demo builds network namespaces and runs dockerd: run it as root')
  if (positionals[0] === 'down') return down()
  if (existsSync(STATE_FILE)) fail(`a kept demo is still up; remove it first with: bash scripts/demo.sh down`)
  const hostCount = Number(values.hosts)
  if (!Number.isInteger(hostCount) || hostCount < 2 || hostCount > 20) fail('--hosts must be between 2 and 20')
  const backend = values.backend!
  if (!(BACKEND_TYPES as readonly string[]).includes(backend)) fail(`--backend must be one of ${BACKEND_TYPES.join(', ')}`)
  const steps = 8
  let n = 0
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now()
    process.stdout.write(`[${++n}/${steps}] ${what} ... `)
    const result = await fn()
    console.log(`done (${((Date.now() - t0) / 1000).toFixed(1)}s)`)
    return result
  }

  mkdirSync(STATE_DIR, { recursive: true })

  const endpoint = await step(values.endpoints ? `Using etcd at ${values.endpoints}` : 'Starting etcd on loopback', async () => {
    if (values.endpoints) return values.endpoints.split(',')[0]!
    etcd = await startEtcd()
    return etcd.endpoint
  })
  const etcdSocket = join(STATE_DIR, 'etcd.sock')

  const hostNames = Array.from({ length: hostCount }, (_, i) => `host-${String.fromCharCode(97 + i)}`)
  topo = await step(`Building ${hostCount} simulated hosts (${hostNames.join(', ')}) on a private bridge`, async () => {
    const t = await createTopology({ hosts: hostNames })
    // each host reaches etcd at its own 127.0.0.1:2379, relayed over a unix socket
    await startRelay(['unix-to-tcp', etcdSocket, new URL(endpoint).host])
    for (const h of t.hosts) await startRelay(['tcp-to-unix', '127.0.0.1:2379', etcdSocket], h.netns)
    return t
  })

  await step(`Applying the tutorial's OverlayConfig 10.2.0.0/16 (backend ${backend}) with weftctl`, async () => {
    const overlay = `apiVersion: weft.dev/v1alpha1\nkind: OverlayConfig\nmetadata: {name: default}\nspec:\n  network: 10.2.0.0/16\n  backend: {type: ${backend}}\n`
    const out = await weftctl(endpoint, ['apply', '-f', '-'], overlay)
    process.stdout.write(`\n      ${out.trim()}\n      `)
  })

  await step('Starting weftd on every host (leases a /24, writes subnet.env and docker options)', async () => {
    for (const h of topo!.hosts) await startWeftd(h, backend === 'wireguard')
    for (const h of topo!.hosts) await waitForFile(join(hostDir(h), 'docker'), 30_000)
  })

  await step('Starting dockerd on every host with the options weftd wrote (DOCKER_NETWORK_OPTIONS)', async () => {
    await Promise.all(
      topo!.hosts.map(async (h) => {
        const opts = readFileSync(join(hostDir(h), 'docker'), 'utf8')
        const flags = /DOCKER_NETWORK_OPTIONS="([^"]*)"/.exec(opts)![1]!.trim().split(/\s+/)
        const dir = join(hostDir(h), 'dockerd')
        mkdirSync(dir, { recursive: true })
        dockerds.push(await startDockerd(topo!, h, { flags, dir }))
      }),
    )
    dockerds.sort((a, b) => a.host.name.localeCompare(b.host.name))
    for (const d of dockerds) await importBusybox(d)
  })

  await step('Waiting until every host is Ready', async () => {
    const deadline = Date.now() + 90_000
    for (;;) {
      const out = await weftctl(endpoint, ['get', 'hostleases', '-o', 'json'])
      const items = (JSON.parse(out) as { items?: Lease[] }).items ?? [JSON.parse(out) as Lease]
      const ready = items.filter((l) => l.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      if (ready.length >= hostCount) return
      if (Date.now() > deadline) {
        console.log(`\n${await weftctl(endpoint, ['get', 'hostleases', '-o', 'wide'])}`)
        fail('hosts did not become Ready in 90 s; their conditions are above, logs in ' + STATE_DIR)
      }
      await sleep(500)
    }
  })
  console.log(`\n$ weftctl get hostleases\n${await weftctl(endpoint, ['get', 'hostleases'])}`)

  const containers = await step('Running a busybox container on every host', async () =>
    Promise.all(
      dockerds.map(async (d) => {
        const id = (await d.docker(['run', '-d', '--name', `c-${d.host.name}`, BUSYBOX_IMAGE, 'sleep', '3600'])).trim()
        const ip = (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id])).trim()
        return { docker: d, id, ip }
      }),
    ),
  )
  for (const c of containers) console.log(`      ${c.docker.host.name}: container c-${c.docker.host.name} at ${c.ip}`)

  let failures = 0
  await step("Pinging across hosts, container to container, with every host's FORWARD policy DROP", async () => {
    // the tutorial's pitfall: a DROP policy silently blocks cross-host traffic until
    // `iptables -P FORWARD ACCEPT`; weft's own WEFT-FWD chain makes that step unnecessary
    for (const h of topo!.hosts) await topo!.exec(h, 'iptables', ['-P', 'FORWARD', 'DROP'])
    const policy = await topo!.exec(topo!.hosts[0]!, 'iptables', ['-S', 'FORWARD'])
    const shown = policy.split('\n').filter((l) => l.startsWith('-P') || l.includes('WEFT'))
    process.stdout.write(`\n      ${topo!.hosts[0]!.name}: ${shown.join(' | ')}\n`)
    const [from, ...to] = containers
    for (const target of to) {
      const out = await from!.docker
        .docker(['exec', from!.id, 'ping', '-c', '3', '-W', '2', target.ip], { timeoutMs: 20_000 })
        .catch((e: Error) => `${e.message}\n`)
      const ok = / 0% packet loss/.test(out)
      if (!ok) failures++
      console.log(`      c-${from!.docker.host.name} -> c-${target.docker.host.name} (${target.ip}): ${ok ? 'OK' : 'FAILED'}`)
      for (const line of out.trim().split('\n').slice(-2)) console.log(`        ${line}`)
    }
    process.stdout.write('      ')
  })
  if (backend === 'wireguard') {
    // what a user looks at: the implementation in the DataPath condition, the device's peers (wg hides the private key)
    const h = topo.hosts[0]!
    const lease = JSON.parse(await weftctl(endpoint, ['get', 'hostlease', h.name, '-o', 'json'])) as { status?: { conditions?: { type: string; message: string }[] } }
    console.log(`\n$ weftctl get hostlease ${h.name} -o yaml   (its DataPath condition)`)
    console.log(`  DataPath: ${lease.status?.conditions?.find((c) => c.type === 'DataPath')?.message ?? '(none)'}`)
    console.log(`$ wg show weft-wg   (on ${h.name})`)
    console.log((await hostRunner(h.netns, await wireguardRunDir(STATE_DIR, h.name))('wg', ['show', 'weft-wg'])).trimEnd().replace(/^/gm, '  '))
  }

  console.log(`\n${failures === 0 ? 'Containers on different hosts reach each other over weft.' : `${failures} ping(s) failed.`} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  if (values.keep) {
    keep()
    console.log(`Left up (--keep). Try: WEFT_ETCD_ENDPOINTS=${endpoint} bin/weftctl get hostleases -o wide`)
    console.log(`       nsenter --net=/run/netns/${topo.hosts[0]!.netns} iptables -S   |   remove with: bash scripts/demo.sh down`)
    process.exit(failures === 0 ? 0 : 1)
  }
  await teardown()
  process.exit(failures === 0 ? 0 : 1)
}

interface Lease {
  status?: { conditions?: { type: string; status: string }[] }
}

function hostDir(h: SimHost): string {
  const dir = join(STATE_DIR, h.name)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** weftd in the host's namespace; for wireguard in a mount namespace of its own with the host's /run/wireguard (hosts share one machine) */
async function startWeftd(h: SimHost, wireguard: boolean): Promise<void> {
  const dir = hostDir(h)
  const log = openSync(join(dir, 'weftd.log'), 'a')
  const args = [
    '--endpoints', 'http://127.0.0.1:2379',
    '--host-name', h.name,
    '--iface', h.iface,
    '--subnet-file', join(dir, 'subnet.env'),
    '--docker-opts-file', join(dir, 'docker'),
    '--docker-host', `unix://${join(dir, 'dockerd', 'docker.sock')}`,
    '--healthz-addr', '127.0.0.1:9811',
    '--wireguard-key-file', join(dir, 'wireguard', 'wireguard.key'),
  ]
  // bin/weftd itself, not node bin/weftd: its first line carries the agent's node flags
  const [cmd, ...rest] = wireguard ? [...inHostMounts(await wireguardRunDir(STATE_DIR, h.name)), join(REPO, 'bin/weftd'), ...args] : [join(REPO, 'bin/weftd'), ...args]
  const child = spawn('nsenter', nsenterArgs(h.netns, cmd!, rest), { stdio: ['ignore', log, log], detached: true })
  children.push(child)
}

async function startRelay(args: string[], netns?: string): Promise<void> {
  const argv = [process.execPath, '--import', 'tsx', join(REPO, 'demo/relay.ts'), ...args]
  const child = netns
    ? spawn('nsenter', nsenterArgs(netns, argv[0]!, argv.slice(1)), { stdio: ['ignore', 'pipe', 'inherit'], detached: true, cwd: REPO })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], detached: true, cwd: REPO })
  children.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`relay ${args.join(' ')} exited ${code}`)))
  })
}

async function weftctl(endpoint: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(REPO, 'bin/weftctl'), '--endpoints', endpoint, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`weftctl ${args.join(' ')}: ${err.trim()}`))))
    p.stdin.end(input ?? '')
  })
}

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!existsSync(path)) {
    if (Date.now() > deadline) fail(`${path} did not appear within ${timeoutMs / 1000}s (see weftd.log beside it)`)
    await sleep(100)
  }
}

/** Record what a --keep run leaves up, for `demo down`. */
function keep(): void {
  const state: KeptState = {
    pids: children.map((c) => c.pid!).filter(Boolean),
    namespaces: topo ? [topo.switchNetns, ...topo.hosts.map((h) => h.netns)] : [],
    dockerdDirs: dockerds.map((d) => d.dir),
    ...(etcd ? { etcdDataDir: etcd.dataDir } : {}),
  }
  if (etcd) state.pids.push(...pidsOf(etcd.dataDir))
  for (const d of dockerds) state.pids.push(d.pid)
  // wireguard-go outlives weftd by design: it is no child of ours
  for (const h of topo?.hosts ?? []) state.pids.push(...wireguardDaemonPids(h.netns))
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2))
  for (const c of children) c.unref()
}

function pidsOf(fragment: string): number[] {
  return readdirPids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(fragment)
    } catch {
      return false
    }
  })
}

function readdirPids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => p !== process.pid)
}

async function down(): Promise<void> {
  if (!existsSync(STATE_FILE)) {
    console.log('nothing to remove: no kept demo')
    return
  }
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as KeptState
  for (const pid of state.pids) kill(pid, 'SIGTERM')
  await sleep(1000)
  for (const dir of state.dockerdDirs) for (const pid of pidsOf(dir)) kill(pid, 'SIGKILL')
  for (const pid of state.pids) kill(pid, 'SIGKILL')
  for (const ns of state.namespaces) await run('ip', ['netns', 'del', ns]).catch(() => undefined)
  for (const dir of state.dockerdDirs) await unmountUnder(dir)
  if (state.etcdDataDir) rmSync(state.etcdDataDir, { recursive: true, force: true })
  rmSync(STATE_DIR, { recursive: true, force: true })
  console.log('kept demo removed')
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => m !== undefined && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined)
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

async function teardown(): Promise<void> {
  if (tearingDown) return
  tearingDown = true
  process.stdout.write('Tearing down ... ')
  for (const c of children) if (c.pid && c.exitCode === null) kill(c.pid, 'SIGTERM')
  for (const d of dockerds) await d.stop().catch(() => undefined)
  await sleep(300)
  for (const c of children) if (c.pid && c.exitCode === null) kill(c.pid, 'SIGKILL')
  for (const h of topo?.hosts ?? []) await stopWireguardDaemons(h.netns)
  await topo?.destroy()
  await etcd?.destroy()
  rmSync(STATE_DIR, { recursive: true, force: true })
  console.log('done')
}

function fail(message: string): never {
  throw new DemoError(message)
}

class DemoError extends Error {}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.log(`\n${sig}: stopping`)
    void teardown().then(() => process.exit(130))
  })
}

main().catch(async (err: unknown) => {
  console.log('')
  console.error(`demo: ${err instanceof DemoError ? err.message : err instanceof Error ? err.stack : String(err)}`)
  if (!values.keep) await teardown()
  else keep()
  process.exit(1)
})
