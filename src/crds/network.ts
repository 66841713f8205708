// Network: a Docker network on chosen hosts (the tutorial's `docker network ...`).
import { Type, type Static } from '@sinclair/typebox'
import { ConditionSchema, resourceSchema, type Resource } from './meta.js'

export const NETWORK_DRIVERS = ['bridge', 'macvlan', 'ipvlan'] as const
export const DOCKER_BUILTIN_NETWORKS = ['host', 'none'] as const
/** The label weft puts on every Docker network it owns; others are never touched. */
export const MANAGED_LABEL = 'dev.weft.managed'

export const NetworkSpecSchema = Type.Object(
  {
    // validated by hand so `host`/`none` get a message naming them Docker built-ins
    driver: Type.Optional(Type.String({ description: 'Docker network driver: bridge, macvlan or ipvlan. Default: bridge.' })),
    subnet: Type.Optional(Type.String({ description: 'Subnet in CIDR notation; omitted lets Docker choose.' })),
    gateway: Type.Optional(Type.String({ description: "Gateway address inside subnet; omitted lets Docker take the subnet's first address." })),
    ipRange: Type.Optional(Type.String({ description: 'Part of subnet (CIDR) Docker allocates container addresses from.' })),
    ipv6Subnet: Type.Optional(Type.String({ description: 'IPv6 subnet in CIDR notation for a dual-stack network (docker network create --ipv6); omitted: IPv4 only.' })),
    ipv6Gateway: Type.Optional(Type.String({ description: "IPv6 gateway inside ipv6Subnet; omitted lets Docker take the subnet's first address." })),
    options: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Driver options, e.g. com.docker.network.driver.mtu. Default: {}.' })),
    internal: Type.Optional(Type.Boolean({ description: 'Restrict external access to the network. Default: false.' })),
    hosts: Type.Optional(
      Type.Object(
        {
          names: Type.Optional(Type.Array(Type.String(), { description: 'Host names (their HostLease names).' })),
          matchLabels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: "Labels a host's HostLease must carry." })),
        },
        { additionalProperties: false, description: 'Which hosts get the network; omitted means every host.' },
      ),
    ),
    attachments: Type.Optional(
      Type.Array(
        Type.Object(
          {
            container: Type.String({ description: 'Name or ID of an existing container.' }),
            ipv4Address: Type.Optional(Type.String({ description: 'Static address inside subnet; omitted lets Docker choose.' })),
            ipv6Address: Type.Optional(Type.String({ description: 'Static IPv6 address inside ipv6Subnet; omitted lets Docker choose.' })),
          },
          { additionalProperties: false },
        ),
        { description: 'Existing containers to connect (docker network connect), on every host where they run.' },
      ),
    ),
  },
  { additionalProperties: false },
)

export const NetworkHostStatusSchema = Type.Object(
  {
    networkID: Type.Optional(Type.String({ description: "The Docker network's ID on this host." })),
    conditions: Type.Optional(Type.Array(ConditionSchema)),
  },
  { additionalProperties: false },
)

export const NetworkStatusSchema = Type.Object(
  { hosts: Type.Optional(Type.Record(Type.String(), NetworkHostStatusSchema, { description: "One entry per host, written by that host's agent." })) },
  { additionalProperties: false },
)

export const NetworkSchema = resourceSchema('Network', NetworkSpecSchema, NetworkStatusSchema)

export type NetworkSpec = Static<typeof NetworkSpecSchema>
export type NetworkHostStatus = Static<typeof NetworkHostStatusSchema>
export type NetworkStatus = Static<typeof NetworkStatusSchema>
export type Network = Resource<'Network', NetworkSpec, NetworkStatus>
