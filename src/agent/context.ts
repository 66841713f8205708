// What every controller of weftd may build on, handed to each controller's
// factory in src/agent/controllers.ts.
import type { Logger } from 'pino'
import type { Backend } from '../backends/backend.js'
import type { StartupPublication } from '../controllers/startup.js'
import type { BackendType } from '../crds/index.js'
import type { LeaseHolder } from '../lease/held.js'
import type { LeaseRegistry } from '../lease/registry.js'
import type { HostReadiness, Manager } from '../runtime/index.js'
import type { Store } from '../store/index.js'
import type { AgentFlags } from './flags.js'
import type { Underlay } from './underlay.js'

export interface AgentContext {
  flags: AgentFlags
  store: Store
  /** shared informers (`manager.informer('HostLease')`), metrics registry */
  manager: Manager
  /** the host's conditions (manager.readiness): own one with ControllerSpec.condition and return it from reconcile */
  readiness: HostReadiness
  /** the lease this host holds (`holder.current`, `holder.held$`); set backend data with `holder.setBackendData` */
  holder: LeaseHolder
  leases: LeaseRegistry
  underlay: Underlay
  /** one driver per backend: the data path runs them, the lease controller asks them for the data its claim carries */
  backends: Record<BackendType, Backend>
  /** a starting host's first status and first reachability report, in one write (src/controllers/startup.ts) */
  startup: StartupPublication
  logger: Logger
}
