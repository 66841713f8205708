// The two files flannel users already script against (DESIGN.md §5), as
// plain text from a held lease: /run/weft/subnet.env (flannel's
// /run/flannel/subnet.env) and the docker options file (flannel's
// mk-docker-opts.sh output). Docker masquerades only where weft does not,
// hence --ip-masq is the inverse of FLANNEL_IPMASQ.
import { formatCidr, gatewayCidr, networkOf, tryParseCidr, type Cidr } from '../net/cidr.js'

export interface SubnetFacts {
  network: string
  subnet: Cidr
  mtu: number
  ipMasq: boolean
}

export function renderSubnetEnv(f: SubnetFacts): string {
  return [
    `FLANNEL_NETWORK=${f.network}`,
    `FLANNEL_SUBNET=${formatCidr(gatewayCidr(f.subnet))}`,
    `FLANNEL_MTU=${f.mtu}`,
    `FLANNEL_IPMASQ=${f.ipMasq}`,
    '',
  ].join('\n')
}

export function renderDockerOpts(f: SubnetFacts): string {
  const bip = `--bip=${formatCidr(gatewayCidr(f.subnet))}`
  const masq = `--ip-masq=${!f.ipMasq}`
  const mtu = `--mtu=${f.mtu}`
  return [
    `DOCKER_OPT_BIP="${bip}"`,
    `DOCKER_OPT_IPMASQ="${masq}"`,
    `DOCKER_OPT_MTU="${mtu}"`,
    `DOCKER_NETWORK_OPTIONS=" ${bip} ${masq} ${mtu}"`,
    '',
  ].join('\n')
}

/** The subnet a previous run wrote (FLANNEL_SUBNET is the gateway; its network is the subnet), if readable. */
export function subnetFromEnv(content: string): Cidr | undefined {
  const m = /^FLANNEL_SUBNET=(\S+)\s*$/m.exec(content)
  const c = m ? tryParseCidr(m[1]!) : undefined
  return c ? networkOf(c) : undefined
}
