// The host-gw backend's definition (see backend.ts for the driver).
import { NO_LEASE_DATA, type BackendDefinition } from '../backend.js'
import { HostGwBackend } from './backend.js'

export const hostGw: BackendDefinition<undefined> = {
  type: 'host-gw',
  defaultPort: undefined,
  noPortReason: 'host-gw sends no encapsulated traffic, so it uses no port',
  options: [],
  mtuOverhead: () => 0,
  ...NO_LEASE_DATA,
  create: ({ links }) => new HostGwBackend(links),
}
