// What a weftctl user sees when something fails: one line, shaped like
// kubectl's (`Error from server (NotFound): ...` for the store's answers,
// `error: ...` for everything else), never a stack trace.
import { InvalidError } from '../crds/errors.js'
import { KINDS, type KindName } from '../crds/kinds.js'
import { AlreadyExistsError, ConflictError, NotFoundError, SelectorError, StoreError } from '../store/index.js'

/** A mistake on the command line or in the input: reported, exit 1. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** kubectl names resources by their lower-case plural in server errors: `hostleases "x" not found`. */
function plural(kind: string): string {
  return KINDS[kind as KindName]?.plural ?? kind
}

export function formatError(err: unknown): string {
  if (err instanceof NotFoundError) return `Error from server (NotFound): ${plural(err.kind)} "${err.objectName}" not found`
  if (err instanceof AlreadyExistsError) return `Error from server (AlreadyExists): ${plural(err.kind)} "${err.objectName}" already exists`
  if (err instanceof ConflictError) {
    return `Error from server (Conflict): Operation cannot be fulfilled on ${plural(err.kind)} "${err.objectName}": the object has been modified; please apply your changes to the latest version and try again`
  }
  // the store's other errors each say what is wrong in one line: unreachable, TLS (naming the
  // certificate problem), permission denied, compacted, another refusal by etcd
  if (err instanceof StoreError || err instanceof InvalidError || err instanceof SelectorError || err instanceof UsageError) {
    return `error: ${oneLine(err.message)}`
  }
  // anything else is a bug or an environment failure; the message, not the stack, unless asked for
  if (process.env.WEFT_DEBUG && err instanceof Error && err.stack) return `error: ${err.stack}`
  return `error: ${oneLine(err instanceof Error ? err.message : String(err))}`
}

function oneLine(msg: string): string {
  return msg.split('\n')[0]!.trim()
}
