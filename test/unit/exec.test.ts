import t from 'tap'
import { CommandError, run, runnerFor } from '../../src/host/exec.js'

t.test('stdout is returned, stdin is fed', async (t) => {
  t.equal(await run('echo', ['a b']), 'a b\n')
  t.equal(await run('cat', [], { input: 'fed\n' }), 'fed\n')
})

t.test('a failing command throws a CommandError with what a caller needs', async (t) => {
  const err = await run('sh', ['-c', 'echo oops >&2; exit 3']).catch((e: unknown) => e)
  t.type(err, CommandError)
  t.match(err, { cmd: 'sh', args: ['-c', 'echo oops >&2; exit 3'], exitCode: 3, stderr: 'oops\n', timedOut: false })
  t.match((err as Error).message, /exited 3: oops/)
})

t.test('a missing binary and a timeout are CommandErrors too', async (t) => {
  t.match(await run('/nonexistent/tool', []).catch((e: unknown) => e), { exitCode: null, stderr: /ENOENT/ })
  const started = Date.now()
  t.match(await run('sleep', ['5'], { timeoutMs: 200 }).catch((e: unknown) => e), { timedOut: true, exitCode: null })
  t.ok(Date.now() - started < 3_000, 'killed at the timeout')
})

t.test('a netns runner goes through nsenter --net', async (t) => {
  const err = await runnerFor('weft-no-such-ns')('true', []).catch((e: unknown) => e)
  t.match(err, { cmd: 'nsenter', args: ['--net=/run/netns/weft-no-such-ns', '--', 'true'] })
  t.equal(runnerFor(undefined), run, 'no namespace: the plain runner')
})

t.test('a command that leaves a process holding its output still settles, with what it printed', async (t) => {
  const started = Date.now()
  // the background sleep keeps stdout open after sh exits; its PID comes first on stdout
  const out = await run('sh', ['-c', 'sleep 20 & echo $!; echo done'], { timeoutMs: 10_000 })
  const pid = Number(out.split('\n')[0])
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  })
  t.ok(pid > 0, 'the background PID was read')
  t.match(out, /done\n$/)
  t.ok(Date.now() - started < 5_000, `settled after ${Date.now() - started} ms, not when the sleep ends`)
  t.doesNotThrow(() => process.kill(pid, 0), 'the background process is still running, so its pipe was still open')
})
