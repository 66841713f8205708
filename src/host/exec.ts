// The one way adapters run host tools. Arguments go straight to execve (no
// shell), so no value from etcd or a spec can ever be interpreted as shell.
import { spawn } from 'node:child_process'

export interface RunOptions {
  /** written to the child's stdin, which is then closed */
  input?: string
  /** the child is killed (SIGKILL) after this long; default 30 s */
  timeoutMs?: number
  /** the child's environment; default this process's */
  env?: NodeJS.ProcessEnv
}

/** A host command failed: everything a log line or a status condition needs. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    /** null when the child was killed by a signal or never started */
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly timedOut = false,
  ) {
    const why = timedOut ? 'timed out' : exitCode === null ? 'did not run to completion' : `exited ${exitCode}`
    super(`${[cmd, ...args].join(' ')}: ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`)
  }
}

export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<string>

const DEFAULT_TIMEOUT_MS = 30_000
/** how long a child's output may trail its exit before we stop reading it */
const PIPE_DRAIN_MS = 500

/** Run a command to completion and return its stdout; throws CommandError on failure. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    let spawnError: Error | undefined
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)

    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    child.on('error', (e) => {
      spawnError = e
    })
    // 'close' waits for the pipes, which a daemon the command started may hold for its whole life
    // (wireguard-go with LOG_LEVEL set): once the child itself has exited, its output has a moment
    // to drain, then our ends are closed so the call settles
    let drain: NodeJS.Timeout | undefined
    child.on('exit', () => {
      drain = setTimeout(() => {
        child.stdout.destroy()
        child.stderr.destroy()
      }, PIPE_DRAIN_MS)
    })
    // a child that exits without reading its input must not crash us with EPIPE
    child.stdin.on('error', () => undefined)
    child.on('close', (code) => {
      clearTimeout(timer)
      clearTimeout(drain)
      const stderr = Buffer.concat(err).toString('utf8') || (spawnError?.message ?? '')
      if (code === 0 && !timedOut && !spawnError) resolve(Buffer.concat(out).toString('utf8'))
      // a spawn failure reports a negative errno as the code; it is no exit status
      else reject(new CommandError(cmd, args, spawnError ? null : code, stderr, timedOut))
    })
    child.stdin.end(opts.input ?? '')
  })
}

/**
 * A runner bound to a network namespace (by its /run/netns name), or the
 * plain runner when none is given. nsenter --net keeps the mount namespace,
 * unlike `ip netns exec`, so tools see the host's /sys and cgroups.
 */
export function runnerFor(netns?: string): Runner {
  if (!netns) return run
  return (cmd, args, opts) => run('nsenter', [...inNetns(netns).slice(1), cmd, ...args], opts)
}

/** The argv prefix that runs a command in a network namespace (by its /run/netns name); empty for none. */
export function inNetns(netns?: string): string[] {
  return netns ? ['nsenter', `--net=/run/netns/${netns}`, '--'] : []
}
