// `weftctl diff`: what `apply` would change, as a unified diff per object of
// what a user owns (labels, annotations, spec; server fields and status left
// out) between the live object and the input after defaulting.
// Exit codes as kubectl's: 0 no difference, 1 differences, 2 error.
import { stringify } from 'yaml'
import type { AnyResource } from '../crds/kinds.js'
import { describeInvalid, InvalidStoredObjectError, NotFoundError } from '../store/index.js'
import { bool, list, type OptionSpec } from './args.js'
import type { Command } from './context.js'
import { comparable, desiredObjects } from './desired.js'
import { formatError, UsageError } from './errors.js'
import { inApplyOrder, readManifests } from './manifests.js'
import { nameOf } from './printers.js'
import { unifiedDiff } from './unidiff.js'

const options: OptionSpec = {
  filename: { type: 'string', short: 'f', multiple: true },
  recursive: { type: 'boolean', short: 'R' },
}

const usage = `Diff the live objects against what apply would make of the given files.

Exit status: 0 no differences, 1 differences found, 2 an error (invalid input included).

Examples:
  weftctl diff -f overlay.yaml
  weftctl diff -R -f manifests/

Usage:
  weftctl diff -f FILE|DIR|- [-R]

Options:
  -f, --filename=[]   file, directory or - (stdin); may be repeated
  -R, --recursive     process directories recursively`

export const diffCommand: Command = {
  name: 'diff',
  summary: 'Diff live objects against would-be applied ones',
  usage,
  options,
  async run(ctx) {
    // every failure of diff is exit 2, so 1 can only mean "differs"
    try {
      if (ctx.positionals.length) throw new UsageError(`Unexpected args: [${ctx.positionals.join(' ')}]`)
      const manifests = await readManifests(list(ctx.values, 'filename'), { recursive: bool(ctx.values, 'recursive'), stdin: ctx.stdin })
      const { objects, errors } = desiredObjects(manifests)
      if (errors.length) {
        for (const e of errors) ctx.err(e)
        return 2
      }
      const store = ctx.store()
      let differs = false
      for (const obj of inApplyOrder(objects)) {
        const live = await store.get(obj.kind, obj.metadata.name).catch((err: unknown) => {
          if (err instanceof NotFoundError) return undefined
          if (err instanceof InvalidStoredObjectError) {
            // apply would replace the garbage: diff against nothing, and say why
            ctx.err(`Warning: ${describeInvalid(err.invalid)}; diffed as absent`)
            return undefined
          }
          throw err
        })
        const text = objectDiff(live, obj)
        if (text) {
          ctx.out(text)
          differs = true
        }
      }
      return differs ? 1 : 0
    } catch (err) {
      ctx.err(formatError(err))
      return 2
    }
  },
}

/** The diff for one object ('' when equal); a missing live object diffs against nothing, as `diff -N`. */
export function objectDiff(live: AnyResource | undefined, desired: AnyResource): string {
  const label = nameOf(desired)
  const oldLabel = live ? `live/${label}` : '/dev/null'
  const want = comparable(desired)
  const text = unifiedDiff(live ? asYaml(inKeyOrderOf(comparable(live), want)) : '', asYaml(want), { oldLabel, newLabel: `merged/${label}` })
  return text ? `diff -u -N live/${label} merged/${label}\n${text}` : ''
}

function asYaml(obj: unknown): string {
  return stringify(obj, { lineWidth: 0, indentSeq: false })
}

/** `value` with its keys in the order `model` has them (the rest after): reordered labels are no difference. */
export function inKeyOrderOf(value: unknown, model: unknown): unknown {
  if (!isMap(value) || !isMap(model)) return value
  const keys = [...Object.keys(model).filter((k) => k in value), ...Object.keys(value).filter((k) => !(k in model))]
  return Object.fromEntries(keys.map((k) => [k, inKeyOrderOf(value[k], model[k])]))
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
