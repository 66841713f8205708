// Which hosts a Network is for (spec.hosts), as a pure function of the
// selector and one host's name and labels.
//
// - `hosts` omitted, or with neither `names` nor `matchLabels` given (or both
//   empty): every host, as an empty Kubernetes selector matches everything.
// - Otherwise a host is selected when its name is listed in `names` OR its
//   labels carry every `matchLabels` pair: `{names: [host-a], matchLabels:
//   {zone: a}}` reads "host-a, and every host of zone a".
import type { NetworkSpec } from '../crds/network.js'

export interface HostFacts {
  name: string
  /** the host's labels: --labels, else its HostLease's */
  labels: Readonly<Record<string, string>>
}

export type HostSelector = NetworkSpec['hosts']

export function selectsHost(selector: HostSelector, host: HostFacts): boolean {
  const names = selector?.names ?? []
  const match = Object.entries(selector?.matchLabels ?? {})
  if (names.length === 0 && match.length === 0) return true
  if (names.includes(host.name)) return true
  return match.length > 0 && match.every(([k, v]) => host.labels[k] === v)
}
