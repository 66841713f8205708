// How an object is stored in etcd and read back: JSON, with resourceVersion
// derived from the key's mod revision rather than stored. Anyone with etcd
// access can write any bytes under the prefix, so every read validates: a
// value must be JSON of the key's kind, name its key, and pass the kind's
// schema and rules. A bad value is an InvalidObject (the key and why), never a
// half-typed object for a caller to trip over.
//
// Cost: the happy path is a compiled TypeBox check plus the kind's value rules
// (a few CIDR/IP parses); field errors are enumerated only for a value already
// known to be bad (figure: test/unit/store-codec.test.ts prints it).
import type { IKeyValue } from 'etcd3'
import { formatFieldErrors, storedObjectErrors } from '../crds/index.js'
import { KINDS, type AnyResource, type KindName } from '../crds/kinds.js'
import { StoreError } from './errors.js'
import { kindPrefix } from './keys.js'

/** A key under a kind's prefix whose value is not a valid object of that kind. */
export interface InvalidObject {
  kind: KindName
  /** the whole etcd key, e.g. /weft/hostleases/garbage */
  key: string
  /** the key's last segment: the name the object would have */
  name: string
  /** why, one line: "holds no JSON", "holds an invalid HostLease: spec.subnet: ..." */
  reason: string
  /** the key's mod revision: a writer replacing the value compares against it */
  modRevision: string
}

/** A read found a key whose value is not a valid object (get of one name). */
export class InvalidStoredObjectError extends StoreError {
  override name = 'InvalidStoredObjectError'
  readonly kind: KindName
  readonly objectName: string
  constructor(readonly invalid: InvalidObject) {
    super(describeInvalid(invalid))
    this.kind = invalid.kind
    this.objectName = invalid.name
  }
}

/** "hostleases key /weft/hostleases/garbage holds no JSON" */
export function describeInvalid(i: InvalidObject): string {
  return `${KINDS[i.kind].plural} key ${i.key} ${i.reason}`
}

export type Decoded<T extends AnyResource = AnyResource> = { ok: true; object: T } | { ok: false; invalid: InvalidObject }

export function encode(obj: AnyResource): string {
  // resourceVersion is the key's mod revision: derived on read, never stored
  const { resourceVersion: _derived, ...metadata } = obj.metadata
  return JSON.stringify({ ...obj, metadata })
}

/** The object a key holds, or why it holds none. `prefix` is the store's. */
export function tryDecode(prefix: string, kind: KindName, kv: IKeyValue): Decoded {
  const key = kv.key.toString()
  const kp = kindPrefix(prefix, kind)
  const name = key.startsWith(kp) ? key.slice(kp.length) : key
  const bad = (reason: string): Decoded => ({ ok: false, invalid: { kind, key, name, reason, modRevision: kv.mod_revision } })
  const found = problem(kind, name, kv.value)
  return typeof found === 'string' ? bad(found) : { ok: true, object: withVersion(found, kv.mod_revision) }
}

/** As tryDecode, throwing InvalidStoredObjectError for a bad value. */
export function decode(prefix: string, kind: KindName, kv: IKeyValue): AnyResource {
  const d = tryDecode(prefix, kind, kv)
  if (!d.ok) throw new InvalidStoredObjectError(d.invalid)
  return d.object
}

export function withVersion<T extends AnyResource>(obj: T, revision: string): T {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: revision } }
}

const MAX_NAME = 63

/** The valid object, or a one-line reason it is not one. */
function problem(kind: KindName, name: string, value: Buffer): AnyResource | string {
  const info = KINDS[kind]
  if (name.length === 0 || name.length > MAX_NAME || !info.namePattern.test(name)) {
    return `has a name that is not a valid ${kind} name (${MAX_NAME} characters at most: lower case alphanumerics, '-', '.'${kind === 'Network' ? ", '_'" : ''}; alphanumeric at both ends)`
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString())
  } catch (err) {
    return `holds no JSON (${(err as Error).message})`
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `holds JSON that is not an object`
  const obj = parsed as Record<string, unknown>
  if (obj.kind !== kind) return obj.kind === undefined ? `holds an object with no kind, not a ${kind}` : `holds a ${JSON.stringify(obj.kind)}, not a ${kind}`
  // the happy path: a compiled TypeBox check and the kind's value rules, no error enumerated
  const errors = storedObjectErrors(kind, obj)
  if (errors.length > 0) return `holds an invalid ${kind}: ${formatFieldErrors(errors)}`
  const stored = obj as unknown as AnyResource
  if (stored.metadata.name !== name) return `holds ${kind} ${JSON.stringify(stored.metadata.name)}, not ${JSON.stringify(name)} as its key says`
  return stored
}

/**
 * Decoded values shared by the watches of many Stores in one process, by key
 * and revision: bench/fleet.ts runs a thousand simulated hosts per process,
 * and parsing one lease a thousand times is the simulation's cost, not a
 * host's. One agent has one watch per kind and no use for it. Shared objects
 * are safe because informer objects are never mutated.
 */
export class SharedDecodes {
  private readonly latest = new Map<string, { revision: bigint; decoded: Decoded }>()
  hits = 0
  misses = 0

  decode(prefix: string, kind: KindName, kv: IKeyValue): Decoded {
    const key = kv.key.toString()
    const revision = BigInt(kv.mod_revision)
    const known = this.latest.get(key)
    if (known?.revision === revision) {
      this.hits++
      return known.decoded
    }
    this.misses++
    const decoded = tryDecode(prefix, kind, kv)
    if (!known || known.revision < revision) this.latest.set(key, { revision, decoded })
    return decoded
  }
}
