// What an agent acts on: an OverlayConfig spec as read from etcd, checked
// again (etcd may have been written around weftctl) and with every default
// filled in, so no agent code re-derives a default.
import { defaultOverlaySpec } from './defaults.js'
import { parseDuration } from './duration.js'
import { InvalidError } from './errors.js'
import type { OverlayConfigSpec, ResolvedOverlaySpec } from './overlayconfig.js'
import { specErrors } from './validation.js'

/** The complete spec; throws InvalidError (kind OverlayConfig, the given name) when the spec breaks a rule. */
export function resolveOverlaySpec(spec: OverlayConfigSpec, name = ''): ResolvedOverlaySpec {
  const errors = specErrors('OverlayConfig', spec)
  if (errors.length > 0) throw new InvalidError('OverlayConfig', name, errors)
  const d = defaultOverlaySpec(spec)
  const backend = d.backend!
  return {
    network: d.network,
    subnetLen: d.subnetLen!,
    subnetMin: d.subnetMin!,
    subnetMax: d.subnetMax!,
    // host-gw has no port and udp/host-gw no VNI: 0 stands for "none"
    backend: {
      type: backend.type!,
      port: backend.port ?? 0,
      vni: backend.vni ?? 0,
      persistentKeepalive: backend.persistentKeepalive === undefined ? 0 : parseDuration(backend.persistentKeepalive) / 1000,
    },
    mtu: d.mtu!,
    ...(d.ipv6Network === undefined
      ? {}
      : { ipv6: { network: d.ipv6Network, subnetLen: d.ipv6SubnetLen!, subnetMin: d.ipv6SubnetMin!, subnetMax: d.ipv6SubnetMax! } }),
    ipMasq: d.ipMasq!,
    leaseTTL: d.leaseTTL!,
  }
}
