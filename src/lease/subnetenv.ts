// The two files flannel users already script against (DESIGN.md §5), as
// plain text from a held lease: /run/weft/subnet.env (flannel's
// /run/flannel/subnet.env) and the docker options file (flannel's
// mk-docker-opts.sh output). Docker masquerades only where weft does not,
// hence --ip-masq is the inverse of FLANNEL_IPMASQ. A dual-stack lease adds
// FLANNEL_IPV6_NETWORK/FLANNEL_IPV6_SUBNET (the gateway form, as for IPv4) and
// Docker's --ipv6 --fixed-cidr-v6 (DESIGN.md §6).
import { formatCidr, gatewayCidr, networkOf, tryParseCidr, type Cidr } from '../net/cidr.js'
import { formatCidr6, gatewayCidr6, networkOf6, tryParseCidr6, type Cidr6 } from '../net/cidr.js'

export interface SubnetFacts {
  network: string
  subnet: Cidr
  mtu: number
  ipMasq: boolean
  /** dual-stack leases only */
  ipv6?: { network: string; subnet: Cidr6 }
}

export function renderSubnetEnv(f: SubnetFacts): string {
  return [
    `FLANNEL_NETWORK=${f.network}`,
    `FLANNEL_SUBNET=${formatCidr(gatewayCidr(f.subnet))}`,
    `FLANNEL_MTU=${f.mtu}`,
    `FLANNEL_IPMASQ=${f.ipMasq}`,
    ...(f.ipv6 ? [`FLANNEL_IPV6_NETWORK=${f.ipv6.network}`, `FLANNEL_IPV6_SUBNET=${formatCidr6(gatewayCidr6(f.ipv6.subnet))}`] : []),
    '',
  ].join('\n')
}

export function renderDockerOpts(f: SubnetFacts): string {
  const bip = `--bip=${formatCidr(gatewayCidr(f.subnet))}`
  const masq = `--ip-masq=${!f.ipMasq}`
  const mtu = `--mtu=${f.mtu}`
  const ipv6 = f.ipv6 ? [dockerIPv6Opt(f.ipv6.subnet)] : []
  return [
    `DOCKER_OPT_BIP="${bip}"`,
    `DOCKER_OPT_IPMASQ="${masq}"`,
    `DOCKER_OPT_MTU="${mtu}"`,
    ...ipv6.map((o) => `DOCKER_OPT_IPV6="${o}"`),
    `DOCKER_NETWORK_OPTIONS=" ${[bip, masq, mtu, ...ipv6].join(' ')}"`,
    '',
  ].join('\n')
}

/** The subnet a previous run wrote (FLANNEL_SUBNET is the gateway; its network is the subnet), if readable. */
export function subnetFromEnv(content: string): Cidr | undefined {
  const m = /^FLANNEL_SUBNET=(\S+)\s*$/m.exec(content)
  const c = m ? tryParseCidr(m[1]!) : undefined
  return c ? networkOf(c) : undefined
}

/** Docker's flags for a dual-stack docker0: containers get addresses of the lease's IPv6 subnet, docker0 its ::1. */
export function dockerIPv6Opt(subnet: Cidr6): string {
  return `--ipv6 --fixed-cidr-v6=${formatCidr6(networkOf6(subnet))}`
}

/** The IPv6 subnet a previous run wrote (FLANNEL_IPV6_SUBNET, the gateway form), if readable. */
export function ipv6SubnetFromEnv(content: string): Cidr6 | undefined {
  const m = /^FLANNEL_IPV6_SUBNET=(\S+)\s*$/m.exec(content)
  const c = m ? tryParseCidr6(m[1]!) : undefined
  return c ? networkOf6(c) : undefined
}
