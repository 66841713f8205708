// WireGuard device adapter: kernel WireGuard where `ip link add … type
// wireguard` works, else the wireguard-go userspace daemon; configured with
// `wg` in both cases, so one code path reads and sets keys and peers.
//
// A device that exists is adopted, never recreated: that is what keeps the
// tunnel and its traffic up across agent restarts. wireguard-go is started so
// that it outlives the agent: it gets a process group of its own (no terminal
// signal or group kill aimed at the agent reaches it), and in its daemon mode
// (no -f) it forks a child with stdio on /dev/null and exits once the TUN
// device and its UAPI socket exist, so the child holds none of our pipes and
// is no child of the agent. (A systemd unit must still keep it out of the
// agent's cgroup kill: KillMode=process.)
//
// It stays in the agent's session, as a daemon an admin starts from a shell
// stays in the shell's. A session of its own (setsid) is an autogroup of its
// own for the scheduler wherever no cpu cgroup says otherwise: all the
// daemon's threads then weigh as one task against the senders whose packets
// it carries, and it carried about 0.7x what the same binary started by hand
// does (bench/datapath.ts).
//
// The private key goes to `wg` on stdin only, and is dropped when `wg show
// dump` prints it back: it is in no argv, temp file, return value or error.
import { CommandError, runnerFor, type Runner } from './exec.js'
import { Links } from './links.js'
import { isWgKey, publicKeyOf } from './wgkey.js'

export type WgImplementation = 'kernel' | 'wireguard-go'

/** A WireGuard device cannot be made, reached or configured; the message names the device. */
export class WgError extends Error {
  override readonly name = 'WgError'
}

/** Where wireguard-go and `wg` meet (fixed in both tools). */
export const WG_SOCKET_DIR = '/var/run/wireguard'

/** Pure: which implementation to run, from what the host offers; throws a clear error when neither. */
export function chooseImplementation(offer: { kernel: boolean; userspace: boolean }): WgImplementation {
  if (offer.kernel) return 'kernel'
  if (offer.userspace) return 'wireguard-go'
  throw new WgError(
    'no WireGuard on this host: `ip link add … type wireguard` fails (no kernel module) and the wireguard-go daemon is not installed (Debian package wireguard-go)',
  )
}

export interface WgPeerConfig {
  publicKey: string
  /** "ip:port" ("[ip6]:port" for IPv6); "" when the device knows none */
  endpoint: string
  /** CIDRs, canonical strings, e.g. ["10.2.3.0/24"] (dual-stack later adds an IPv6 one) */
  allowedIPs: string[]
  /** seconds; 0 = off */
  persistentKeepalive: number
}

export interface WgDeviceState {
  implementation: WgImplementation
  publicKey: string
  listenPort: number
  /** as the device reports them, normalised the same way as WgPeerConfig (allowedIPs sorted) */
  peers: WgPeerConfig[]
}

export interface WgDeviceConfig {
  privateKey: string
  listenPort: number
  mtu: number
}

/** Parsed `wg show <dev> dump`; the private key column is never kept. */
export interface WgDump {
  /** "" when the device has no private key yet */
  publicKey: string
  listenPort: number
  peers: WgPeerConfig[]
}

/** Pure: parse `wg show <dev> dump` (tab-separated; first line the interface, then one line per peer). */
export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((l) => l !== '')
  const head = lines[0]?.split('\t')
  if (!head || head.length < 4) throw new WgError('unexpected output of wg show dump: no interface line')
  const none = (v: string | undefined) => (v === undefined || v === '(none)' ? '' : v)
  const peers = lines.slice(1).map((line): WgPeerConfig => {
    // public-key preshared-key endpoint allowed-ips latest-handshake rx tx persistent-keepalive
    const f = line.split('\t')
    if (f.length < 8) throw new WgError('unexpected output of wg show dump: short peer line')
    const allowed = none(f[3])
    const keepalive = f[7] === 'off' ? 0 : Number(f[7])
    return {
      publicKey: f[0]!,
      endpoint: none(f[2]),
      allowedIPs: allowed === '' ? [] : allowed.split(',').sort(),
      persistentKeepalive: Number.isFinite(keepalive) ? keepalive : 0,
    }
  })
  return { publicKey: none(head[1]), listenPort: Number(head[2]), peers }
}

export interface PeerPlan {
  add: WgPeerConfig[]
  change: WgPeerConfig[]
  /** public keys */
  remove: string[]
}

function samePeer(current: WgPeerConfig, desired: WgPeerConfig): boolean {
  const a = [...current.allowedIPs].sort()
  const b = [...desired.allowedIPs].sort()
  return (
    // an endpoint cannot be unset with wg; an empty desired one leaves what the device learnt
    (desired.endpoint === '' || current.endpoint === desired.endpoint) &&
    current.persistentKeepalive === desired.persistentKeepalive &&
    a.length === b.length &&
    a.every((x, i) => x === b[i])
  )
}

/** Pure: what to add, change and remove so the device's peers are exactly `desired` (by public key). */
export function planPeers(current: readonly WgPeerConfig[], desired: readonly WgPeerConfig[]): PeerPlan {
  const seen = new Set<string>()
  for (const p of desired) {
    if (!isWgKey(p.publicKey)) throw new WgError(`peer public key ${JSON.stringify(p.publicKey)} is not a base64 32-byte WireGuard key`)
    if (seen.has(p.publicKey)) throw new WgError(`peer public key ${p.publicKey} is wanted twice`)
    if (!Number.isInteger(p.persistentKeepalive) || p.persistentKeepalive < 0 || p.persistentKeepalive > 65535) {
      throw new WgError(`peer ${p.publicKey}: persistentKeepalive ${p.persistentKeepalive} is not 0..65535 seconds`)
    }
    seen.add(p.publicKey)
  }
  const byKey = new Map(current.map((p) => [p.publicKey, p]))
  return {
    add: desired.filter((p) => !byKey.has(p.publicKey)),
    change: desired.filter((p) => {
      const cur = byKey.get(p.publicKey)
      return cur !== undefined && !samePeer(cur, p)
    }),
    remove: current.filter((p) => !seen.has(p.publicKey)).map((p) => p.publicKey),
  }
}

/** Pure: the `wg set <dev> …` arguments that carry out a plan (removals first, so a subnet moving to a new key lands on it). */
export function peerArgs(plan: PeerPlan): string[] {
  const args: string[] = []
  for (const key of plan.remove) args.push('peer', key, 'remove')
  for (const p of [...plan.add, ...plan.change]) {
    args.push('peer', p.publicKey)
    if (p.endpoint !== '') args.push('endpoint', p.endpoint)
    args.push('persistent-keepalive', p.persistentKeepalive === 0 ? 'off' : String(p.persistentKeepalive))
    args.push('allowed-ips', [...p.allowedIPs].sort().join(','))
  }
  return args
}

/** wireguard-go's environment without what would change how it starts: its fd hand-over variables, and LOG_LEVEL, which would give the daemon our stdout and stderr. */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const k of ['LOG_LEVEL', 'WG_TUN_FD', 'WG_UAPI_FD', 'WG_PROCESS_FOREGROUND']) delete env[k]
  return env
}

/** A command's stderr without wireguard-go's "not required on this kernel" banner (printed even where there is no module). */
function stderrOf(err: unknown): string {
  if (!(err instanceof CommandError)) return err instanceof Error ? err.message : String(err)
  const text = err.stderr.split('\n').filter((l) => l.trim() !== '' && !/^[┌│└]/.test(l)).join('; ')
  return text || (err.exitCode === null ? 'did not run to completion' : `exited ${err.exitCode}`)
}

export class WireGuard {
  private readonly run: Runner
  private readonly links: Links

  /** netns: run every tool inside this /run/netns namespace (tests); default this process's namespace. */
  constructor(opts: { netns?: string; runner?: Runner } = {}) {
    this.run = opts.runner ?? runnerFor(opts.netns)
    this.links = new Links({ runner: this.run })
  }

  /**
   * Make sure device `name` exists and is up with this private key, port and
   * MTU. An existing device is adopted; only what differs is set.
   */
  async ensureDevice(name: string, cfg: WgDeviceConfig): Promise<{ implementation: WgImplementation; created: boolean }> {
    // before anything runs: a bad key must not leave a half-made device behind
    const publicKey = publicKeyOf(cfg.privateKey)
    let link = await this.links.getLink(name)
    let created = false
    let implementation: WgImplementation
    if (link) {
      implementation = this.implementationOf(name, link.kind)
    } else {
      implementation = await this.create(name)
      created = true
      link = await this.links.getLink(name)
      if (!link) throw new WgError(`${name}: the ${implementation} device vanished right after it was made`)
    }
    try {
      const dev = await this.dump(name, implementation)
      const set: string[] = []
      if (dev.listenPort !== cfg.listenPort) set.push('listen-port', String(cfg.listenPort))
      if (dev.publicKey !== publicKey) set.push('private-key', '/dev/stdin')
      if (set.length > 0) {
        // node's stdin "pipe" is a socketpair, which wg cannot fopen() as /dev/stdin: cat hands it on through a real pipe
        await this.run('sh', ['-c', 'cat | wg set "$@"', 'sh', name, ...set], { input: `${cfg.privateKey}\n` }).catch((err: unknown) => {
          // wg quotes a key it cannot parse; publicKeyOf above took this one, but the key is cut out all the same
          const why = stderrOf(err).replaceAll(cfg.privateKey, '<private key>')
          throw new WgError(`${name}: wg set ${set.includes('listen-port') ? `listen-port ${cfg.listenPort}` : 'private-key'} failed: ${why}`)
        })
      }
      if (link.mtu !== cfg.mtu) await this.links.setMtu(name, cfg.mtu)
      if (!link.up) await this.links.setUp(name)
    } catch (err) {
      // a device this call made and could not configure is not left half-made
      if (created) await this.remove(name).catch(() => undefined)
      throw err
    }
    return { implementation, created }
  }

  /** undefined when there is no such device. Never returns the private key. */
  async state(name: string): Promise<WgDeviceState | undefined> {
    const link = await this.links.getLink(name)
    if (!link || (link.kind !== 'wireguard' && link.kind !== 'tun')) return undefined
    const implementation = this.implementationOf(name, link.kind)
    const dev = await this.dump(name, implementation)
    return { implementation, ...dev }
  }

  /** Make the device's peers exactly `desired` (by public key): add, update (endpoint, allowed IPs, keepalive), remove. */
  async syncPeers(name: string, desired: readonly WgPeerConfig[]): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const current = await this.state(name)
    if (!current) throw new WgError(`${name}: no WireGuard device to set peers on`)
    const plan = planPeers(current.peers, desired)
    const args = peerArgs(plan)
    if (args.length > 0) {
      await this.run('wg', ['set', name, ...args]).catch((err: unknown) => {
        throw new WgError(`${name}: setting peers failed: ${stderrOf(err)}`)
      })
    }
    return { added: plan.add.map((p) => p.publicKey), changed: plan.change.map((p) => p.publicKey), removed: plan.remove }
  }

  /** Remove the device (and stop its wireguard-go daemon); false when there was none. */
  async remove(name: string): Promise<boolean> {
    const link = await this.links.getLink(name)
    if (!link) return false
    await this.links.deleteLink(name)
    if (link.kind === 'tun') {
      // wireguard-go shuts down when its TUN device goes and unlinks its socket on the way out;
      // wait for that, then remove a socket a dead daemon left (which also stops a live one: it watches the file)
      const deadline = Date.now() + 5_000
      while (Date.now() < deadline && (await this.answers(name))) await new Promise((r) => setTimeout(r, 50))
      await this.run('rm', ['-f', `${WG_SOCKET_DIR}/${name}.sock`])
    }
    return true
  }

  private implementationOf(name: string, kind: string | undefined): WgImplementation {
    if (kind === 'wireguard') return 'kernel'
    // wireguard-go's device is a TUN; whether a daemon owns it shows when `wg` asks it
    if (kind === 'tun') return 'wireguard-go'
    throw new WgError(`${name}: a link of that name exists and is no WireGuard device (kind ${kind ?? 'none'}); remove it or free the name`)
  }

  /** Make the device: the kernel's when the module is there, else a wireguard-go daemon. */
  private async create(name: string): Promise<WgImplementation> {
    // the probe is the creation: where `ip link add` works the device now exists
    const kernel = await this.run('ip', ['link', 'add', 'dev', name, 'type', 'wireguard']).then(
      () => true,
      () => false,
    )
    const userspace = kernel || (await this.run('wireguard-go', ['--version']).then(() => true, () => false))
    const implementation = chooseImplementation({ kernel, userspace })
    if (implementation === 'wireguard-go') {
      // its logger writes to stdout, which a CommandError does not carry: >&2 puts its reason in the error
      // (only the starting parent's: the daemon it forks gets /dev/null)
      // `timeout 0` (no time limit) is here for its setpgid(): it runs the command in a process group of its
      // own, in the caller's session (util-linux has no setpgid tool, and setsid would leave the session);
      // its exit status is wireguard-go's
      await this.run('timeout', ['0', 'sh', '-c', 'exec wireguard-go "$0" >&2', name], { env: daemonEnv() }).catch((err: unknown) => {
        throw new WgError(`${name}: wireguard-go could not start: ${stderrOf(err)}`)
      })
    }
    return implementation
  }

  private async dump(name: string, implementation: WgImplementation): Promise<WgDump> {
    try {
      return parseWgDump(await this.run('wg', ['show', name, 'dump']))
    } catch (err) {
      if (err instanceof WgError) throw err
      const why = stderrOf(err)
      if (implementation === 'wireguard-go') {
        throw new WgError(
          `${name}: a TUN device of that name exists but no wireguard-go daemon answers on ${WG_SOCKET_DIR}/${name}.sock (${why}); ` +
            'a daemon of another mount namespace, or a TUN device that is no WireGuard device',
        )
      }
      throw new WgError(`${name}: wg show failed: ${why}`)
    }
  }

  /** A daemon (or the kernel) answers `wg` for this device. */
  private async answers(name: string): Promise<boolean> {
    return this.run('wg', ['show', name, 'listen-port']).then(
      () => true,
      () => false,
    )
  }
}
