// Connection settings shared by weftctl and weftd (DESIGN.md §3), and the
// etcd3 client built from them.
import { readFileSync } from 'node:fs'
import { noop } from 'cockatiel'
import { Etcd3, type IOptions } from 'etcd3'
import { normalizePrefix } from './keys.js'

export interface ConnectionOptions {
  endpoints: string[]
  prefix: string
  cacert?: string
  cert?: string
  key?: string
  /** per-call deadline; etcd down must surface as an error, not a hang */
  timeoutMs?: number
}

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379'
export const DEFAULT_PREFIX = '/weft'

/** Flag value, else `WEFT_*` environment variable, else the contract's default. */
export function connectionFromEnv(
  flags: { endpoints?: string; prefix?: string; cacert?: string; cert?: string; key?: string },
  env: NodeJS.ProcessEnv = process.env,
): ConnectionOptions {
  const pick = (flag: string | undefined, name: string) => flag ?? env[`WEFT_${name}`] ?? undefined
  const endpoints = (pick(flags.endpoints, 'ETCD_ENDPOINTS') ?? DEFAULT_ENDPOINTS)
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
  const opts: ConnectionOptions = { endpoints, prefix: normalizePrefix(pick(flags.prefix, 'PREFIX') ?? DEFAULT_PREFIX) }
  const cacert = pick(flags.cacert, 'CACERT')
  const cert = pick(flags.cert, 'CERT')
  const key = pick(flags.key, 'KEY')
  if (cacert) opts.cacert = cacert
  if (cert) opts.cert = cert
  if (key) opts.key = key
  return opts
}

export function createEtcdClient(opts: ConnectionOptions): Etcd3 {
  const options: IOptions = {
    hosts: opts.endpoints.map((e) => e.replace(/^(https?):\/\//, '')),
    dialTimeout: opts.timeoutMs ?? 5000,
    // unary calls get a deadline so a dead etcd is an error, not a hang; streams (watch, keepalive) none
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + (opts.timeoutMs ?? 5000) }),
    // no client-side circuit breaker or retries: weftctl reports at once, and weftd's
    // work queue already retries with backoff (a breaker would delay recovery after etcd restarts)
    faultHandling: { host: () => noop, global: noop },
  }
  if (opts.cacert) {
    options.credentials = {
      rootCertificate: readFileSync(opts.cacert),
      ...(opts.key ? { privateKey: readFileSync(opts.key) } : {}),
      ...(opts.cert ? { certChain: readFileSync(opts.cert) } : {}),
    }
  }
  return new Etcd3(options)
}
