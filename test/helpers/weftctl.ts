// Running weftctl as a user does, as a child process: bin/weftctl (the
// installed executable, on dist/) when the build is at least as new as src/,
// otherwise the TypeScript entry through tsx, so a stale build is never tested.
// `viaBin` insists on the executable (building dist/ first when missing).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  input?: string
  viaBin?: boolean
  timeoutMs?: number
}

export function ensureBuilt(): void {
  if (existsSync(`${REPO}dist/cli/weftctl.js`)) return
  const res = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' })
  if (res.status !== 0) throw new Error('npm run build failed')
}

function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

let buildIsFresh: boolean | undefined
function useBuild(): boolean {
  const entry = `${REPO}dist/cli/weftctl.js`
  buildIsFresh ??= existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(`${REPO}src`)
  return buildIsFresh
}

export function spawnWeftctl(args: readonly string[], opts: RunOptions = {}): ChildProcessWithoutNullStreams {
  const [cmd, pre] = opts.viaBin || useBuild() ? [`${REPO}bin/weftctl`, []] : [process.execPath, ['--import', 'tsx', `${REPO}src/cli/weftctl.ts`]]
  // the caller's WEFT_* must not leak into a test that sets its own, nor tap's loader hooks into the child
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEFT_') && k !== 'NODE_OPTIONS'))
  return spawn(cmd, [...pre, ...args], { cwd: REPO, env: { ...base, ...opts.env } })
}

export function runWeftctl(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now()
  const child = spawnWeftctl(args, opts)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin.end(opts.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    }),
  )
}

/** Collects a long-running child's stdout from the start; `until` waits, bounded, for a match. */
export function collectOutput(child: ChildProcessWithoutNullStreams): { text(): string; until(pattern: RegExp, timeoutMs?: number): Promise<string> } {
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  return {
    text: () => out,
    async until(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in output within ${timeoutMs}ms; saw: ${out}`)
        await new Promise((r) => setTimeout(r, 25))
      }
      return out
    },
  }
}
