// Typed errors of the store, shaped like the Kubernetes API server's so
// callers can `instanceof` them and users read a one-line reason.
export class StoreError extends Error {
  override name = 'StoreError'
}

export class NotFoundError extends StoreError {
  override name = 'NotFoundError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`${kind} "${objectName}" not found`)
  }
}

export class AlreadyExistsError extends StoreError {
  override name = 'AlreadyExistsError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`${kind} "${objectName}" already exists`)
  }
}

/** The object changed since it was read (compare-and-swap lost). */
export class ConflictError extends StoreError {
  override name = 'ConflictError'
  constructor(readonly kind: string, readonly objectName: string) {
    super(`Operation cannot be fulfilled on ${kind} "${objectName}": the object has been modified; please apply your changes to the latest version and try again`)
  }
}

/** etcd could not be reached or did not answer in time (every member tried). */
export class UnavailableError extends StoreError {
  override name = 'UnavailableError'
  constructor(readonly endpoints: string[], cause: unknown) {
    super(`cannot reach etcd at ${endpoints.join(',')}: ${describeCause(cause)}`, { cause })
  }
}

/** etcd answered, and refused: the credentials lack a grant (or etcd auth rejected them). */
export class PermissionDeniedError extends StoreError {
  override name = 'PermissionDeniedError'
  constructor(readonly prefix: string, cause: unknown) {
    super(`etcd denied the request (${describeCause(cause)}): the client needs read/write on the prefix ${prefix}`, { cause })
  }
}

/** The TLS handshake with a member failed: a certificate problem, named with OpenSSL's code. */
export class TlsError extends StoreError {
  override name = 'TlsError'
  constructor(
    readonly member: string,
    /** Node/OpenSSL error code, e.g. SELF_SIGNED_CERT_IN_CHAIN */
    readonly code: string,
    detail: string,
    cause?: unknown,
  ) {
    super(`TLS to etcd at ${member} failed: ${detail} (${code})`, { cause })
  }
}

/** The revision asked for is older than etcd's last compaction. */
export class CompactedError extends StoreError {
  override name = 'CompactedError'
  constructor(
    /** the revision asked for, when known */
    readonly revision?: string,
    /** the oldest revision etcd still has, when it said */
    readonly compactRevision?: string,
  ) {
    super(`etcd has compacted away revision ${revision ?? 'asked for'}${compactRevision && compactRevision !== '0' ? ` (oldest kept: ${compactRevision})` : ''}; list again`)
  }
}

/** etcd answered with an error of its own (e.g. request too large). */
export class EtcdRequestError extends StoreError {
  override name = 'EtcdRequestError'
  constructor(cause: unknown) {
    super(`etcd refused the request: ${describeCause(cause)}`, { cause })
  }
}

function describeCause(cause: unknown): string {
  const msg = cause instanceof Error ? cause.message : String(cause)
  // grpc messages carry a code prefix, a resolver note and a timestamp that say nothing to a user
  return msg
    .split('\n')[0]!
    .replace(/^(\w+: )?\d+ [A-Z_]+: /, '')
    .replace(/\.?\s*Resolution note:.*$/, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/^etcdserver: /, '')
}
