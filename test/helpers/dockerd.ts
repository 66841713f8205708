// A real dockerd inside a simulated host's network namespace (DESIGN.md §7).
// Each daemon gets its own temp dir for data-root, exec-root, pidfile, socket
// and config, and its own cgroup parent, so stop() can find and end (by PID)
// everything it started — dockerd, its containerd, shims, container
// processes — and remove every directory, even after a crash mid-test.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { run as runCommand } from '../../src/host/exec.js'
import { nsenterArgs, run, type SimHost, type Topology } from './netns.js'

export interface DockerdOptions {
  /** extra dockerd flags, e.g. ['--bip=10.2.45.1/24', '--mtu=1472'] */
  flags?: string[]
  /** how long to wait for the API to answer; default 60 s */
  readyTimeoutMs?: number
  /** an empty directory of the caller's to use instead of a new temp dir (its socket path is then known before start) */
  dir?: string
}

export interface Dockerd {
  host: SimHost
  /** temp dir holding everything this daemon writes */
  dir: string
  /** Engine API address for dockerode / weftd --docker-host */
  url: string
  socketPath: string
  /** PID of the running dockerd; -1 while it is not running */
  pid: number
  /** flags of the current run (without the per-daemon paths) */
  flags: string[]
  /** the docker CLI against this daemon; returns stdout */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>
  /** dockerd's whole log so far, for failure messages */
  log(): string
  /** stop and start again with new flags (the dockerd reconciler's restart) */
  restart(flags?: string[]): Promise<void>
  /** end every process, remove cgroups and the temp dir; idempotent */
  stop(): Promise<void>
}

const STOP_TIMEOUT_MS = 15_000
const live = new Set<{ pid: () => number | undefined; dir: string }>()

// A test process that dies without running its teardown must not leave daemons behind.
process.once('exit', () => {
  for (const d of live) {
    const pid = d.pid()
    if (pid) killQuietly(pid, 'SIGKILL')
    for (const p of pidsMentioning(d.dir)) killQuietly(p, 'SIGKILL')
  }
})

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (alive(pid)) {
    if (Date.now() > deadline) return false
    await sleep(100)
  }
  return true
}

/** PIDs whose command line names our temp dir: containerd and the shims dockerd started. */
function pidsMentioning(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry))
    } catch {
      // exited while we looked
    }
  }
  return pids
}

/** Every mounted cgroup hierarchy's copy of our cgroup parent (v1 has one per controller). */
function cgroupDirs(parent: string): string[] {
  const root = '/sys/fs/cgroup'
  const dirs: string[] = []
  if (existsSync(join(root, 'cgroup.procs')) && existsSync(join(root, parent))) dirs.push(join(root, parent))
  for (const ctrl of existsSync(root) ? readdirSync(root) : []) {
    const dir = join(root, ctrl, parent)
    if (existsSync(dir)) dirs.push(dir)
  }
  return dirs
}

/** Kill container processes left in our cgroups and remove the cgroups, deepest first. */
async function clearCgroups(parent: string): Promise<void> {
  const walk = (dir: string): string[] => [
    ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walk(join(dir, e.name))),
    dir,
  ]
  for (const top of cgroupDirs(parent)) {
    for (const dir of walk(top)) {
      for (let attempt = 0; attempt < 50; attempt++) {
        const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
        for (const pid of procs) killQuietly(pid, 'SIGKILL')
        try {
          rmdirSync(dir)
          break
        } catch {
          await sleep(100)
        }
      }
    }
  }
}

let dockerdMajor: Promise<number> | undefined

async function daemonConfig(dir: string): Promise<Record<string, string>> {
  dockerdMajor ??= runCommand('dockerd', ['--version']).then((out) => Number(/version (\d+)\./i.exec(out)?.[1] ?? 0))
  // dockerd before 23 writes a trust key to /etc/docker/key.json unless told otherwise;
  // later versions have no trust key and reject the option
  return (await dockerdMajor) < 23 ? { 'deprecated-key-path': join(dir, 'key.json') } : {}
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

function dockerCli(): string {
  for (const path of ['/usr/local/bin/docker', '/usr/bin/docker']) if (existsSync(path)) return path
  throw new Error('no docker CLI at /usr/local/bin/docker or /usr/bin/docker')
}

/** Start dockerd in the host's namespace and wait until its API answers. */
export async function startDockerd(topo: Topology, host: SimHost | string, opts: DockerdOptions = {}): Promise<Dockerd> {
  const sim = typeof host === 'string' ? topo.hosts.find((h) => h.name === host) : host
  if (!sim) throw new Error(`no simulated host ${String(host)}`)
  // short: the containerd socket path inside must stay under the 108-byte sun_path limit
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'weft-dockerd-')))
  const socketPath = join(dir, 'docker.sock')
  const logPath = join(dir, 'dockerd.log')
  const cgroupParent = `weft-test-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`
  // our own config file keeps the machine's /etc/docker/daemon.json out of the test
  writeFileSync(join(dir, 'daemon.json'), `${JSON.stringify(await daemonConfig(dir))}\n`)
  let current: number | undefined
  const entry = { pid: () => current, dir }
  live.add(entry)

  const launch = async (flags: string[]): Promise<void> => {
    const args = [
      '--config-file', join(dir, 'daemon.json'),
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${socketPath}`,
      '--cgroup-parent', cgroupParent,
      ...flags,
    ]
    const logFd = openSync(logPath, 'a')
    // nsenter execs dockerd in place (no --fork), so the child's PID is dockerd's
    const child = spawn('nsenter', nsenterArgs(sim.netns, 'dockerd', args), { stdio: ['ignore', logFd, logFd] })
    closeSync(logFd)
    child.unref()
    const pid = child.pid
    if (pid === undefined) throw new Error('dockerd did not start')
    current = pid
    let exited: number | null | undefined
    child.once('exit', (code) => {
      exited = code
      // never signal a PID the kernel may since have given to someone else
      if (current === pid) current = undefined
    })
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000)
    while (!(await ping(socketPath))) {
      if (exited !== undefined) throw new Error(`dockerd exited (${exited}) before answering:\n${tail(logPath)}`)
      if (Date.now() > deadline) throw new Error(`dockerd did not answer within ${opts.readyTimeoutMs ?? 60_000} ms:\n${tail(logPath)}`)
      await sleep(100)
    }
  }

  const halt = async (): Promise<void> => {
    const pid = current
    if (pid === undefined) return
    const containerdPid = await readFile(join(dir, 'exec', 'containerd', 'containerd.pid'), 'utf8').then(Number, () => undefined)
    // dockerd waits 10 s for a container whose PID 1 ignores SIGTERM (busybox sleep does),
    // whatever --shutdown-timeout says; killing first makes stop and restart take ~1 s
    const running = await daemon.docker(['ps', '-q'], { timeoutMs: 10_000 }).catch(() => '')
    const ids = running.split('\n').filter(Boolean)
    if (ids.length > 0) await daemon.docker(['kill', ...ids], { timeoutMs: 10_000 }).catch(() => undefined)
    killQuietly(pid, 'SIGTERM')
    if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
      killQuietly(pid, 'SIGKILL')
      await waitGone(pid, 5_000)
    }
    current = undefined
    // dockerd normally takes containerd down with it; make sure
    if (containerdPid && pidsMentioning(dir).includes(containerdPid)) {
      killQuietly(containerdPid, 'SIGTERM')
      if (!(await waitGone(containerdPid, 5_000))) killQuietly(containerdPid, 'SIGKILL')
    }
  }

  let stopped = false
  const daemon: Dockerd = {
    host: sim,
    dir,
    url: `unix://${socketPath}`,
    socketPath,
    get pid() {
      return current ?? -1
    },
    flags: opts.flags ?? [],
    // a private CLI config dir: the test must not write into root's ~/.docker
    docker: (args, o) =>
      runCommand(dockerCli(), ['-H', `unix://${socketPath}`, ...args], { ...o, env: { ...process.env, DOCKER_CONFIG: join(dir, 'cli') } }),
    log: () => readFileSync(logPath, 'utf8'),
    async restart(flags) {
      await halt()
      if (flags) daemon.flags = flags
      await launch(daemon.flags)
    },
    async stop() {
      if (stopped) return
      stopped = true
      await halt()
      for (const pid of pidsMentioning(dir)) killQuietly(pid, 'SIGKILL')
      await clearCgroups(cgroupParent)
      // overlay2 mounts under data-root must go before the directory can
      await unmountUnder(dir)
      await rm(dir, { recursive: true, force: true })
      live.delete(entry)
    },
  }

  try {
    await launch(daemon.flags)
  } catch (err) {
    await daemon.stop()
    throw err
  }
  return daemon
}

/** The last lines of the log, without the info chatter (grpc) that buries why dockerd failed. */
function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => !l.includes('level=info')).slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => m !== undefined && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined)
}

// exported for tests that need to assert nothing was left behind
export { pidsMentioning, cgroupDirs }
