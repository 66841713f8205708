// Validation errors shaped like the Kubernetes API server's (field.Error and
// a StatusReasonInvalid status), so weftctl's messages read like kubectl's:
//   OverlayConfig "default" is invalid: spec.subnetLen: Invalid value: 33: must be between 8 and 30

export type FieldErrorType =
  | 'Required value'
  | 'Invalid value'
  | 'Unsupported value'
  | 'Forbidden'
  | 'Duplicate value'
  | 'Too long'

/** One bad field. `path` is kubectl's: `spec.attachments[1].ipv4Address`, `metadata.labels[zone]`. */
export interface FieldError {
  path: string
  type: FieldErrorType
  /** the offending value, printed for the types that show one (see formatFieldError) */
  value?: unknown
  detail: string
}

// Kubernetes prints no value for these types, whatever was set.
const VALUELESS: ReadonlySet<FieldErrorType> = new Set(['Required value', 'Forbidden', 'Too long'])

/** A value as the API server prints it: strings quoted, numbers and booleans bare, anything else as JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (value === undefined) return 'null'
  return JSON.stringify(value)
}

/** `path: Type: value: detail`, omitting what kubectl omits. */
export function formatFieldError(e: FieldError): string {
  let s: string = e.type
  if (!VALUELESS.has(e.type) && 'value' in e) s += `: ${formatValue(e.value)}`
  if (e.detail) s += `: ${e.detail}`
  return e.path ? `${e.path}: ${s}` : s
}

/** One error as is, several as kubectl's aggregate `[a, b]`, repeats dropped. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  const lines = [...new Set(errors.map(formatFieldError))]
  return lines.length === 1 ? lines[0]! : `[${lines.join(', ')}]`
}

/**
 * A resource failed validation: the API server's StatusReasonInvalid. Carries
 * the resource's `kind` and `objectName` (as the store's errors do; `name`
 * stays the class's, so logs and `instanceof`-less checks read right) and
 * every bad field.
 */
export class InvalidError extends Error {
  override name = 'InvalidError'
  readonly kind: string
  readonly objectName: string
  readonly errors: readonly FieldError[]

  constructor(kind: string, objectName: string, errors: readonly FieldError[]) {
    super(`${kind} ${JSON.stringify(objectName)} is invalid: ${formatFieldErrors(errors)}`)
    this.kind = kind
    this.objectName = objectName
    this.errors = errors
  }
}

export const fieldError = {
  required: (path: string, detail = ''): FieldError => ({ path, type: 'Required value', detail }),
  invalid: (path: string, value: unknown, detail: string): FieldError => ({ path, type: 'Invalid value', value, detail }),
  unsupported: (path: string, value: unknown, supported: readonly string[], detail?: string): FieldError => ({
    path,
    type: 'Unsupported value',
    value,
    detail: detail ?? `supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
  }),
  forbidden: (path: string, detail: string): FieldError => ({ path, type: 'Forbidden', detail }),
  duplicate: (path: string, value: unknown, detail = ''): FieldError => ({ path, type: 'Duplicate value', value, detail }),
  tooLong: (path: string, max: number): FieldError => ({ path, type: 'Too long', detail: `may not be more than ${max} bytes` }),
}
