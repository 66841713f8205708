// From documents a user wrote to the objects they mean: server-set fields and
// status dropped (so `get -o yaml` output can be applied back), validated,
// defaults filled; and the part of an object `apply` and `diff` compare.
import { isDeepStrictEqual } from 'node:util'
import { InvalidError, validateResource, withDefaults } from '../crds/index.js'
import type { AnyResource } from '../crds/kinds.js'
import { formatError } from './errors.js'
import type { Manifest } from './manifests.js'

export interface Desired {
  objects: AnyResource[]
  /** one kubectl-shaped line per bad document, in input order */
  errors: string[]
}

/** Every document checked before anything is written: a single bad one fails the lot. */
export function desiredObjects(manifests: readonly Manifest[]): Desired {
  const objects: AnyResource[] = []
  const errors: string[] = []
  for (const m of manifests) {
    try {
      objects.push(withDefaults(validateResource(userPart(m.doc))))
    } catch (err) {
      errors.push(err instanceof InvalidError ? formatError(err) : `error: error validating "${m.source}": ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return { objects, errors }
}

/** The document without what only the server or the agents write. */
function userPart(doc: unknown): unknown {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return doc
  const { status: _status, ...rest } = doc as Record<string, unknown>
  const meta = rest.metadata
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return rest
  const { uid: _u, resourceVersion: _r, generation: _g, creationTimestamp: _c, ...userMeta } = meta as Record<string, unknown>
  return { ...rest, metadata: userMeta }
}

/**
 * What a user owns of an object: identity, labels, annotations, spec. Empty
 * maps are dropped (the store does the same), so `{}` and absent compare equal.
 */
export function comparable(obj: AnyResource): Record<string, unknown> {
  const { name, labels, annotations } = obj.metadata
  const metadata: Record<string, unknown> = { name }
  if (labels && Object.keys(labels).length) metadata.labels = labels
  if (annotations && Object.keys(annotations).length) metadata.annotations = annotations
  // a JSON round trip drops keys set to undefined, which isDeepStrictEqual would count
  return JSON.parse(JSON.stringify({ apiVersion: obj.apiVersion, kind: obj.kind, metadata, spec: obj.spec })) as Record<string, unknown>
}

export function sameUserPart(a: AnyResource, b: AnyResource): boolean {
  return isDeepStrictEqual(comparable(a), comparable(b))
}
