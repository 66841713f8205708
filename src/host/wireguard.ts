// WireGuard device adapter: kernel WireGuard where the module is there, else
// the wireguard-go userspace daemon, configured with `wg` in both cases.
import { runnerFor, type Runner } from './exec.js'

export type WgImplementation = 'kernel' | 'wireguard-go'

export class WgError extends Error {
  override readonly name = 'WgError'
}

/** Pure: which implementation to run, from what the host offers; throws a clear error when neither. */
export function chooseImplementation(offer: { kernel: boolean; userspace: boolean }): WgImplementation {
  if (offer.kernel) return 'kernel'
  if (offer.userspace) return 'wireguard-go'
  throw new WgError('no WireGuard on this host: `ip link add … type wireguard` fails (no kernel module) and wireguard-go is not installed')
}

export interface WgPeerConfig {
  publicKey: string
  /** "ip:port" */
  endpoint: string
  /** CIDRs, canonical strings, e.g. ["10.2.3.0/24"] */
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

export class WireGuard {
  private readonly run: Runner

  constructor(opts: { netns?: string; runner?: Runner } = {}) {
    this.run = opts.runner ?? runnerFor(opts.netns)
  }

  ensureDevice(name: string, cfg: { privateKey: string; listenPort: number; mtu: number }): Promise<{ implementation: WgImplementation; created: boolean }> {
    void name
    void cfg
    void this.run
    return Promise.reject(new WgError('ensureDevice not implemented yet'))
  }

  state(name: string): Promise<WgDeviceState | undefined> {
    void name
    return Promise.reject(new WgError('state not implemented yet'))
  }

  syncPeers(name: string, desired: readonly WgPeerConfig[]): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    void name
    void desired
    return Promise.reject(new WgError('syncPeers not implemented yet'))
  }

  remove(name: string): Promise<boolean> {
    void name
    return Promise.reject(new WgError('remove not implemented yet'))
  }
}
