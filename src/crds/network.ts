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
    driver: Type.Optional(Type.String({ description: 'bridge | macvlan | ipvlan' })),
    subnet: Type.Optional(Type.String()),
    gateway: Type.Optional(Type.String()),
    ipRange: Type.Optional(Type.String()),
    options: Type.Optional(Type.Record(Type.String(), Type.String())),
    internal: Type.Optional(Type.Boolean()),
    hosts: Type.Optional(
      Type.Object(
        {
          names: Type.Optional(Type.Array(Type.String())),
          matchLabels: Type.Optional(Type.Record(Type.String(), Type.String())),
        },
        { additionalProperties: false },
      ),
    ),
    attachments: Type.Optional(
      Type.Array(
        Type.Object(
          { container: Type.String(), ipv4Address: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
      ),
    ),
  },
  { additionalProperties: false },
)

export const NetworkHostStatusSchema = Type.Object(
  {
    networkID: Type.Optional(Type.String()),
    conditions: Type.Optional(Type.Array(ConditionSchema)),
  },
  { additionalProperties: false },
)

export const NetworkStatusSchema = Type.Object(
  { hosts: Type.Optional(Type.Record(Type.String(), NetworkHostStatusSchema)) },
  { additionalProperties: false },
)

export const NetworkSchema = resourceSchema('Network', NetworkSpecSchema, NetworkStatusSchema)

export type NetworkSpec = Static<typeof NetworkSpecSchema>
export type NetworkHostStatus = Static<typeof NetworkHostStatusSchema>
export type NetworkStatus = Static<typeof NetworkStatusSchema>
export type Network = Resource<'Network', NetworkSpec, NetworkStatus>
