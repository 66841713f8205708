// Docker Engine API adapter (dockerode). Returns plain data and throws typed
// errors a reconciler can branch on: the daemon is down (retry later), the
// object is gone (nothing to do / recreate), or the daemon refused because of
// the state it is in (name taken, address in use, endpoints still attached).
import type Docker from 'dockerode'
import { stat } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Observable, debounceTime } from 'rxjs'
import { Links } from './links.js'

/** Docker events that may change what weft's reconcilers see (container and network life, daemon reload) */
const DOCKER_EVENTS = ['create', 'start', 'rename', 'destroy', 'connect', 'disconnect', 'remove', 'reload'] as const
const EVENTS_RECONNECT_MS = 1000
const EVENTS_RECONNECT_MAX_MS = 30_000
const EVENTS_DEBOUNCE_MS = 100

/** Label on every Docker network weft creates; weft touches no network without it. */
export const MANAGED_LABEL = 'dev.weft.managed'
export const MTU_OPTION = 'com.docker.network.driver.mtu'
const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name'

export class DockerError extends Error {
  override name = 'DockerError'
  constructor(
    message: string,
    /** HTTP status from the daemon, when it answered */
    readonly statusCode?: number,
  ) {
    super(message)
  }
}

/** The daemon did not answer (not running, socket missing, timed out). */
export class DaemonUnavailable extends DockerError {
  override name = 'DaemonUnavailable'
}

export class NotFound extends DockerError {
  override name = 'NotFound'
}

/** 409, or 403: the daemon refuses in its current state (exists, in use, predefined network). */
export class Conflict extends DockerError {
  override name = 'Conflict'
}

export interface DefaultBridge {
  /** the Linux bridge, normally docker0 */
  name: string
  subnet?: string
  gateway?: string
  /** dockerd runs with --ipv6 */
  enableIPv6: boolean
  /** --fixed-cidr-v6, as the bridge network's IPAM reports it (docker0 holds its ::1) */
  ipv6Subnet?: string
  /** the MTU dockerd was configured with (--mtu), from the bridge network's driver option */
  mtu: number | null
  /** the bridge link's MTU; the kernel lowers it to its ports', so it matches only once containers attach */
  linkMtu: number | null
}

export interface NetworkSpec {
  name: string
  driver: string
  subnet?: string
  gateway?: string
  ipRange?: string
  /** docker network create --ipv6 with ipv6Subnet (and ipv6Gateway) */
  enableIPv6?: boolean
  ipv6Subnet?: string
  ipv6Gateway?: string
  options?: Record<string, string>
  internal?: boolean
  /** weft's managed label is always added */
  labels?: Record<string, string>
}

export interface NetworkInfo {
  id: string
  name: string
  driver: string
  subnet?: string
  gateway?: string
  ipRange?: string
  /** `docker network create --ipv6`; absent reads as false */
  enableIPv6?: boolean
  ipv6Subnet?: string
  ipv6Gateway?: string
  options: Record<string, string>
  internal: boolean
  labels: Record<string, string>
}

export interface AttachedContainer {
  id: string
  name: string
  /** without prefix length */
  ipv4Address?: string
  ipv6Address?: string
  macAddress?: string
}

export interface NetworkDetail extends NetworkInfo {
  containers: AttachedContainer[]
}

export interface DockerHostOptions {
  /** Engine API address: unix:///var/run/docker.sock, tcp://host:2375, http(s)://host:port */
  url: string
  /** namespace the daemon's links live in (tests); production: the host's own */
  netns?: string
  /** per-request timeout; default 30 s */
  timeoutMs?: number
}

function connectionOptions(url: string, timeoutMs: number): Docker.DockerOptions {
  if (url.startsWith('unix://')) return { socketPath: url.slice('unix://'.length), timeout: timeoutMs }
  if (url.startsWith('/')) return { socketPath: url, timeout: timeoutMs }
  const parsed = new URL(url.replace(/^tcp:/, 'http:'))
  const protocol = parsed.protocol === 'https:' ? 'https' : 'http'
  return { host: parsed.hostname, port: parsed.port || (protocol === 'https' ? 2376 : 2375), protocol, timeout: timeoutMs }
}

function typed(err: unknown, what: string): DockerError {
  const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string }
  const message = `${what}: ${e.json?.message ?? e.message ?? String(err)}`
  if (e.statusCode === undefined) return new DaemonUnavailable(message)
  if (e.statusCode === 404) return new NotFound(message, 404)
  if (e.statusCode === 409 || e.statusCode === 403) return new Conflict(message, e.statusCode)
  return new DockerError(message, e.statusCode)
}

function toInfo(raw: Docker.NetworkInspectInfo): NetworkInfo {
  const ipam = raw.IPAM?.Config?.find((c) => c.Subnet && !c.Subnet.includes(':'))
  const ipam6 = raw.IPAM?.Config?.find((c) => c.Subnet?.includes(':'))
  const info: NetworkInfo = {
    id: raw.Id,
    name: raw.Name,
    driver: raw.Driver,
    enableIPv6: raw.EnableIPv6 === true,
    options: raw.Options ?? {},
    internal: raw.Internal,
    labels: raw.Labels ?? {},
  }
  if (ipam?.Subnet) info.subnet = ipam.Subnet
  if (ipam?.Gateway) info.gateway = ipam.Gateway
  if (ipam?.IPRange) info.ipRange = ipam.IPRange
  if (ipam6?.Subnet) info.ipv6Subnet = ipam6.Subnet
  if (ipam6?.Gateway) info.ipv6Gateway = ipam6.Gateway
  return info
}

export class DockerHost {
  private readonly options: Docker.DockerOptions
  private client: Promise<Docker> | undefined
  private readonly links: Links

  constructor(opts: DockerHostOptions) {
    this.options = connectionOptions(opts.url, opts.timeoutMs ?? 30_000)
    this.links = new Links(opts.netns ? { netns: opts.netns } : {})
  }

  /**
   * dockerode, loaded on first use (it costs an idle agent ~27 MB), and not
   * at all while the daemon's unix socket does not exist: a host without
   * Docker answers DaemonUnavailable from one stat().
   */
  private async docker(): Promise<Docker> {
    const { socketPath } = this.options
    if (socketPath && typeof socketPath === 'string') await stat(socketPath)
    this.client ??= import('dockerode').then(({ default: Docker }) => new Docker(this.options))
    return this.client
  }

  private async call<T>(what: string, fn: (docker: Docker) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.docker())
    } catch (err) {
      throw typed(err, what)
    }
  }

  /**
   * Something a reconciler of Docker state may care about happened: a
   * container was created, started, renamed or destroyed, a network created,
   * removed, connected or disconnected, the daemon reloaded; also once each
   * time the event stream (re)connects, since anything may have changed while
   * it was away (dockerd restarting). Bursts (a container start is several
   * events) come out as one. Reconnects while subscribed: at once after a
   * restart, then ever less often (up to 30 s) while the daemon stays away.
   */
  changes(): Observable<void> {
    return new Observable<void>((sub) => {
      const abort = new AbortController()
      const loop = async () => {
        let wait = EVENTS_RECONNECT_MS
        while (!abort.signal.aborted) {
          try {
            const { socketPath } = this.options
            if (socketPath && typeof socketPath === 'string') await stat(socketPath)
            const { default: Docker } = await import('dockerode')
            // no request timeout: the stream is quiet for as long as nothing happens
            const stream = (await new Docker({ ...this.options, timeout: undefined }).getEvents({
              filters: { type: ['container', 'network', 'daemon'], event: [...DOCKER_EVENTS] },
              abortSignal: abort.signal,
            })) as NodeJS.ReadableStream
            wait = EVENTS_RECONNECT_MS
            sub.next()
            await new Promise<void>((resolve) => {
              stream.on('data', () => sub.next())
              stream.on('end', resolve)
              stream.on('close', resolve)
              stream.on('error', resolve)
            })
          } catch {
            // the daemon is away: look again, ever less often while it stays away (a host without Docker)
            wait = Math.min(wait * 2, EVENTS_RECONNECT_MAX_MS)
          }
          await sleep(wait, undefined, { signal: abort.signal }).catch(() => undefined)
        }
      }
      void loop()
      return () => abort.abort()
    }).pipe(debounceTime(EVENTS_DEBOUNCE_MS))
  }

  async ping(): Promise<void> {
    await this.call('ping', (d) => d.ping())
  }

  /** Resolve once the daemon answers; DaemonUnavailable after timeoutMs. */
  async waitReady(timeoutMs: number, intervalMs = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        return await this.ping()
      } catch (err) {
        if (!(err instanceof DaemonUnavailable) || Date.now() + intervalMs > deadline) throw err
      }
      await sleep(intervalMs)
    }
  }

  /** docker0 as dockerd runs it: what --bip and --mtu took effect. */
  async defaultBridge(): Promise<DefaultBridge> {
    const raw = await this.call('inspect network bridge', (d) => d.getNetwork('bridge').inspect() as Promise<Docker.NetworkInspectInfo>)
    const info = toInfo(raw)
    const name = info.options[BRIDGE_NAME_OPTION] ?? 'docker0'
    const mtu = info.options[MTU_OPTION]
    const bridge: DefaultBridge = { name, mtu: mtu ? Number(mtu) : null, linkMtu: (await this.links.getLink(name))?.mtu ?? null, enableIPv6: info.enableIPv6 === true }
    if (info.subnet) bridge.subnet = info.subnet
    if (info.gateway) bridge.gateway = info.gateway
    if (info.ipv6Subnet) bridge.ipv6Subnet = info.ipv6Subnet
    return bridge
  }

  /** Networks carrying all the given labels (key=value, or key alone for any value). */
  async listNetworks(labels: Record<string, string | true> = {}): Promise<NetworkInfo[]> {
    const label = Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`))
    const raw = await this.call('list networks', (d) => d.listNetworks(label.length > 0 ? { filters: { label } } : {}))
    return raw.map(toInfo)
  }

  /** Create a network labelled as weft's; returns its id. Conflict when the name is taken. */
  async createNetwork(spec: NetworkSpec): Promise<string> {
    const config: Docker.IPAM['Config'] = []
    if (spec.subnet) {
      const entry: { Subnet: string; Gateway?: string; IPRange?: string } = { Subnet: spec.subnet }
      if (spec.gateway) entry.Gateway = spec.gateway
      if (spec.ipRange) entry.IPRange = spec.ipRange
      config.push(entry)
    }
    if (spec.ipv6Subnet) config.push({ Subnet: spec.ipv6Subnet, ...(spec.ipv6Gateway ? { Gateway: spec.ipv6Gateway } : {}) })
    const network = await this.call(`create network ${spec.name}`, (d) =>
      d.createNetwork({
        Name: spec.name,
        // without it dockerd 20.10 happily creates a second network of the same name
        CheckDuplicate: true,
        Driver: spec.driver,
        IPAM: { Driver: 'default', Config: config },
        Options: spec.options ?? {},
        Internal: spec.internal ?? false,
        EnableIPv6: spec.enableIPv6 ?? false,
        Labels: { ...spec.labels, [MANAGED_LABEL]: 'true' },
      }),
    )
    return network.id
  }

  async inspectNetwork(idOrName: string): Promise<NetworkDetail> {
    const raw = await this.call(`inspect network ${idOrName}`, (d) => d.getNetwork(idOrName).inspect() as Promise<Docker.NetworkInspectInfo>)
    const containers = Object.entries(raw.Containers ?? {}).map(([id, c]) => {
      const attached: AttachedContainer = { id, name: c.Name }
      if (c.IPv4Address) attached.ipv4Address = c.IPv4Address.split('/')[0]!
      if (c.IPv6Address) attached.ipv6Address = c.IPv6Address.split('/')[0]!
      if (c.MacAddress) attached.macAddress = c.MacAddress
      return attached
    })
    return { ...toInfo(raw), containers }
  }

  /** NotFound when already gone; Conflict while containers are attached. */
  async removeNetwork(idOrName: string): Promise<void> {
    await this.call(`remove network ${idOrName}`, (d) => d.getNetwork(idOrName).remove())
  }

  /** `docker network connect [--ip]`; Conflict when already connected or the address is taken. */
  async connect(network: string, container: string, opts: { ipv4Address?: string; ipv6Address?: string } = {}): Promise<void> {
    const endpoint: Docker.EndpointSettings = {}
    if (opts.ipv4Address || opts.ipv6Address) {
      endpoint.IPAMConfig = { ...(opts.ipv4Address ? { IPv4Address: opts.ipv4Address } : {}), ...(opts.ipv6Address ? { IPv6Address: opts.ipv6Address } : {}) }
    }
    await this.call(`connect ${container} to ${network}`, (d) => d.getNetwork(network).connect({ Container: container, EndpointConfig: endpoint }))
  }

  async disconnect(network: string, container: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.call(`disconnect ${container} from ${network}`, (d) => d.getNetwork(network).disconnect({ Container: container, Force: opts.force ?? false }))
  }
}
