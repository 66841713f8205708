// iproute2 adapter for the data path: links, addresses, routes, neighbours
// and bridge FDB entries, read with `ip -json` and returned as plain data.
// Reads are of one address family (IPv4 unless asked for IPv6); writes take
// the family from the addresses they are given.
// Mutations are idempotent where the kernel allows (replace, not add), and
// deleting something already gone reports false instead of throwing, so a
// reconciler can converge without first checking what exists.
import { CommandError, runnerFor, type Runner } from './exec.js'

export interface Link {
  name: string
  index: number
  mtu: number
  /** administratively up (IFF_UP) */
  up: boolean
  operState: string
  /** MAC address; absent on TUN devices */
  address?: string
  /** bridge or bond this link is enslaved to */
  master?: string
  /** 'veth', 'bridge', 'vxlan', 'tun', ... ; absent for plain physical links */
  kind?: string
  vxlan?: VxlanInfo
}

export interface VxlanInfo {
  vni: number
  local?: string
  /** underlay device */
  dev?: string
  port: number
  learning: boolean
}

export interface Address {
  /** CIDR, e.g. 10.2.45.0/32 */
  cidr: string
  family: 'inet' | 'inet6'
  scope: string
  /** IPv6: duplicate address detection is still running, or failed; the address is not usable (yet) */
  tentative?: boolean
}

export interface Route {
  /** CIDR, host address, or 'default' */
  dst: string
  gateway?: string
  dev?: string
  /** gateway reachable on dev without a covering connected route (host-gw, vxlan) */
  onlink?: boolean
  src?: string
  metric?: number
  /** 'main' when absent */
  table?: string
  mtu?: number
  protocol?: string
  scope?: string
}

export type Family = 'inet' | 'inet6'

export interface Neighbour {
  ip: string
  mac: string
  dev: string
  /** e.g. ['PERMANENT'] */
  state: string[]
}

export interface FdbEntry {
  mac: string
  dev: string
  /** remote VTEP for VXLAN entries */
  dst?: string
  state?: string
  flags: string[]
}

export interface VxlanSpec {
  name: string
  vni: number
  local: string
  /** underlay device */
  dev: string
  port: number
  /** default false: peers are programmed explicitly, as flannel does */
  learning?: boolean
  mtu?: number
  /** the device's MAC; default a random one (a stable MAC lets a recreated VTEP keep what peers know) */
  address?: string
}

interface RawLink {
  ifindex: number
  ifname: string
  flags: string[]
  mtu: number
  operstate: string
  address?: string
  master?: string
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> }
}

interface RawRoute {
  dst: string
  gateway?: string
  dev?: string
  prefsrc?: string
  metric?: number
  table?: string
  protocol?: string
  scope?: string
  flags?: string[]
  metrics?: { mtu?: number }[]
}

const GONE = /does not exist|Cannot find device|No such process|No such file or directory/
/** what `ip addr del` says of an address the device does not hold (IPv6, IPv4) */
const ADDRESS_GONE = /address not found|Cannot assign requested address/

function toLink(raw: RawLink): Link {
  const link: Link = {
    name: raw.ifname,
    index: raw.ifindex,
    mtu: raw.mtu,
    up: raw.flags.includes('UP'),
    operState: raw.operstate,
  }
  if (raw.address && raw.address !== '') link.address = raw.address
  if (raw.master) link.master = raw.master
  const kind = raw.linkinfo?.info_kind
  if (kind) link.kind = kind
  const data = raw.linkinfo?.info_data
  if (kind === 'vxlan' && data) {
    link.vxlan = { vni: Number(data.id), port: Number(data.port), learning: data.learning === true }
    if (typeof data.local === 'string') link.vxlan.local = data.local
    if (typeof data.link === 'string') link.vxlan.dev = data.link
  }
  return link
}

function routeArgs(route: Route): string[] {
  const args = [route.dst]
  if (route.gateway) args.push('via', route.gateway)
  if (route.dev) args.push('dev', route.dev)
  if (route.onlink) args.push('onlink')
  if (route.src) args.push('src', route.src)
  if (route.metric !== undefined) args.push('metric', String(route.metric))
  if (route.table && route.table !== 'main') args.push('table', route.table)
  if (route.mtu !== undefined) args.push('mtu', String(route.mtu))
  return args
}

export class Links {
  private readonly run: Runner

  constructor(opts: { netns?: string; runner?: Runner } = {}) {
    this.run = opts.runner ?? runnerFor(opts.netns)
  }

  private async json<T>(cmd: 'ip' | 'bridge', args: string[]): Promise<T[]> {
    const out = await this.run(cmd, ['-json', ...args])
    return out.trim() === '' ? [] : (JSON.parse(out) as T[])
  }

  /** Run a deletion; false when the thing was already gone. */
  private async remove(cmd: 'ip' | 'bridge', args: string[], gone = GONE): Promise<boolean> {
    try {
      await this.run(cmd, args)
      return true
    } catch (err) {
      if (err instanceof CommandError && (GONE.test(err.stderr) || gone.test(err.stderr))) return false
      throw err
    }
  }

  async getLink(name: string): Promise<Link | null> {
    try {
      const [raw] = await this.json<RawLink>('ip', ['-details', 'link', 'show', 'dev', name])
      return raw ? toLink(raw) : null
    } catch (err) {
      if (err instanceof CommandError && GONE.test(err.stderr)) return null
      throw err
    }
  }

  async listLinks(): Promise<Link[]> {
    return (await this.json<RawLink>('ip', ['-details', 'link', 'show'])).map(toLink)
  }

  async setUp(name: string): Promise<void> {
    await this.run('ip', ['link', 'set', 'dev', name, 'up'])
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    await this.run('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu)])
  }

  async deleteLink(name: string): Promise<boolean> {
    return this.remove('ip', ['link', 'del', 'dev', name])
  }

  /** Create a VXLAN device; fails if a link of that name exists (compare getLink().vxlan first). */
  async addVxlan(spec: VxlanSpec): Promise<void> {
    const args = ['link', 'add', spec.name]
    if (spec.mtu !== undefined) args.push('mtu', String(spec.mtu))
    if (spec.address !== undefined) args.push('address', spec.address)
    args.push('type', 'vxlan', 'id', String(spec.vni), 'local', spec.local, 'dev', spec.dev, 'dstport', String(spec.port))
    args.push(spec.learning ? 'learning' : 'nolearning')
    await this.run('ip', args)
  }

  async listAddresses(name: string): Promise<Address[]> {
    const [raw] = await this.json<{ addr_info?: { family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; dadfailed?: boolean }[] }>(
      'ip',
      ['addr', 'show', 'dev', name],
    )
    return (raw?.addr_info ?? []).map((a) => ({
      cidr: `${a.local}/${a.prefixlen}`,
      family: a.family as Address['family'],
      scope: a.scope,
      ...(a.tentative || a.dadfailed ? { tentative: true } : {}),
    }))
  }

  /**
   * Add an address, or leave it if present (ip addr replace). `nodad`: an IPv6
   * address usable at once, without duplicate address detection (it is this
   * host's by its lease; DAD would only keep it tentative for a second).
   */
  async addAddress(name: string, cidr: string, opts: { nodad?: boolean } = {}): Promise<void> {
    await this.run('ip', ['addr', 'replace', cidr, 'dev', name, ...(opts.nodad ? ['nodad'] : [])])
  }

  async deleteAddress(name: string, cidr: string): Promise<boolean> {
    return this.remove('ip', ['addr', 'del', cidr, 'dev', name], ADDRESS_GONE)
  }

  /** Every address of the family; IPv6 keeps the link-local ones (the device's own, which IPv6 needs). */
  async flushAddresses(name: string, family: Family = 'inet'): Promise<void> {
    await this.run('ip', ['-family', family, 'addr', 'flush', 'dev', name, ...(family === 'inet6' ? ['scope', 'global'] : [])])
  }

  /** Routes of a family (default IPv4) and table (default main), optionally only those through one device. */
  async listRoutes(filter: { dev?: string; table?: string; family?: Family } = {}): Promise<Route[]> {
    const args = [filter.family === 'inet6' ? '-6' : '-4', 'route', 'show']
    if (filter.table) args.push('table', filter.table)
    if (filter.dev) args.push('dev', filter.dev)
    return (await this.json<RawRoute>('ip', args)).map((raw) => {
      const route: Route = { dst: raw.dst }
      if (raw.gateway) route.gateway = raw.gateway
      // ip omits what the filter already fixed
      const dev = raw.dev ?? filter.dev
      if (dev) route.dev = dev
      if (raw.flags?.includes('onlink')) route.onlink = true
      if (raw.prefsrc) route.src = raw.prefsrc
      if (raw.metric !== undefined) route.metric = raw.metric
      const table = raw.table ?? filter.table
      if (table && table !== 'main') route.table = table
      const mtu = raw.metrics?.find((m) => m.mtu !== undefined)?.mtu
      if (mtu !== undefined) route.mtu = mtu
      if (raw.protocol) route.protocol = raw.protocol
      if (raw.scope) route.scope = raw.scope
      return route
    })
  }

  /** Add or overwrite the route to dst (ip route replace). */
  async replaceRoute(route: Route): Promise<void> {
    await this.run('ip', ['route', 'replace', ...routeArgs(route)])
  }

  async deleteRoute(route: Route): Promise<boolean> {
    return this.remove('ip', ['route', 'del', ...routeArgs(route)])
  }

  async listNeighbours(dev: string, family: Family = 'inet'): Promise<Neighbour[]> {
    const raw = await this.json<{ dst: string; lladdr?: string; state?: string[] }>('ip', [family === 'inet6' ? '-6' : '-4', 'neigh', 'show', 'dev', dev])
    return raw.filter((n) => n.lladdr).map((n) => ({ ip: n.dst, mac: n.lladdr!, dev, state: n.state ?? [] }))
  }

  /** A permanent ARP (IPv4) or NDP (IPv6) entry, as the vxlan backend programs per peer. */
  async replaceNeighbour(n: { ip: string; mac: string; dev: string }): Promise<void> {
    await this.run('ip', ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', n.dev, 'nud', 'permanent'])
  }

  async deleteNeighbour(n: { ip: string; dev: string }): Promise<boolean> {
    return this.remove('ip', ['neigh', 'del', n.ip, 'dev', n.dev])
  }

  async listFdb(dev: string): Promise<FdbEntry[]> {
    const raw = await this.json<{ mac: string; dst?: string; state?: string; flags?: string[] }>('bridge', ['fdb', 'show', 'dev', dev])
    return raw.map((e) => {
      const entry: FdbEntry = { mac: e.mac, dev, flags: e.flags ?? [] }
      if (e.dst) entry.dst = e.dst
      if (e.state) entry.state = e.state
      return entry
    })
  }

  /** Add a permanent VTEP entry; a MAC may have several (append) — use replace for one. */
  async appendFdb(e: { mac: string; dev: string; dst: string }): Promise<void> {
    await this.run('bridge', ['fdb', 'append', e.mac, 'dev', e.dev, 'dst', e.dst, 'self', 'permanent'])
  }

  async replaceFdb(e: { mac: string; dev: string; dst: string }): Promise<void> {
    await this.run('bridge', ['fdb', 'replace', e.mac, 'dev', e.dev, 'dst', e.dst, 'self', 'permanent'])
  }

  async deleteFdb(e: { mac: string; dev: string; dst?: string }): Promise<boolean> {
    const args = ['fdb', 'del', e.mac, 'dev', e.dev]
    if (e.dst) args.push('dst', e.dst)
    return this.remove('bridge', [...args, 'self'])
  }
}
