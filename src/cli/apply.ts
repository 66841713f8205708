// `weftctl apply`: make the store hold what the files say. Every document is
// validated before the first write (one bad document writes none); then each
// object is created, replaced (spec, labels, annotations; status stays the
// agents') or left alone when already equal; `--prune -l` removes objects of
// the applied kinds that match the selector but are no longer in the input.
import type { AnyResource, KindName } from '../crds/kinds.js'
import { AlreadyExistsError, ConflictError, NotFoundError, parseSelector, TlsError, UnavailableError, type LabelSelector, type Store } from '../store/index.js'
import { bool, list, str, type OptionSpec } from './args.js'
import type { Command, Context } from './context.js'
import { desiredObjects, sameUserPart } from './desired.js'
import { formatError, UsageError } from './errors.js'
import { inApplyOrder, inDeleteOrder, readManifests } from './manifests.js'
import { nameOf } from './printers.js'

const options: OptionSpec = {
  filename: { type: 'string', short: 'f', multiple: true },
  recursive: { type: 'boolean', short: 'R' },
  'dry-run': { type: 'string' },
  prune: { type: 'boolean' },
  selector: { type: 'string', short: 'l' },
}

const usage = `Apply a configuration to weft's objects by file name or stdin.

Objects are created when absent and replaced (spec, labels, annotations) when they differ;
status is the agents' and never written. All documents are validated first: one invalid
document and nothing is written.

Examples:
  weftctl apply -f overlay.yaml
  weftctl apply -R -f manifests/
  cat net.yaml | weftctl apply -f -
  weftctl apply -f manifests/ --prune -l app=weft     # also delete labelled objects no longer in the files

Usage:
  weftctl apply -f FILE|DIR|- [-R] [--dry-run] [--prune -l SELECTOR]

Options:
  -f, --filename=[]    file, directory or - (stdin); may be repeated
  -R, --recursive      process directories recursively
      --dry-run        print what would happen, write nothing
      --prune          delete objects of the applied kinds matching -l that are not in the input
  -l, --selector=''    label selector: apply (and prune) only objects matching it`

/** How many times a write lost to a concurrent one is re-read and retried. */
const CONFLICT_RETRIES = 5

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Create or update objects from files or stdin',
  usage,
  options,
  async run(ctx) {
    if (ctx.positionals.length) throw new UsageError(`Unexpected args: [${ctx.positionals.join(' ')}]`)
    const dryRun = dryRunFlag(str(ctx.values, 'dry-run'))
    const selectorText = str(ctx.values, 'selector')
    const prune = bool(ctx.values, 'prune')
    if (prune && !selectorText) {
      throw new UsageError('--prune needs a label selector (-l): without one it would delete every object of the applied kinds not in the input')
    }
    const selector = selectorText ? parseSelector(selectorText) : undefined

    const manifests = await readManifests(list(ctx.values, 'filename'), { recursive: bool(ctx.values, 'recursive'), stdin: ctx.stdin })
    const { objects, errors } = desiredObjects(manifests)
    if (errors.length) {
      for (const e of errors) ctx.err(e)
      return 1
    }
    const chosen = selector ? objects.filter((o) => selector(o.metadata.labels)) : objects
    if (chosen.length === 0) throw new UsageError('no objects passed to apply')

    const suffix = dryRun ? ' (dry run)' : ''
    const store = ctx.store()
    let failed = false
    for (const obj of inApplyOrder(chosen)) {
      try {
        ctx.out(`${nameOf(obj)} ${await applyOne(store, obj, dryRun)}${suffix}\n`)
      } catch (err) {
        if (err instanceof UnavailableError || err instanceof TlsError) throw err // the rest would only wait out the same deadline
        // kubectl goes on with the other objects and reports failure at the end
        ctx.err(formatError(err))
        failed = true
      }
    }
    // pruning after a partial failure could delete what the failed half was meant to replace
    if (prune && selector && !failed) failed = !(await pruneOthers(ctx, store, chosen, selector, dryRun))
    return failed ? 1 : 0
  },
}

function dryRunFlag(value: string | undefined): boolean {
  if (value === undefined || value === 'none' || value === 'false') return false
  if (value === 'client' || value === 'server' || value === 'true') return true
  throw new UsageError(`Invalid dry-run value (${value}). Must be "none", "server", or "client".`)
}

type Outcome = 'created' | 'configured' | 'unchanged'

async function applyOne(store: Store, obj: AnyResource, dryRun: boolean): Promise<Outcome> {
  for (let attempt = 0; ; attempt++) {
    try {
      const live = await store.get(obj.kind, obj.metadata.name).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined
        throw err
      })
      if (!live) {
        if (!dryRun) await store.create(obj)
        return 'created'
      }
      if (sameUserPart(obj, live)) return 'unchanged'
      if (!dryRun) await store.update({ ...obj, metadata: { ...obj.metadata, resourceVersion: live.metadata.resourceVersion } } as AnyResource)
      return 'configured'
    } catch (err) {
      // someone else wrote (or created, or deleted) it between our read and write: read again
      const raced = err instanceof ConflictError || err instanceof AlreadyExistsError || err instanceof NotFoundError
      if (!raced || attempt >= CONFLICT_RETRIES) throw err
    }
  }
}

/** Deletes the selector's objects of the applied kinds that the input no longer has; false when one failed. */
async function pruneOthers(ctx: Context, store: Store, applied: readonly AnyResource[], selector: LabelSelector, dryRun: boolean): Promise<boolean> {
  const keep = new Set(applied.map((o) => nameOf(o)))
  const kinds = [...new Set(applied.map((o) => o.kind))].map((kind) => ({ kind }))
  let ok = true
  for (const { kind } of inDeleteOrder<{ kind: KindName }>(kinds)) {
    const { items } = await store.list(kind, selector)
    for (const obj of items) {
      if (keep.has(nameOf(obj))) continue
      try {
        if (!dryRun) await store.delete(kind, obj.metadata.name, { resourceVersion: obj.metadata.resourceVersion })
        ctx.out(`${nameOf(obj)} pruned${dryRun ? ' (dry run)' : ''}\n`)
      } catch (err) {
        if (err instanceof NotFoundError) continue // gone already: what pruning wanted
        ctx.err(formatError(err))
        ok = false
      }
    }
  }
  return ok
}
