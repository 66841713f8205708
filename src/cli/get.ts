// `weftctl get`: list or fetch objects and print them as a table, YAML, JSON
// or names; with -w keep printing one entry per change until interrupted.
import type { AnyResource, KindInfo } from '../crds/kinds.js'
import { InvalidStoredObjectError, NotFoundError, parseSelector, type LabelSelector, type Store } from '../store/index.js'
import { bool, objectRefs, resolveKind, str, type ObjectRef, type OptionSpec } from './args.js'
import type { Command, Context } from './context.js'
import { formatError, UsageError } from './errors.js'
import { columnWidths, formatRow, invalidWarning, nameOf, outputFormat, printObjects, tableHeader, tableRow, toJson, toYaml, type OutputFormat } from './printers.js'

const options: OptionSpec = {
  output: { type: 'string', short: 'o' },
  selector: { type: 'string', short: 'l' },
  watch: { type: 'boolean', short: 'w' },
  'ignore-not-found': { type: 'boolean' },
}

const usage = `Display one or many objects.

Kinds: overlayconfig (overlayconfigs, oc), hostlease (hostleases, hl), network (networks, net).

Examples:
  weftctl get hostleases
  weftctl get hl host-a -o yaml
  weftctl get net -l team=web -o wide
  weftctl get hostlease/host-a network/mynet_01
  weftctl get hl -w

Usage:
  weftctl get KIND [NAME...] | KIND/NAME... [-o wide|yaml|json|name] [-l SELECTOR] [-w]

Options:
  -o, --output=''          output format: wide, yaml, json or name
  -l, --selector=''        label selector, e.g. -l zone=a,tier!=db
  -w, --watch              after listing, print every change until interrupted
      --ignore-not-found   a named object that does not exist is not an error`

export const getCommand: Command = {
  name: 'get',
  summary: 'Display one or many objects',
  usage,
  options,
  async run(ctx) {
    if (ctx.positionals.length === 0) {
      throw new UsageError('you must specify the type of resource to get: overlayconfigs (oc), hostleases (hl) or networks (net)')
    }
    const format = outputFormat(str(ctx.values, 'output'))
    const selectorText = str(ctx.values, 'selector')
    const selector = selectorText ? parseSelector(selectorText) : undefined
    const refs = objectRefs(ctx.positionals)
    if (refs.length && selector) throw new UsageError('name cannot be provided when a selector is specified')
    const kinds = refs.length ? unique(refs.map((r) => r.info)) : [resolveKind(ctx.positionals[0]!)]
    const store = ctx.store()
    if (bool(ctx.values, 'watch')) {
      if (kinds.length > 1) throw new UsageError('you may only specify a single resource type when watching')
      return watch(ctx, store, kinds[0]!, refs.map((r) => r.name), selector, format)
    }
    return refs.length ? getNamed(ctx, store, refs, format) : getAll(ctx, store, kinds[0]!, selector, format)
  },
}

function unique(infos: KindInfo[]): KindInfo[] {
  return [...new Set(infos)]
}

async function getAll(ctx: Context, store: Store, info: KindInfo, selector: LabelSelector | undefined, format: OutputFormat): Promise<number> {
  const { items, invalid } = await store.list(info.kind, selector)
  // kubectl prints an empty List for yaml/json, and says so on stderr otherwise
  if (items.length === 0 && (format === 'table' || format === 'wide' || format === 'name')) ctx.err('No resources found.')
  else ctx.out(printObjects(info, items, format, { single: false, now: ctx.now() }))
  // garbage written into etcd by hand is named, and does not stop the good objects from printing
  for (const i of invalid) ctx.err(invalidWarning(i))
  return 0
}

async function getNamed(ctx: Context, store: Store, refs: ObjectRef[], format: OutputFormat): Promise<number> {
  const found: AnyResource[] = []
  const errors: string[] = []
  for (const ref of refs) {
    try {
      found.push(await store.get(ref.info.kind, ref.name))
    } catch (err) {
      if (err instanceof NotFoundError && bool(ctx.values, 'ignore-not-found')) continue
      if (!(err instanceof NotFoundError) && !(err instanceof InvalidStoredObjectError)) throw err
      errors.push(formatError(err))
    }
  }
  const single = refs.length === 1
  if (format === 'table' || format === 'wide') {
    // one table per kind, as kubectl does when asked for several kinds
    const tables = unique(refs.map((r) => r.info))
      .map((info) => printObjects(info, found.filter((o) => o.kind === info.kind), format, { single, now: ctx.now() }))
      .filter(Boolean)
    ctx.out(tables.join('\n'))
  } else if (found.length) ctx.out(printObjects(refs[0]!.info, found, format, { single, now: ctx.now() }))
  for (const e of errors) ctx.err(e)
  return errors.length ? 1 : 0
}

/**
 * The current state, then one entry per change. Table rows keep the column
 * widths of the first listing (widening when a value needs it), so the stream
 * stays readable.
 */
async function watch(ctx: Context, store: Store, info: KindInfo, names: string[], selector: LabelSelector | undefined, format: OutputFormat): Promise<number> {
  // the watch itself retries quietly while etcd is away; a user asking now wants to hear it is
  for (const name of names) await store.get(info.kind, name)
  if (!names.length) await store.list(info.kind)
  const warned = new Set<string>()

  const wanted = (o: AnyResource) => (names.length ? names.includes(o.metadata.name) : !selector || selector(o.metadata.labels))
  const wide = format === 'wide'
  let widths: number[] | undefined
  const printRows = (objs: AnyResource[], withHeader: boolean) => {
    const rows = objs.map((o) => tableRow(o, wide, ctx.now()))
    const all = withHeader ? [tableHeader(info, wide), ...rows] : rows
    widths = columnWidths([...(widths ? [widths.map((w) => ' '.repeat(w))] : []), ...all])
    ctx.out(all.map((r) => formatRow(r, widths!) + '\n').join(''))
  }
  const print = (objs: AnyResource[]) => {
    if (objs.length === 0) return
    if (format === 'table' || format === 'wide') printRows(objs, widths === undefined)
    else if (format === 'name') ctx.out(objs.map((o) => nameOf(o) + '\n').join(''))
    else if (format === 'json') ctx.out(objs.map(toJson).join(''))
    else ctx.out(objs.map((o) => '---\n' + toYaml(o)).join(''))
  }

  let initial: AnyResource[] | undefined = []
  // runs until the process is interrupted; weftctl.ts closes the store on the way out
  return new Promise<number>((_, reject) => {
    store.watch(info.kind).subscribe({
      next: (ev) => {
        if (ev.type === 'INVALID') {
          // once per key gone bad (or with a new reason); the stream goes on with the rest
          if (!ev.invalid || (names.length && !names.includes(ev.name))) return
          const line = invalidWarning(ev.invalid)
          if (!warned.has(line)) ctx.err(line)
          warned.add(line)
          return
        }
        if (ev.type === 'SYNCED') {
          if (initial === undefined) return // a relist after compaction: its changes came as events
          if (initial.length === 0 && !names.length) ctx.err('No resources found.')
          print(initial)
          initial = undefined
          return
        }
        if (!wanted(ev.object)) return
        if (initial) initial.push(ev.object)
        else print([ev.object])
      },
      error: reject,
    })
  })
}
