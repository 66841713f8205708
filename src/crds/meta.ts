// Kubernetes-shaped object envelope shared by every weft kind (DESIGN.md §2).
import { Type, type Static, type TSchema } from '@sinclair/typebox'

export const GROUP = 'weft.dev'
export const VERSION = 'v1alpha1'
export const API_VERSION = `${GROUP}/${VERSION}` as const

export const ObjectMetaSchema = Type.Object(
  {
    name: Type.String(),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    // server-set: never trusted from user input, always from the store
    uid: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer()),
    creationTimestamp: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type ObjectMeta = Static<typeof ObjectMetaSchema>

export const ConditionSchema = Type.Object(
  {
    type: Type.String(),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
    reason: Type.String(),
    message: Type.String(),
    lastTransitionTime: Type.String(),
    observedGeneration: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
)
export type Condition = Static<typeof ConditionSchema>

/** The envelope every stored object has. */
export interface Resource<K extends string = string, Spec = unknown, Status = unknown> {
  apiVersion: typeof API_VERSION
  kind: K
  metadata: ObjectMeta
  spec: Spec
  status?: Status
}

export function resourceSchema<K extends string, S extends TSchema, T extends TSchema>(kind: K, spec: S, status: T) {
  return Type.Object(
    {
      apiVersion: Type.Literal(API_VERSION),
      kind: Type.Literal(kind),
      metadata: ObjectMetaSchema,
      spec,
      status: Type.Optional(status),
    },
    { additionalProperties: false },
  )
}

/**
 * Objects in name order. Names are ASCII (DNS labels), so code-unit order is
 * the order a user expects, and it leaves ICU alone: the first localeCompare
 * maps several MB of collation data into an agent that never needs it.
 */
export function byName(a: { metadata: { name: string } }, b: { metadata: { name: string } }): number {
  return compareStrings(a.metadata.name, b.metadata.name)
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
