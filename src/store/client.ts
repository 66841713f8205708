// Connection settings shared by weftctl and weftd (DESIGN.md §3), and the
// etcd3 client built from them.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { ChannelCredentials } from '@grpc/grpc-js'
import { ConstantBackoff, handleWhen, retry } from 'cockatiel'
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3'
import { normalizePrefix } from './keys.js'
import { MemberHealth } from './members.js'
import { TlsSettings } from './tls.js'

export interface ConnectionOptions {
  endpoints: string[]
  prefix: string
  cacert?: string
  cert?: string
  key?: string
  /** per-attempt deadline of a unary call; etcd down must surface as an error, not a hang */
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

/** Per-attempt deadline of a unary call: one member's silence costs at most this much. */
export const DEFAULT_CALL_TIMEOUT_MS = 5000

const attemptTimeout = new AsyncLocalStorage<number>()

/**
 * Run `fn` with a per-attempt deadline of its own for the etcd calls it makes
 * (a health probe: a member silent for 1 s is not worth waiting for when the
 * next may answer at once). A deadline set with `.options()` could not do
 * this: it is absolute, so every retry would share what the first attempt left.
 */
export function withAttemptTimeout<R>(ms: number, fn: () => Promise<R>): Promise<R> {
  return attemptTimeout.run(ms, fn)
}

export interface EtcdConnection {
  etcd: Etcd3
  /** set when the connection uses TLS: it knows the last certificate failure per member */
  tls?: TlsSettings
  members: MemberHealth
}

/**
 * The etcd3 client, with fault handling for a cluster whose members may die
 * or hang at any time (DESIGN.md §5):
 *  - a failed member is passed over for a while unless every member failed
 *    lately (members.ts), so losing one costs nothing after its first failure,
 *    and a whole cluster coming back is used at once;
 *  - a unary call that fails on the transport is retried on the next member,
 *    each member at most once per call. Retrying a write whose answer was lost
 *    cannot write twice: every weft write is a transaction comparing a
 *    revision, so a repeat finds the compare false and reports a conflict;
 *  - grpc reconnects within a second of a member answering again (its
 *    default backoff grows to 2 minutes), and pings an open connection so a
 *    hung member (TCP accepted, nothing answered) is dropped in seconds,
 *    streams included. etcd refuses pings more often than every 5 s.
 */
export function createEtcdConnection(opts: ConnectionOptions): EtcdConnection {
  const members = opts.endpoints.map((e) => e.replace(/^(https?):\/\//, ''))
  const health = new MemberHealth(members)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  const useTls = Boolean(opts.cacert || opts.cert || opts.key) || opts.endpoints.some((e) => e.startsWith('https://'))
  const tls = useTls ? new TlsSettings({ ...(opts.cacert ? { cacert: opts.cacert } : {}), ...(opts.cert ? { cert: opts.cert } : {}), ...(opts.key ? { key: opts.key } : {}) }) : undefined
  const options: IOptions = {
    hosts: members,
    dialTimeout: timeoutMs,
    // unary calls get a deadline (per attempt) so a silent member is an error, not a hang;
    // streams none: watch.ts and keepAliveOnce bound their own waits
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + (attemptTimeout.getStore() ?? timeoutMs) }),
    faultHandling: {
      host: (member) => health.policy(member),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(0, members.length - 1), backoff: new ConstantBackoff(0) }),
    },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.keepalive_time_ms': 6000,
      'grpc.keepalive_timeout_ms': 3000,
    },
  }
  const etcd = new Etcd3(options)
  if (tls) useMemberCredentials(etcd, (member) => tls.credentialsFor(member))
  return { etcd, ...(tls ? { tls } : {}), members: health }
}

export function createEtcdClient(opts: ConnectionOptions): Etcd3 {
  return createEtcdConnection(opts).etcd
}

/**
 * etcd3 builds one grpc TLS credentials object for all members from buffers
 * (`options.credentials`), with no way to pass our own: set each member's
 * before any channel is made (channels are made on first call). Checked, so
 * an etcd3 that changed shape fails loudly here, not with plaintext.
 */
function useMemberCredentials(etcd: Etcd3, credentialsFor: (member: string) => ChannelCredentials): void {
  const hosts = (etcd as unknown as { pool?: { hosts?: unknown } }).pool?.hosts
  const ok = Array.isArray(hosts) && hosts.every((h) => typeof h === 'object' && h !== null && 'channelCredentials' in h && typeof (h as { host?: unknown }).host === 'string')
  if (!ok) throw new Error('etcd3 internals changed: cannot set per-member TLS credentials (src/store/client.ts)')
  for (const h of hosts as { host: string; channelCredentials: ChannelCredentials }[]) h.channelCredentials = credentialsFor(h.host)
}
