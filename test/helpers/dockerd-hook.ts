// weftd's --dockerd-restart-command for tests. The test owns its dockerd
// (test/helpers/dockerd.ts), so the command cannot restart it itself; it is a
// small script that reads the docker opts file as a systemd unit's
// EnvironmentFile= would, hands $DOCKER_NETWORK_OPTIONS to the test through a
// request file, and waits (bounded) for the test to answer with an exit
// status once dockerd runs with those flags. Like `systemctl restart docker`,
// it returns only after the restart.
import { existsSync } from 'node:fs'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Dockerd } from './dockerd.js'

export interface RestartHook {
  /** the value for --dockerd-restart-command */
  command: string
  /** the flags of every restart asked for, in order */
  restarts: string[][]
  /** when each request was seen, and when its restart was done (Date.now()), in order */
  requestedAt: number[]
  finishedAt: number[]
  close(): void
}

/** Serve restart requests for `daemon` through files in `dir` (outside the daemon's own dir). */
export async function dockerdRestartHook(daemon: () => Dockerd | undefined, dir: string): Promise<RestartHook> {
  const request = join(dir, 'restart.req')
  const done = join(dir, 'restart.done')
  const script = join(dir, 'restart-dockerd.sh')
  await writeFile(
    script,
    `#!/bin/sh
set -e
. "$WEFT_DOCKER_OPTS_FILE"
rm -f '${done}'
printf '%s\\n' "$DOCKER_NETWORK_OPTIONS" > '${request}.tmp'
mv '${request}.tmp' '${request}'
i=0
while [ ! -e '${done}' ]; do
  i=$((i + 1))
  [ "$i" -le 900 ] || { echo 'dockerd restart hook: no answer within 90 s' >&2; exit 1; }
  sleep 0.1
done
status=$(cat '${done}')
rm -f '${done}'
exit "$status"
`,
    { mode: 0o755 },
  )
  const restarts: string[][] = []
  const requestedAt: number[] = []
  const finishedAt: number[] = []
  let busy = false
  const timer = setInterval(() => {
    if (busy || !existsSync(request)) return
    busy = true
    void (async () => {
      requestedAt.push(Date.now())
      const flags = (await readFile(request, 'utf8')).trim().split(/\s+/).filter(Boolean)
      await rm(request, { force: true })
      restarts.push(flags)
      let status = 0
      try {
        const d = daemon()
        if (!d) throw new Error('no dockerd to restart')
        await d.restart(flags)
      } catch {
        status = 1
      }
      await writeFile(`${done}.tmp`, `${status}\n`)
      await rename(`${done}.tmp`, done)
      finishedAt.push(Date.now())
    })().finally(() => (busy = false))
  }, 100)
  return { command: script, restarts, requestedAt, finishedAt, close: () => clearInterval(timer) }
}
