// The host's readiness: every controller this host runs reports how its
// concern stands (one condition type each: LeaseHeld, DataPath, Firewall,
// Docker, ...); Ready is True only when every registered one is True.
// The lease controller publishes these as the HostLease's status conditions
// (one writer per object, so no write races), /healthz answers from it, and
// the state lives here so no controller needs to know the others.
import { isDeepStrictEqual } from 'node:util'
import { Subject, type Observable } from 'rxjs'
import type { ConditionInput, ConditionStatus } from './conditions.js'

export interface ComponentState {
  type: string
  status: ConditionStatus
  reason: string
  message: string
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
  /** Emits the type of a component whose state changed (not on identical reports). */
  readonly changes$: Observable<string> = this.changes.asObservable()

  /**
   * Declare a component the host must converge; it is Unknown until it
   * reports. Returns the function the component reports through.
   */
  register(type: string): (status: ConditionStatus | boolean, reason: string, message: string) => void {
    if (!this.states.has(type)) this.set({ type, status: 'Unknown', reason: 'Starting', message: `${type} has not been reconciled yet` })
    return (status, reason, message) => this.set({ type, status: typeof status === 'boolean' ? (status ? 'True' : 'False') : status, reason, message })
  }

  set(state: ComponentState): void {
    if (isDeepStrictEqual(this.states.get(state.type), state)) return
    this.states.set(state.type, { ...state })
    this.changes.next(state.type)
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
