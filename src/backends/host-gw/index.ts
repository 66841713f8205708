// The host-gw backend's definition (see backend.ts for the driver).
import { NO_LEASE_DATA, type BackendDefinition } from '../backend.js'
import { HostGwBackend } from './backend.js'
import { gatewayOf } from '../../net/cidr.js'

export const hostGw: BackendDefinition<undefined> = {
  type: 'host-gw',
  defaultPort: undefined,
  noPortReason: 'host-gw sends no encapsulated traffic, so it uses no port',
  options: [],
  mtuOverhead: () => 0,
  // no overlay device: the gateway (docker0's bip), which peers route via this host's publicIP
  probeAddress: (subnet) => gatewayOf(subnet),
  ...NO_LEASE_DATA,
  create: ({ links }) => new HostGwBackend(links),
}
