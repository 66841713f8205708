// Which etcd member a call goes to. etcd3 walks the members in a shuffled
// order and asks each member's policy to run the call; a policy that throws
// without calling through makes it move on to the next member. Ours:
//
//  - a member whose last call failed on the transport (refused, reset, no
//    answer before the deadline: what etcd3 calls recoverable) is passed over
//    for a while, 1 s doubling to 30 s while it keeps failing, reset by one
//    success. So after one failed call a dead or hung member costs nothing.
//  - but only while another member is not passed over: when every member
//    failed lately (the whole cluster down), every call tries them all. That
//    is why etcd3's stock circuit breaker is not used: once all its breakers
//    are open it fails every call without dialling for 5 s, and its half-open
//    state lets one call through, so clients came back seconds after etcd did.
//
// The retry across members is etcd3's global policy (client.ts); this file
// only decides who is tried.
import { EventEmitter, type IDefaultPolicyContext, type IFailureEvent, type IPolicy, type ISuccessEvent } from 'cockatiel'
import { isRecoverableError } from 'etcd3'

const SKIP_MIN_MS = 1000
const SKIP_MAX_MS = 30_000

/** Thrown by a member's policy to pass it over; etcd3 then tries the next member. */
export class MemberSkippedError extends Error {
  override name = 'MemberSkippedError'
  constructor(readonly member: string) {
    super(`etcd member ${member} failed lately; passed over`)
  }
}

interface MemberState {
  failures: number
  skipUntil: number
}

export class MemberHealth {
  private readonly members = new Map<string, MemberState>()

  constructor(
    members: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    for (const m of members) this.members.set(m, { failures: 0, skipUntil: 0 })
  }

  /** The policy etcd3 runs every call to `member` through (`faultHandling.host`). */
  policy(member: string): IPolicy<IDefaultPolicyContext> {
    const success = new EventEmitter<ISuccessEvent>()
    const failure = new EventEmitter<IFailureEvent>()
    return {
      _altReturn: undefined as never,
      onSuccess: success.addListener,
      onFailure: failure.addListener,
      execute: async <T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> => {
        if (this.passedOver(member)) throw new MemberSkippedError(member)
        const started = this.now()
        try {
          const result = await fn({ signal: signal ?? new AbortController().signal })
          // a stream (watch, keepalive) is only opened here, nothing was answered yet
          if (!isStream(result)) this.succeeded(member)
          success.emit({ duration: this.now() - started })
          return result
        } catch (err) {
          // an etcd answer (permission denied, compare failed...) says the member is fine
          if (err instanceof Error && isRecoverableError(err)) this.failed(member)
          failure.emit({ duration: this.now() - started, handled: false, reason: { error: err as Error } })
          throw err
        }
      },
    }
  }

  /** true while `member` is passed over (exported for tests and logs) */
  passedOver(member: string): boolean {
    const state = this.members.get(member)
    if (!state || state.skipUntil <= this.now()) return false
    for (const [other, s] of this.members) if (other !== member && s.skipUntil <= this.now()) return true
    return false
  }

  failed(member: string): void {
    const state = this.members.get(member)
    if (!state) return
    state.failures++
    state.skipUntil = this.now() + Math.min(SKIP_MAX_MS, SKIP_MIN_MS * 2 ** (state.failures - 1))
  }

  succeeded(member: string): void {
    const state = this.members.get(member)
    if (!state) return
    state.failures = 0
    state.skipUntil = 0
  }
}

function isStream(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { write?: unknown }).write === 'function'
}
