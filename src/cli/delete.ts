// `weftctl delete`: by name, by label selector, or every object the given
// files name. Networks go before leases before overlays, so nothing is left
// pointing at an object already gone.
import type { KindName } from '../crds/kinds.js'
import { NotFoundError, parseSelector, TlsError, UnavailableError, type Store } from '../store/index.js'
import { bool, list, objectRefs, resolveKind, str, type OptionSpec } from './args.js'
import type { Command, Context } from './context.js'
import { formatError, UsageError } from './errors.js'
import { documentRef, inDeleteOrder, readManifests } from './manifests.js'
import { nameOf } from './printers.js'

const options: OptionSpec = {
  filename: { type: 'string', short: 'f', multiple: true },
  recursive: { type: 'boolean', short: 'R' },
  selector: { type: 'string', short: 'l' },
  all: { type: 'boolean' },
  'ignore-not-found': { type: 'boolean' },
}

const usage = `Delete objects by name, by label selector, or as named in files.

Examples:
  weftctl delete network mynet_01
  weftctl delete hostlease/host-a
  weftctl delete -f manifests/network.yaml
  weftctl delete net -l team=web

Usage:
  weftctl delete KIND NAME... | KIND/NAME... | -f FILE|DIR|- [-R] | KIND -l SELECTOR | KIND --all

Options:
  -f, --filename=[]        delete the objects these files name; may be repeated
  -R, --recursive          process directories recursively
  -l, --selector=''        delete every object of KIND matching the selector
      --all                delete every object of KIND
      --ignore-not-found   an object that does not exist is not an error`

interface Target {
  kind: KindName
  name: string
}

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete objects by name, selector or file',
  usage,
  options,
  async run(ctx) {
    const files = list(ctx.values, 'filename')
    const selectorText = str(ctx.values, 'selector')
    let targets: Target[]
    let matchAll = false
    if (files.length) {
      if (ctx.positionals.length) throw new UsageError('there is no need to specify a resource type or name when passing -f')
      const manifests = await readManifests(files, { recursive: bool(ctx.values, 'recursive'), stdin: ctx.stdin })
      targets = inDeleteOrder(manifests.map(documentRef))
    } else {
      if (ctx.positionals.length === 0) throw new UsageError('you must provide one or more resources by argument or filename (KIND NAME, KIND/NAME or -f FILE)')
      const refs = objectRefs(ctx.positionals)
      if (refs.length) {
        if (selectorText || bool(ctx.values, 'all')) throw new UsageError('name cannot be provided when a selector or --all is specified')
        targets = refs.map((r) => ({ kind: r.info.kind, name: r.name }))
      } else {
        if (!selectorText && !bool(ctx.values, 'all')) throw new UsageError('resource(s) were provided, but no name was specified (give a NAME, -l SELECTOR or --all)')
        const info = resolveKind(ctx.positionals[0]!)
        const { items } = await ctx.store().list(info.kind, selectorText ? parseSelector(selectorText) : undefined)
        targets = items.map((o) => ({ kind: o.kind, name: o.metadata.name }))
        matchAll = true
      }
    }
    if (matchAll && targets.length === 0) ctx.err('No resources found.')
    return deleteAll(ctx, ctx.store(), targets)
  },
}

async function deleteAll(ctx: Context, store: Store, targets: Target[]): Promise<number> {
  const ignoreNotFound = bool(ctx.values, 'ignore-not-found')
  let failed = false
  for (const t of targets) {
    try {
      await store.delete(t.kind, t.name)
      ctx.out(`${nameOf({ kind: t.kind, metadata: { name: t.name } })} deleted\n`)
    } catch (err) {
      if (err instanceof NotFoundError && ignoreNotFound) continue
      if (err instanceof UnavailableError || err instanceof TlsError) throw err // the rest would only wait out the same deadline
      // like kubectl: report, carry on with the rest, fail at the end
      ctx.err(formatError(err))
      failed = true
    }
  }
  return failed ? 1 : 0
}
