// The host's readiness: every controller this host runs reports how its
// concern stands (one condition type each: LeaseHeld, DataPath, Firewall,
// Docker, ...); Ready is True only when every registered one is True.
// The runtime reports each controller's outcome here (ControllerSpec.condition),
// the host status writer (src/controllers/hoststatus.ts) publishes them as the
// HostLease's status conditions when a status or reason changes, /healthz and
// /metrics answer from it live, and the state lives here so no controller
// needs to know the others.
import { Subject, type Observable } from 'rxjs'
import type { ConditionInput, ConditionStatus } from './conditions.js'

export interface ComponentState {
  type: string
  status: ConditionStatus
  reason: string
  message: string
  /** the generation of this host's HostLease the state speaks of, when the component says (default: the lease's) */
  observedGeneration?: number
}

export interface Readiness {
  ready: boolean
  /** CamelCase: Converged, or the first not-ready component's type + NotReady */
  reason: string
  message: string
}

export class HostReadiness {
  private readonly states = new Map<string, ComponentState>()
  private readonly changes = new Subject<string>()
  private readonly transitions = new Subject<string>()
  /** components that have reported since they registered */
  private readonly heard = new Set<string>()
  /** when a component's status or reason last changed (ms since the epoch) */
  lastTransitionAt = Date.now()
  /** Emits the type of a component whose state changed (not on identical reports). */
  readonly changes$: Observable<string> = this.changes.asObservable()
  /** Emits the type of a component whose status or reason changed, or that registered: a change a reader of the status must see (not a message alone). */
  readonly transitions$: Observable<string> = this.transitions.asObservable()

  /**
   * Declare a component the host must converge; it is Unknown until it
   * reports. Returns the function the component reports through.
   */
  register(type: string): (status: ConditionStatus | boolean, reason: string, message: string) => void {
    if (!this.states.has(type)) this.set({ type, status: 'Unknown', reason: 'Starting', message: `${type} has not been reconciled yet` })
    return (status, reason, message) => this.report(type, status, reason, message)
  }

  /** A component's state as it reports it (status as a boolean: True/False). */
  report(type: string, status: ConditionStatus | boolean, reason: string, message: string, observedGeneration?: number): void {
    this.heard.add(type)
    this.set({ type, status: typeof status === 'boolean' ? (status ? 'True' : 'False') : status, reason, message, ...(observedGeneration !== undefined ? { observedGeneration } : {}) })
  }

  set(state: ComponentState): void {
    const prev = this.states.get(state.type)
    if (prev && sameState(prev, state)) return
    this.states.set(state.type, { ...state })
    this.changes.next(state.type)
    if (prev?.status !== state.status || prev.reason !== state.reason || prev.observedGeneration !== state.observedGeneration) {
      this.lastTransitionAt = Date.now()
      this.transitions.next(state.type)
    }
  }

  /** Whether the component has reported since it registered (its state is its own, not the Starting placeholder). */
  reported(type: string): boolean {
    return this.heard.has(type)
  }

  get(type: string): ComponentState | undefined {
    return this.states.get(type)
  }

  /** Every component's state, in registration order. */
  components(): ComponentState[] {
    return [...this.states.values()]
  }

  readiness(): Readiness {
    return aggregate(this.components())
  }

  /** Components plus the aggregate, as the conditions to publish (Ready first). */
  conditions(): ConditionInput[] {
    return withReady(this.components())
  }

  /** As conditions(), with one component's state replaced: what will be true once a write lands. */
  conditionsWith(state: ComponentState): ConditionInput[] {
    return withReady(this.components().map((s) => (s.type === state.type ? state : s)))
  }
}

/** field by field: every pass of every controller reports here, most of them with nothing changed */
function sameState(a: ComponentState, b: ComponentState): boolean {
  return a.status === b.status && a.reason === b.reason && a.message === b.message && a.observedGeneration === b.observedGeneration && a.type === b.type
}

function withReady(components: ComponentState[]): ConditionInput[] {
  const r = aggregate(components)
  return [{ type: 'Ready', status: r.ready ? 'True' : 'False', reason: r.reason, message: r.message }, ...components]
}

function aggregate(components: ComponentState[]): Readiness {
  const bad = components.filter((s) => s.status !== 'True')
  if (components.length > 0 && bad.length === 0) return { ready: true, reason: 'Converged', message: 'every controller of this host is converged' }
  if (bad.length === 0) return { ready: false, reason: 'NoControllers', message: 'no controller has registered' }
  return { ready: false, reason: `${bad[0]!.type}NotReady`, message: bad.map((s) => `${s.type}: ${s.message}`).join('; ') }
}
