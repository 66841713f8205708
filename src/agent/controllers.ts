// Every controller weftd runs, in one list: the one place to register a new
// one. Write src/controllers/<concern>.ts exporting a factory that turns the
// AgentContext into a ControllerSpec, and add a line here; order is start
// order (the lease first: everything else builds on the held lease), and the
// order of the host's conditions. A controller owning a condition names it
// (ControllerSpec.condition) and returns it; the host status writer, last,
// is the only writer of the HostLease status.
import { datapathController } from '../controllers/datapath.js'
import { dockerdController } from '../controllers/dockerd.js'
import { filesController } from '../controllers/files.js'
import { hostStatusController } from '../controllers/hoststatus.js'
import { iptablesController } from '../controllers/iptables.js'
import { leaseController } from '../controllers/lease.js'
import { networksController } from '../controllers/networks.js'
import { reachabilityController } from '../controllers/reachability.js'
import { DockerHost } from '../host/docker.js'
import { DockerdService } from '../host/dockerd.js'
import { ipv6SubnetFromEnv, subnetFromEnv } from '../lease/subnetenv.js'
import type { ControllerSpec } from '../runtime/index.js'
import type { AgentContext } from './context.js'
import { readFile } from 'node:fs/promises'

export type ControllerFactory = (ctx: AgentContext) => ControllerSpec

export const CONTROLLERS: readonly ControllerFactory[] = [
  (ctx) =>
    leaseController({
      manager: ctx.manager,
      registry: ctx.leases,
      holder: ctx.holder,
      hostName: ctx.flags.hostName,
      overlay: ctx.flags.overlay,
      publicIP: ctx.underlay.publicIP,
      // dual-stack overlays only (host-gw routes peers' IPv6 subnets via it); an IPv4-only overlay's lease carries none
      publicIPv6: (spec) => (spec.ipv6 ? ctx.underlay.publicIPv6() : undefined),
      underlayMtu: ctx.underlay.mtu,
      backends: ctx.backends,
      ...(ctx.flags.labels ? { labels: ctx.flags.labels } : {}),
      previousSubnet: async () => subnetFromEnv(await readFile(ctx.flags.subnetFile, 'utf8')),
      previousIPv6Subnet: async () => ipv6SubnetFromEnv(await readFile(ctx.flags.subnetFile, 'utf8')),
    }),
  (ctx) =>
    filesController({
      holder: ctx.holder,
      subnetFile: ctx.flags.subnetFile,
      dockerOptsFile: ctx.flags.dockerOptsFile,
    }),
  (ctx) =>
    datapathController({
      manager: ctx.manager,
      holder: ctx.holder,
      hostName: ctx.flags.hostName,
      overlay: ctx.flags.overlay,
      iface: ctx.underlay.iface,
      backends: ctx.backends,
    }),
  (ctx) => iptablesController({ manager: ctx.manager, holder: ctx.holder, overlay: ctx.flags.overlay }),
  (ctx) =>
    dockerdController({
      holder: ctx.holder,
      docker: new DockerHost({ url: ctx.flags.dockerHost, timeoutMs: 10_000 }),
      optsFile: ctx.flags.dockerOptsFile,
      ...(ctx.flags.dockerdRestartCommand
        ? { service: new DockerdService({ restartCommand: ctx.flags.dockerdRestartCommand, optsFile: ctx.flags.dockerOptsFile }) }
        : {}),
    }),
  (ctx) =>
    networksController({
      manager: ctx.manager,
      docker: new DockerHost({ url: ctx.flags.dockerHost, timeoutMs: 10_000 }),
      holder: ctx.holder,
      hostName: ctx.flags.hostName,
      ...(ctx.flags.labels ? { labels: ctx.flags.labels } : {}),
    }),
  (ctx) => reachabilityController({ manager: ctx.manager, store: ctx.store, holder: ctx.holder, hostName: ctx.flags.hostName, overlay: ctx.flags.overlay, startup: ctx.startup }),
  (ctx) => hostStatusController({ manager: ctx.manager, holder: ctx.holder, hostName: ctx.flags.hostName, startup: ctx.startup }),
]
