// `weftctl wait`: block until objects reach a condition (or are deleted),
// watching rather than polling, bounded by --timeout.
//
// A condition is met when status.conditions has an entry of that type with
// the wanted status, and, when the entry carries observedGeneration, that is
// at least metadata.generation (the agent has seen the current spec). A
// Network's status is per host: its condition is met when status.hosts has at
// least one entry and every entry meets it.
import type { Subscription } from 'rxjs'
import type { AnyResource, KindInfo } from '../crds/kinds.js'
import type { Condition } from '../crds/meta.js'
import { NotFoundError, parseSelector, type Store } from '../store/index.js'
import { durationFlag, objectRefs, resolveKind, str, type ObjectRef, type OptionSpec } from './args.js'
import type { Command } from './context.js'
import { UsageError } from './errors.js'
import { nameOf } from './printers.js'

const options: OptionSpec = {
  for: { type: 'string' },
  timeout: { type: 'string' },
  selector: { type: 'string', short: 'l' },
}

const usage = `Wait for a condition on one or many objects.

A condition is met when status.conditions has it with the wanted status and, if the entry
has observedGeneration, it is at least metadata.generation. For a Network, every host entry
in status.hosts must meet it (and there must be at least one).

Examples:
  weftctl wait --for=condition=Ready hostlease/host-a
  weftctl wait --for=condition=Ready=False hl host-a --timeout=30s
  weftctl wait --for=condition=Ready net -l team=web
  weftctl wait --for=delete network/mynet_01

Usage:
  weftctl wait --for=condition=TYPE[=True|False|Unknown]|--for=delete KIND/NAME... [--timeout=60s]

Options:
      --for=''          condition=TYPE[=STATUS] or delete
      --timeout=60s     give up after this long; 0 checks once
  -l, --selector=''     wait for every object of KIND matching the selector`

export type WaitFor = { type: 'delete' } | { type: 'condition'; condition: string; status: 'True' | 'False' | 'Unknown' }

export function parseWaitFor(text: string | undefined): WaitFor {
  if (!text) throw new UsageError('--for must be set: --for=condition=TYPE or --for=delete')
  if (text.toLowerCase() === 'delete') return { type: 'delete' }
  const m = /^condition=([^=]+)(?:=(.*))?$/i.exec(text)
  if (!m) throw new UsageError(`unrecognized condition: "${text}"`)
  const value = (m[2] ?? 'True').toLowerCase()
  const status = value === 'true' ? 'True' : value === 'false' ? 'False' : value === 'unknown' ? 'Unknown' : undefined
  if (!status) throw new UsageError(`unrecognized condition status "${m[2]}" in "${text}": want True, False or Unknown`)
  return { type: 'condition', condition: m[1]!, status }
}

/** See the file comment for what "met" means. */
export function conditionMet(obj: AnyResource, condition: string, status: string): boolean {
  const generation = obj.metadata.generation
  const holds = (conditions: readonly Condition[] | undefined) =>
    (conditions ?? []).some(
      (c) =>
        c.type.toLowerCase() === condition.toLowerCase() &&
        c.status === status &&
        (c.observedGeneration === undefined || generation === undefined || c.observedGeneration >= generation),
    )
  if (obj.kind === 'Network') {
    const hosts = Object.values(obj.status?.hosts ?? {})
    return hosts.length > 0 && hosts.every((h) => holds(h.conditions))
  }
  return holds(obj.status?.conditions)
}

export const waitCommand: Command = {
  name: 'wait',
  summary: 'Wait for a condition on objects',
  usage,
  options,
  async run(ctx) {
    const waitFor = parseWaitFor(str(ctx.values, 'for'))
    const timeoutMs = durationFlag(ctx.values, 'timeout', 60_000)
    if (ctx.positionals.length === 0) throw new UsageError('resource name may not be empty: give KIND/NAME, KIND NAME or KIND -l SELECTOR')
    const store = ctx.store()
    let refs = objectRefs(ctx.positionals)
    const selectorText = str(ctx.values, 'selector')
    if (!refs.length) {
      if (!selectorText) throw new UsageError('resource name may not be empty: give KIND/NAME, KIND NAME or KIND -l SELECTOR')
      const info = resolveKind(ctx.positionals[0]!)
      const { items } = await store.list(info.kind, parseSelector(selectorText))
      if (!items.length) throw new UsageError('no matching resources found')
      refs = items.map((o) => ({ info, name: o.metadata.name }))
    }
    // a missing object is an error for a condition (nothing to wait on), success for delete
    const present = new Map<string, AnyResource>()
    for (const ref of refs) {
      try {
        present.set(key(ref), await store.get(ref.info.kind, ref.name))
      } catch (err) {
        if (!(err instanceof NotFoundError) || waitFor.type !== 'delete') throw err
      }
    }
    const pending = new Set(refs.map(key))
    const settle = (ref: ObjectRef) => {
      if (!pending.delete(key(ref))) return
      ctx.out(`${nameOf({ kind: ref.info.kind, metadata: { name: ref.name } })} condition met\n`)
    }
    const check = (ref: ObjectRef, obj: AnyResource | undefined) => {
      if (waitFor.type === 'delete' ? obj === undefined : obj !== undefined && conditionMet(obj, waitFor.condition, waitFor.status)) settle(ref)
    }
    for (const ref of refs) check(ref, present.get(key(ref)))
    if (pending.size && timeoutMs > 0) await watchUntil(store, refs, pending, check, timeoutMs)
    for (const k of pending) ctx.err(`error: timed out waiting for the condition on ${k}`)
    return pending.size ? 1 : 0
  },
}

/** `hostleases/h1`, the form kubectl's timeout message names objects by. */
function key(ref: ObjectRef): string {
  return `${ref.info.plural}/${ref.name}`
}

function watchUntil(
  store: Store,
  refs: ObjectRef[],
  pending: Set<string>,
  check: (ref: ObjectRef, obj: AnyResource | undefined) => void,
  timeoutMs: number,
): Promise<void> {
  const kinds = [...new Set(refs.map((r) => r.info))]
  const subscriptions: Subscription[] = []
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      for (const s of subscriptions) s.unsubscribe()
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    for (const info of kinds) subscriptions.push(watchKind(store, info, refs.filter((r) => r.info === info), check, () => pending.size === 0 && done()))
  })
}

function watchKind(
  store: Store,
  info: KindInfo,
  refs: ObjectRef[],
  check: (ref: ObjectRef, obj: AnyResource | undefined) => void,
  after: () => void,
): Subscription {
  const byName = new Map(refs.map((r) => [r.name, r]))
  const seen = new Set<string>()
  return store.watch(info.kind).subscribe((ev) => {
    // a key gone bad keeps its last valid state, as every reader of the store sees it
    if (ev.type === 'INVALID') return
    if (ev.type === 'SYNCED') {
      // the listing is complete: what it did not mention does not exist
      for (const ref of refs) if (!seen.has(ref.name)) check(ref, undefined)
    } else {
      const ref = byName.get(ev.object.metadata.name)
      if (!ref) return
      if (ev.type === 'DELETED') seen.delete(ref.name)
      else seen.add(ref.name)
      check(ref, ev.type === 'DELETED' ? undefined : ev.object)
    }
    after()
  })
}
