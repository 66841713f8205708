// Command-line parsing: the connection flags every command takes (anywhere on
// the line, as kubectl's global flags), each command's own flags, and the
// ways kubectl users name objects (`hl h1`, `hostlease/h1`, `HostLeases h1`).
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { lookupKind, type KindInfo } from '../crds/kinds.js'
import { tryParseDuration } from '../crds/duration.js'
import { connectionFromEnv, type ConnectionOptions } from '../store/index.js'
import { UsageError } from './errors.js'

export type OptionSpec = NonNullable<ParseArgsConfig['options']>
export type FlagValues = Record<string, string | boolean | string[] | undefined>

export const GLOBAL_OPTIONS: OptionSpec = {
  endpoints: { type: 'string' },
  prefix: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'request-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

export const GLOBAL_USAGE = `Global flags (anywhere on the line):
      --endpoints=URLS         etcd endpoints, comma-separated (env WEFT_ETCD_ENDPOINTS; default http://127.0.0.1:2379)
      --prefix=PATH            key prefix of weft's objects (env WEFT_PREFIX; default /weft)
      --cacert=FILE            CA bundle for etcd TLS (env WEFT_CACERT)
      --cert=FILE --key=FILE   client certificate and key for etcd TLS (env WEFT_CERT, WEFT_KEY)
      --request-timeout=5s     how long one etcd call may take before weftctl gives up
  -h, --help                   help for the command`

export interface Parsed {
  values: FlagValues
  positionals: string[]
}

// kubectl accepts `--dry-run` bare and `--dry-run=client`; parseArgs wants one
// or the other, so the bare form is given its value before parsing.
const BARE_TO_VALUE: Record<string, string> = { '--dry-run': '--dry-run=client' }

export function parseCommandLine(argv: readonly string[], options: OptionSpec): Parsed {
  const args = argv.map((a) => BARE_TO_VALUE[a] ?? a)
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(describeParseError(err))
  }
  const values = { ...parsed.values } as FlagValues
  // `-o=json` reaches us as "=json": kubectl users type it, so honour it
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string' && v.startsWith('=')) values[k] = v.slice(1)
  return { values, positionals: parsed.positionals }
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string }
  const m = /Unknown option '([^']+)'/.exec(e.message ?? '')
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && m) return `unknown flag: ${m[1]}`
  const missing = /Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(e.message ?? '')
  if (missing) return `flag needs an argument: ${missing[1]}`
  return (e.message ?? String(err)).replace(/\. To specify a positional argument.*$/, '')
}

export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

export function list(values: FlagValues, name: string): string[] {
  const v = values[name]
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
}

export function bool(values: FlagValues, name: string): boolean {
  return values[name] === true
}

/** Go-style duration flag (`30s`, `1m`), as kubectl's --timeout. */
export function durationFlag(values: FlagValues, name: string, fallbackMs: number): number {
  const v = str(values, name)
  if (v === undefined) return fallbackMs
  // kubectl takes a bare number of seconds too
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : tryParseDuration(v)
  if (ms === undefined) throw new UsageError(`invalid argument "${v}" for "--${name}" flag: time: invalid duration "${v}"`)
  return ms
}

export function connectionOptions(values: FlagValues, env: NodeJS.ProcessEnv = process.env): ConnectionOptions {
  const opts = connectionFromEnv(
    {
      endpoints: str(values, 'endpoints'),
      prefix: str(values, 'prefix'),
      cacert: str(values, 'cacert'),
      cert: str(values, 'cert'),
      key: str(values, 'key'),
    },
    env,
  )
  if (opts.endpoints.length === 0) throw new UsageError('--endpoints names no etcd endpoint')
  return { ...opts, timeoutMs: durationFlag(values, 'request-timeout', 5000) || 5000 }
}

export function resolveKind(typed: string): KindInfo {
  const info = lookupKind(typed)
  if (!info) throw new UsageError(`the server doesn't have a resource type "${typed}"`)
  return info
}

export interface ObjectRef {
  info: KindInfo
  name: string
}

/**
 * Objects named on the command line, kubectl's two spellings:
 * `KIND NAME [NAME...]` or `KIND/NAME [KIND/NAME...]`.
 */
export function objectRefs(positionals: readonly string[]): ObjectRef[] {
  if (positionals.length === 0) return []
  if (positionals[0]!.includes('/')) {
    return positionals.map((p) => {
      const slash = p.indexOf('/')
      if (slash < 0) throw new UsageError(`there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'weftctl get resource/<resource_name>' instead of 'weftctl get resource resource/<resource_name>')`)
      const name = p.slice(slash + 1)
      if (!name) throw new UsageError(`arguments in resource/name form must have a single resource and name`)
      return { info: resolveKind(p.slice(0, slash)), name }
    })
  }
  const info = resolveKind(positionals[0]!)
  return positionals.slice(1).map((name) => {
    if (name.includes('/')) throw new UsageError(`there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'weftctl get resource/<resource_name>' instead of 'weftctl get resource resource/<resource_name>')`)
    return { info, name }
  })
}
