// How validation gathers errors: field paths kept both as kubectl prints
// them and as segments (to sort errors into document order), TypeBox's
// structural errors turned into kubectl's wording, and one error per field.
import type { TSchema } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import { fieldError, type FieldError } from './errors.js'

type Seg = string | number

/** A field path kept two ways: segments (to sort by schema order) and kubectl's text. */
export class Path {
  constructor(
    readonly segs: readonly Seg[] = [],
    readonly text = '',
  ) {}
  child(name: string): Path {
    return new Path([...this.segs, name], this.text ? `${this.text}.${name}` : name)
  }
  index(i: number): Path {
    return new Path([...this.segs, i], `${this.text}[${i}]`)
  }
  /** a map entry: `metadata.labels[app.kubernetes.io/name]` */
  key(k: string): Path {
    return new Path([...this.segs, k], `${this.text}[${k}]`)
  }
}

interface Found {
  segs: readonly Seg[]
  error: FieldError
  structural: boolean
}

export class Collector {
  private readonly found: Found[] = []

  constructor(private readonly schema: TSchema) {}

  /** nothing recorded: the caller can skip sorting an empty result */
  get empty(): boolean {
    return this.found.length === 0
  }

  add(p: Path, error: FieldError, structural = false): void {
    this.found.push({ segs: p.segs, error, structural })
  }

  /** Records what the TypeBox schema says is wrong with `value`, found at `at`. */
  structure(schema: TSchema, value: unknown, at: Path): void {
    // the common case, a valid value, without building any error
    if (Value.Check(schema, value)) return
    for (const e of Value.Errors(schema, value)) {
      // a missing property is reported once, as Required, not again as "not a string"
      if (e.value === undefined && e.type !== ValueErrorType.ObjectRequiredProperty) continue
      const p = pointerToPath(schema, e.path, at)
      this.add(p, structuralError(e, p.text), true)
    }
  }

  /**
   * The errors in schema order: one structural error per path, and no rule
   * errors for a path whose value already has the wrong shape.
   */
  result(): FieldError[] {
    const structural = new Set<string>()
    const seen = new Set<string>()
    const kept = this.found.filter((f) => {
      const { path } = f.error
      if (f.structural) {
        if (structural.has(path)) return false
        structural.add(path)
        return true
      }
      const key = `${path}\0${f.error.type}\0${JSON.stringify(f.error.value)}\0${f.error.detail}`
      if (structural.has(path) || seen.has(key)) return false
      seen.add(key)
      return true
    })
    const order = new Map(kept.map((f) => [f, schemaOrder(this.schema, f.segs)]))
    return kept.sort((a, b) => compareOrder(order.get(a)!, order.get(b)!)).map((f) => f.error)
  }
}

function structuralError(e: ValueError, path: string): FieldError {
  const s = e.schema as TSchema & Record<string, unknown>
  const detail = typeof s.errorDetail === 'string' ? s.errorDetail : undefined
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return fieldError.required(path)
    case ValueErrorType.ObjectAdditionalProperties:
      return fieldError.forbidden(path, 'field not declared in schema')
    case ValueErrorType.String:
      return fieldError.invalid(path, e.value, 'must be a string')
    case ValueErrorType.Integer:
      return fieldError.invalid(path, e.value, 'must be an integer')
    case ValueErrorType.Number:
      return fieldError.invalid(path, e.value, 'must be a number')
    case ValueErrorType.Boolean:
      return fieldError.invalid(path, e.value, 'must be a boolean (true or false)')
    case ValueErrorType.Object:
      return fieldError.invalid(path, e.value, 'must be an object')
    case ValueErrorType.Array:
      return fieldError.invalid(path, e.value, 'must be a list')
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.NumberMaximum:
      return fieldError.invalid(path, e.value, detail ?? boundsText(s))
    case ValueErrorType.Literal:
      return fieldError.unsupported(path, e.value, [String(s.const)])
    case ValueErrorType.Union: {
      const options = (s.anyOf as Array<Record<string, unknown>> | undefined) ?? []
      if (options.length > 0 && options.every((o) => 'const' in o)) {
        return fieldError.unsupported(path, e.value, options.map((o) => String(o.const)))
      }
      return fieldError.invalid(path, e.value, e.message.toLowerCase())
    }
    default:
      return fieldError.invalid(path, e.value, e.message.toLowerCase())
  }
}

function boundsText(s: Record<string, unknown>): string {
  const { minimum: min, maximum: max } = s
  if (typeof min === 'number' && typeof max === 'number') return `must be between ${min} and ${max}`
  return typeof min === 'number' ? `must be at least ${min}` : `must be at most ${String(max)}`
}

type SchemaNode = Record<string, unknown> | undefined

/** TypeBox's JSON pointer (`/spec/attachments/1/ipv4Address`) as kubectl's path, walking the schema to tell list indexes and map keys from fields. */
function pointerToPath(schema: TSchema, pointer: string, at: Path): Path {
  let p = at
  let node: SchemaNode = schema
  const segs = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  for (const seg of segs) {
    const props = node?.properties as Record<string, SchemaNode> | undefined
    const pattern = node?.patternProperties as Record<string, SchemaNode> | undefined
    if (node?.type === 'array' && /^\d+$/.test(seg)) {
      p = p.index(Number(seg))
      node = node.items as SchemaNode
    } else if (props && Object.hasOwn(props, seg)) {
      p = p.child(seg)
      node = props[seg]
    } else if (pattern) {
      p = p.key(seg)
      node = Object.values(pattern)[0]
    } else {
      p = p.child(seg)
      node = undefined
    }
  }
  return p
}

/** Position of a path in document order: declared fields in schema order, list items by index, unknown fields last. */
function schemaOrder(schema: TSchema, segs: readonly Seg[]): number[] {
  const out: number[] = []
  let node: SchemaNode = schema
  for (const seg of segs) {
    const props = node?.properties as Record<string, SchemaNode> | undefined
    if (typeof seg === 'number') {
      out.push(seg)
      node = node?.items as SchemaNode
    } else if (props && Object.hasOwn(props, seg)) {
      out.push(Object.keys(props).indexOf(seg))
      node = props[seg]
    } else if (node?.patternProperties) {
      out.push(0)
      node = Object.values(node.patternProperties as Record<string, SchemaNode>)[0]
    } else {
      out.push(Number.MAX_SAFE_INTEGER)
      node = undefined
    }
  }
  return out
}

function compareOrder(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}
