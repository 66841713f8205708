// weftd's main: flags → logger → store → manager with every controller of
// src/agent/controllers.ts → /healthz and /metrics → run until SIGTERM/SIGINT.
// Exit codes: 0 stopped by a signal; 1 could not start; 2 bad flags.
import { pino } from 'pino'
import { createBackends } from '../backends/registry.js'
import { StartupPublication } from '../controllers/startup.js'
import { Links } from '../host/links.js'
import { Sysctl } from '../host/sysctl.js'
import { LeaseHolder } from '../lease/held.js'
import { LeaseRegistry } from '../lease/registry.js'
import { reservedLeaseClaims } from '../lease/reserved.js'
import { Manager } from '../runtime/index.js'
import { Store, StoreError } from '../store/index.js'
import type { AgentContext } from './context.js'
import { CONTROLLERS } from './controllers.js'
import { EtcdProbe } from './etcdprobe.js'
import { parseFlags, usage, type AgentFlags } from './flags.js'
import { HealthzServer } from './healthz.js'
import { resolveUnderlay, type Underlay } from './underlay.js'

export const VERSION = '0.1.0'

/** Parse flags and start the agent; resolves with an exit code only when it cannot start. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  let flags: AgentFlags
  let underlay: Underlay
  try {
    const parsed = parseFlags(argv, env)
    if ('help' in parsed && parsed.help) {
      process.stdout.write(usage())
      return 0
    }
    if ('version' in parsed && parsed.version) {
      process.stdout.write(`weftd ${VERSION}\n`)
      return 0
    }
    flags = parsed as AgentFlags
    underlay = resolveUnderlay(flags)
  } catch (err) {
    if (!(err instanceof Error)) throw err
    process.stderr.write(`weftd: error: ${err.message}\nRun 'weftd --help' for usage.\n`)
    return 2
  }

  await underlay.refresh()
  // an underlay MTU change (rare) is picked up within a minute
  setInterval(() => void underlay.refresh(), 60_000).unref()
  const logger = pino({ level: flags.logLevel, base: { host: flags.hostName, overlay: flags.overlay } })
  let store: Store
  try {
    // a reserved lease the agent rewrites keeps its subnet claim (src/lease/reserved.ts)
    store = Store.connect(flags.connection).use(reservedLeaseClaims)
  } catch (err) {
    if (!(err instanceof StoreError)) throw err
    process.stderr.write(`weftd: error: ${err.message}\n`)
    return 2
  }
  const manager = new Manager({ store, logger })
  // what every controller reports its condition into (ControllerSpec.condition), /healthz answers from
  const readiness = manager.readiness
  const holder = new LeaseHolder()
  const backends = createBackends({ links: new Links(), sysctl: new Sysctl(), metrics: manager.registry, wireguardKeyFile: flags.wireguardKeyFile })
  const ctx: AgentContext = { flags, store, manager, readiness, holder, leases: new LeaseRegistry(store), underlay, backends, startup: new StartupPublication(true), logger }

  const probe = new EtcdProbe(store, logger, manager.registry)
  manager.addRunnable(probe)
  manager.addRunnable(new HealthzServer({ ...flags.healthz, readiness, probe, holder, controllers: () => manager.controllers, registry: manager.registry, logger }))
  for (const factory of CONTROLLERS) manager.add(factory(ctx))

  manager.handleSignals((signal) => {
    store.close()
    logger.info({ signal }, 'stopped')
    process.exit(0)
  })
  try {
    await manager.start()
  } catch (err) {
    logger.fatal({ err }, 'cannot start')
    await manager.stop().catch(() => undefined)
    store.close()
    return 1
  }
  logger.info(
    { publicIP: underlay.publicIP(), iface: underlay.iface, endpoints: flags.connection.endpoints, prefix: flags.connection.prefix },
    'weftd started',
  )
  return undefined
}

/** Entry point of bin/weftd. */
export async function run(): Promise<void> {
  const code = await main(process.argv.slice(2))
  if (code !== undefined) process.exit(code)
}
