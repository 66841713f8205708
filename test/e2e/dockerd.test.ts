// The dockerd reconciler on simulated hosts with real dockerds: docker0 moved
// onto the lease through --dockerd-restart-command (once); without a command,
// Docker=False with the exact flags, converged once dockerd runs with them; a
// dockerd that is absent at first is picked up; a dockerd restarted by hand
// onto other flags is repaired at once, and again only after the backoff
// the status names; a restart that cannot reach the lease is reported and
// never repeated.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DockerHost } from '../../src/host/docker.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { dockerdRestartHook } from '../helpers/dockerd-hook.js'
import { createCluster, startWeftd, until, type Cluster } from '../helpers/weftd.js'

async function condition(c: Cluster, host: string, type: string, status: 'True' | 'False', reason?: string, timeoutMs = 60_000) {
  return until(`${type}=${status}${reason ? `/${reason}` : ''} on ${host}`, async () => {
    const cond = (await c.lease(host))?.status?.conditions?.find((x) => x.type === type)
    return cond && cond.status === status && (!reason || cond.reason === reason) ? cond : undefined
  }, timeoutMs).catch(async (err: Error) => {
    const now = (await c.lease(host).catch(() => undefined))?.status?.conditions?.find((x) => x.type === type)
    throw new Error(`${err.message}; last: ${JSON.stringify(now)}\n--- weftd ${host} log tail:\n${c.weftds.get(host)?.output().slice(-3000)}`)
  })
}

t.test('docker0 follows the lease: restart command, reported flags, no restart loop', async (t) => {
  const started = Date.now()
  const c = await createCluster({ hosts: ['h1', 'h2', 'h3'], overlay: { network: '10.2.0.0/16', backend: { type: 'host-gw' }, mtu: 1472 }, start: false })
  const dir = await mkdtemp(join(tmpdir(), 'weft-dockerd-e2e-'))
  const daemons = new Map<string, Dockerd>()
  const hook = await dockerdRestartHook(() => daemons.get('h1'), dir)
  t.teardown(async () => {
    hook.close()
    for (const w of c.weftds.values()) await w.kill('SIGKILL')
    for (const d of daemons.values()) await d.stop()
    await c.destroy()
    await rm(dir, { recursive: true, force: true })
  })
  const { topo } = c
  const counter = join(dir, 'h3-restarts')
  const args: Record<string, string[]> = {
    h1: ['--dockerd-restart-command', hook.command],
    h2: [],
    // a command that "succeeds" without restarting anything: weft must notice, and not try again
    h3: ['--dockerd-restart-command', `echo ran >> ${counter}`],
  }
  for (const h of topo.hosts) c.weftds.set(h.name, await startWeftd(topo, h, { endpoint: c.etcd.netnsEndpoint, prefix: c.prefix, dir, args: args[h.name]! }))
  const hostDir = (h: string) => dirname(c.weftds.get(h)!.subnetFile)
  const want = async (h: string) => {
    const subnet = (await until(`${h} lease`, () => c.lease(h)))!.spec.subnet
    return { bip: subnet.replace(/0\/24$/, '1/24'), subnet, flags: `--bip=${subnet.replace(/0\/24$/, '1/24')} --ip-masq=false --mtu=1472` }
  }

  // dockerd absent: reported, polled
  const absent = await condition(c, 'h2', 'Docker', 'False', 'DaemonUnavailable')
  t.match(absent.message, /does not answer/, 'no dockerd yet: Docker=False DaemonUnavailable')

  // dockerd appears with Docker's defaults (docker0 172.17.0.1/16, mtu 1500) on every host
  for (const h of ['h1', 'h2', 'h3']) daemons.set(h, await startDockerd(topo, h, { dir: hostDir(h) }))

  // h1: weft restarts dockerd through the command, with the docker opts file's flags
  const w1 = await want('h1')
  const t1 = Date.now()
  await condition(c, 'h1', 'Docker', 'True', 'Converged')
  t.comment(`h1 converged ${Date.now() - t1} ms after dockerd appeared`)
  t.same(hook.restarts, [w1.flags.split(' ')], 'one restart, with DOCKER_NETWORK_OPTIONS from the opts file')
  const bridge = await new DockerHost({ url: daemons.get('h1')!.url, netns: topo.hosts[0]!.netns }).defaultBridge()
  t.match(bridge, { subnet: w1.subnet, gateway: w1.bip.split('/')[0], mtu: 1472 }, "docker0 now carries the lease's gateway and the overlay MTU")
  await sleep(4_000)
  t.equal(hook.restarts.length, 1, 'converged: no further restart')

  // the three hosts' stories from here on are independent: told at once, they take the longest one's time

  // h1, later: someone restarts dockerd by hand onto Docker's default bip. weft's last restart was
  // over 10 s ago: repaired at once (DESIGN §5: within 15 s), not after a 5 min backoff
  const h1ByHand = async () => {
    const d1 = daemons.get('h1')!
    const h1Docker = new DockerHost({ url: d1.url, netns: topo.hosts[0]!.netns })
    const onLease = async () => {
      const b = await h1Docker.defaultBridge().catch(() => undefined)
      return b?.gateway === w1.bip.split('/')[0] && b.mtu === 1472 ? b : undefined
    }
    // past the 10 s backoff after weft's first restart, as "a minute later" is
    await sleep(Math.max(0, hook.finishedAt[0]! + 10_000 - Date.now()))
    await d1.restart(['--bip=172.17.0.1/16'])
    const drifted = Date.now()
    t.match(await h1Docker.defaultBridge(), { gateway: '172.17.0.1', subnet: '172.17.0.0/16' }, 'dockerd restarted by hand runs docker0 on 172.17.0.1/16')
    await until('h1 docker0 back on the lease', onLease, 60_000, 200)
    const repairMs = Date.now() - drifted
    await condition(c, 'h1', 'Docker', 'True', 'Converged', 30_000)
    t.comment(`drift repair: docker0 back on the lease ${repairMs} ms after dockerd came up on --bip=172.17.0.1/16 by hand (DESIGN: within 15 s); Docker=True after ${Date.now() - drifted} ms`)
    t.comment(`  of which: drift seen and restart asked for ${hook.requestedAt[1]! - drifted} ms, the restart itself ${hook.finishedAt[1]! - hook.requestedAt[1]!} ms`)
    // 15 s is the contract; twice that keeps a loaded machine from failing it, and is far below the old 5 min
    t.ok(repairMs < 30_000, `repaired in ${repairMs} ms`)
    t.same(hook.restarts, [w1.flags.split(' '), w1.flags.split(' ')], 'by one more restart, with the lease\'s flags')

    // and again right away, as a tool fighting weft would: the next restart waits 20 s after the last,
    // the status names the time, and weft keeps to it
    await d1.restart(['--bip=172.17.0.1/16'])
    const fight = await condition(c, 'h1', 'Docker', 'False', 'RestartBackoff', 30_000)
    t.match(fight.message, /backing off 20 s after 2 restart\(s\) in a row, trying again at \d{4}-\d\d-\d\dT[\d:.]+Z$/, fight.message)
    const retryAt = Date.parse(/trying again at (\S+)$/.exec(fight.message)![1]!)
    const sinceLast = retryAt - hook.finishedAt[1]!
    t.ok(sinceLast >= 19_000 && sinceLast < 25_000, `the named time is 20 s after weft's last restart ended (${sinceLast} ms)`)
    await until('h1 third restart', async () => hook.restarts.length >= 3, retryAt - Date.now() + 60_000)
    t.ok(hook.requestedAt[2]! >= retryAt, `no restart before the named time (${hook.requestedAt[2]! - retryAt} ms after it)`)
    await condition(c, 'h1', 'Docker', 'True', 'Converged', 30_000)
    t.ok(await onLease(), 'docker0 on the lease again')
    t.comment(`fight: restart requested ${hook.requestedAt[2]! - retryAt} ms after the named time; Docker=True ${Date.now() - retryAt} ms after it`)
  }

  // h2: no command: the exact flags are reported; once dockerd runs with them, Docker=True
  const h2Reported = async () => {
    const w2 = await want('h2')
    const required = await condition(c, 'h2', 'Docker', 'False', 'RestartRequired')
    t.match(required.message, w2.flags, `the message names the flags: ${required.message}`)
    const opts = await readFile(join(hostDir('h2'), 'docker'), 'utf8')
    t.match(opts, `DOCKER_NETWORK_OPTIONS=" ${w2.flags}"`, 'the same flags as DOCKER_NETWORK_OPTIONS')
    await daemons.get('h2')!.restart(w2.flags.split(' '))
    await condition(c, 'h2', 'Docker', 'True', 'Converged', 20_000)
    t.pass('h2 converged once dockerd ran with the reported flags')
  }

  // h3: the command ran once, docker0 did not move: reported, not repeated
  const h3Stuck = async () => {
    const stuck = await condition(c, 'h3', 'Docker', 'False', 'RestartDidNotConverge')
    t.match(stuck.message, /not restarting again until the lease changes/, stuck.message)
    await sleep(8_000)
    t.equal((await readFile(counter, 'utf8')).trim().split('\n').length, 1, 'the restart command ran exactly once')
    t.equal((await c.lease('h3'))?.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'False', 'h3 is not Ready')
  }

  await Promise.all([h1ByHand(), h2Reported(), h3Stuck()])
  t.comment(`whole test ${Date.now() - started} ms`)
})
