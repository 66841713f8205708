// weftd's flags (DESIGN.md §5). Each flag may also come from the environment
// as WEFT_<FLAG> (`--host-name` <-> WEFT_HOST_NAME; the etcd endpoints are
// WEFT_ETCD_ENDPOINTS, as weftctl reads them); a flag wins over the
// environment, the environment over the default. Bad input is a FlagError,
// which weftd prints and exits 2 on, as flag parsers conventionally do.
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { tryParseIPv4 } from '../net/cidr.js'
import { connectionFromEnv, type ConnectionOptions } from '../store/index.js'

export class FlagError extends Error {
  override name = 'FlagError'
}

export interface AgentFlags {
  connection: ConnectionOptions
  overlay: string
  hostName: string
  /** given, or undefined: derived from --iface / the default route */
  publicIP?: string
  iface?: string
  subnetFile: string
  dockerOptsFile: string
  dockerHost: string
  dockerdRestartCommand?: string
  healthz: { host: string; port: number }
  logLevel: LogLevel
  /** the HostLease's labels; undefined when not given (a lease's labels are then left alone) */
  labels?: Record<string, string>
  /** the wireguard backend's private key file (made on first start) */
  wireguardKeyFile: string
}

export const DEFAULT_WIREGUARD_KEY_FILE = '/var/lib/weft/wireguard.key'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

interface FlagInfo {
  env: string
  default?: () => string
  help: string
}

/** The table the parser, the env lookup and --help are all built from. */
export const FLAGS: Record<string, FlagInfo> = {
  endpoints: { env: 'WEFT_ETCD_ENDPOINTS', help: 'etcd endpoints, comma-separated (default http://127.0.0.1:2379)' },
  prefix: { env: 'WEFT_PREFIX', help: 'etcd key prefix (default /weft)' },
  cacert: { env: 'WEFT_CACERT', help: 'CA certificate for etcd TLS' },
  cert: { env: 'WEFT_CERT', help: 'client certificate for etcd TLS' },
  key: { env: 'WEFT_KEY', help: 'client key for etcd TLS' },
  overlay: { env: 'WEFT_OVERLAY', default: () => 'default', help: 'name of the OverlayConfig to join' },
  'host-name': { env: 'WEFT_HOST_NAME', default: () => hostname().toLowerCase(), help: "this host's name, the name of its HostLease (default: hostname)" },
  'public-ip': { env: 'WEFT_PUBLIC_IP', help: 'underlay address peers reach this host at (default: first IPv4 of --iface)' },
  iface: { env: 'WEFT_IFACE', help: 'underlay interface (default: the interface of the default route)' },
  'subnet-file': { env: 'WEFT_SUBNET_FILE', default: () => '/run/weft/subnet.env', help: 'where to write the subnet.env file' },
  'docker-opts-file': { env: 'WEFT_DOCKER_OPTS_FILE', default: () => '/run/weft/docker', help: 'where to write the docker options file' },
  'docker-host': { env: 'WEFT_DOCKER_HOST', default: () => 'unix:///var/run/docker.sock', help: 'Docker Engine API address' },
  'dockerd-restart-command': { env: 'WEFT_DOCKERD_RESTART_COMMAND', help: 'command that restarts dockerd with new options (default: report the flags instead)' },
  'healthz-addr': { env: 'WEFT_HEALTHZ_ADDR', default: () => '127.0.0.1:9811', help: 'address of /healthz and /metrics' },
  'log-level': { env: 'WEFT_LOG_LEVEL', default: () => 'info', help: `log level: ${LOG_LEVELS.join('|')}` },
  labels: { env: 'WEFT_LABELS', help: "this host's HostLease labels, k=v,k=v" },
  'wireguard-key-file': { env: 'WEFT_WIREGUARD_KEY_FILE', default: () => DEFAULT_WIREGUARD_KEY_FILE, help: 'private key of the wireguard backend, made on first start (mode 0600)' },
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/

export type ParseResult = { help: true } | { version: true } | ({ help?: false; version?: false } & AgentFlags)

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }))
  } catch (err) {
    throw new FlagError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''))
  }
  if (values.help) return { help: true }
  if (values.version) return { version: true }

  const raw = (flag: string): string | undefined => {
    const v = (values[flag] as string | undefined) ?? env[FLAGS[flag]!.env] ?? FLAGS[flag]!.default?.()
    return v === '' && FLAGS[flag]!.default === undefined ? undefined : v
  }
  const need = (flag: string): string => {
    const v = raw(flag)
    if (!v) throw new FlagError(`--${flag} must not be empty`)
    return v
  }

  const connection = connectionFromEnv(
    {
      endpoints: (values.endpoints as string | undefined) ?? env.WEFT_ENDPOINTS,
      prefix: values.prefix as string | undefined,
      cacert: values.cacert as string | undefined,
      cert: values.cert as string | undefined,
      key: values.key as string | undefined,
    },
    env,
  )
  if (connection.endpoints.length === 0) throw new FlagError('--endpoints must name at least one etcd endpoint')
  for (const e of connection.endpoints) {
    if (!/^(https?:\/\/)?[^\s/:]+:\d+$/.test(e)) throw new FlagError(`--endpoints: invalid endpoint ${JSON.stringify(e)}: expected e.g. http://127.0.0.1:2379`)
  }

  const overlay = need('overlay')
  if (!NAME.test(overlay)) throw new FlagError(`--overlay: invalid name ${JSON.stringify(overlay)}: must be lower-case letters, digits, '-' and '.'`)
  const hostName = need('host-name')
  if (!NAME.test(hostName) || hostName.length > 63) {
    throw new FlagError(`--host-name: invalid name ${JSON.stringify(hostName)}: must be 1-63 lower-case letters, digits, '-' and '.' (it names the HostLease)`)
  }
  const publicIP = raw('public-ip')
  if (publicIP !== undefined && tryParseIPv4(publicIP) === undefined) throw new FlagError(`--public-ip: invalid IPv4 address ${JSON.stringify(publicIP)}`)
  const iface = raw('iface')
  if (iface !== undefined && !/^[^\s/]{1,15}$/.test(iface)) throw new FlagError(`--iface: invalid interface name ${JSON.stringify(iface)}`)

  const logLevel = need('log-level')
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new FlagError(`--log-level: invalid level ${JSON.stringify(logLevel)}: one of ${LOG_LEVELS.join(', ')}`)

  const wireguardKeyFile = need('wireguard-key-file')
  if (!wireguardKeyFile.startsWith('/')) throw new FlagError(`--wireguard-key-file: ${JSON.stringify(wireguardKeyFile)} must be an absolute path`)

  const labelsText = raw('labels')
  return {
    connection,
    overlay,
    hostName,
    ...(publicIP !== undefined ? { publicIP } : {}),
    ...(iface !== undefined ? { iface } : {}),
    subnetFile: need('subnet-file'),
    dockerOptsFile: need('docker-opts-file'),
    dockerHost: parseDockerHost(need('docker-host')),
    ...(raw('dockerd-restart-command') ? { dockerdRestartCommand: raw('dockerd-restart-command')! } : {}),
    healthz: parseHostPort(need('healthz-addr')),
    logLevel: logLevel as LogLevel,
    ...(labelsText !== undefined ? { labels: parseLabels(labelsText) } : {}),
    wireguardKeyFile,
  }
}

/**
 * The local dockerd's Engine API: `unix://PATH` (or a bare absolute path),
 * `tcp://`, `http://` or `https://HOST:PORT`. ssh:// is refused: the agent
 * runs on the host it converges, and weft ships without the ssh client.
 */
export function parseDockerHost(s: string): string {
  if (/^unix:\/\/\/./.test(s) || s.startsWith('/')) return s
  const m = /^(tcp|https?):\/\/([^\s/]+)\/?$/.exec(s)
  if (m && URL.canParse(`http://${m[2]}`)) return s
  throw new FlagError(`--docker-host: invalid address ${JSON.stringify(s)}: expected unix:///var/run/docker.sock or tcp://HOST:PORT`)
}

/** `host:port`; `:9811` listens on every address. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[2]) : NaN
  if (!m || port > 65535) throw new FlagError(`--healthz-addr: invalid address ${JSON.stringify(s)}: expected host:port, e.g. 127.0.0.1:9811`)
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port }
}

/** `k=v,k2=v2` with Kubernetes' rules for keys and values. */
export function parseLabels(s: string): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=')
    const k = eq < 0 ? part : part.slice(0, eq)
    const v = eq < 0 ? undefined : part.slice(eq + 1)
    if (v === undefined) throw new FlagError(`--labels: ${JSON.stringify(part)} is not key=value`)
    if (!LABEL_KEY.test(k) || k.length > 253) throw new FlagError(`--labels: invalid key ${JSON.stringify(k)}`)
    if (!LABEL_VALUE.test(v) || v.length > 63) throw new FlagError(`--labels: invalid value ${JSON.stringify(v)} for ${k}`)
    labels[k] = v
  }
  return labels
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([f, i]) => `  --${f.padEnd(26)} ${i.help}${i.default && !i.help.includes('default') ? ` (default ${i.default()})` : ''}  [$${i.env}]`)
  return ['Usage: weftd [flags]', '', 'The weft agent: holds this host\'s lease and converges its overlay networking.', '', 'Flags:', ...lines, '  --help                     this help', ''].join('\n')
}
