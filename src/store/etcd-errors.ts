// etcd3's errors -> the store's typed errors (errors.ts), so a caller can
// `instanceof` what happened and a user reads one line that says it:
// unreachable, a certificate problem, permission denied, a compacted
// revision, or another refusal by etcd. A JavaScript error that is not
// etcd's (a bug) passes through unchanged rather than posing as "unreachable".
import { BrokenCircuitError } from 'cockatiel'
import {
  castGrpcError,
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCGenericError,
  GRPCOutOfRangeError,
  GRPCUnauthenticatedError,
  isRecoverableError,
} from 'etcd3'
import { CompactedError, EtcdRequestError, PermissionDeniedError, TlsError, UnavailableError } from './errors.js'
import { MemberSkippedError } from './members.js'
import type { TlsFailure, TlsSettings } from './tls.js'

export interface ErrorContext {
  endpoints: string[]
  prefix: string
  tls?: TlsSettings | undefined
}

export function toStoreError(raw: unknown, ctx: ErrorContext): unknown {
  if (!(raw instanceof Error)) return new UnavailableError(ctx.endpoints, raw)
  // errors of a stream (keepalive) arrive as grpc's plain Error with a code
  const err = castGrpcError(raw)
  if (
    err instanceof EtcdPermissionDeniedError ||
    err instanceof GRPCUnauthenticatedError ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdInvalidAuthTokenError
  ) {
    return new PermissionDeniedError(ctx.prefix, err)
  }
  // OutOfRange is etcd's code for both a compacted and a future revision
  if (err instanceof GRPCOutOfRangeError && /compacted/.test(err.message)) return new CompactedError()
  if (isRecoverableError(err) || err instanceof MemberSkippedError || err instanceof BrokenCircuitError || err instanceof ClientClosedError) {
    const tls = ctx.tls?.recentFailure()
    return tls ? tlsError(tls, ctx.tls!) : new UnavailableError(ctx.endpoints, err)
  }
  if (err instanceof EtcdError || err instanceof GRPCGenericError) return new EtcdRequestError(err)
  return raw
}

const UNTRUSTED_SERVER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
])
const CLIENT_CERT_MISSING = new Set(['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'])
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
])

function tlsError(f: TlsFailure, tls: TlsSettings): TlsError {
  const { cacert, cert } = tls.files
  let detail: string
  if (UNTRUSTED_SERVER.has(f.code)) {
    detail = cacert ? `its server certificate is not signed by the CA in --cacert ${cacert}` : 'its server certificate is not signed by a CA this machine trusts; pass --cacert'
  } else if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    detail = `its server certificate is not valid for this address: ${f.message.replace(/^[^:]*: /, '')}`
  } else if (f.code === 'CERT_HAS_EXPIRED' || f.code === 'CERT_NOT_YET_VALID') {
    detail = `its server certificate is ${f.code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not valid yet'}`
  } else if ((CLIENT_CERT_MISSING.has(f.code) || CLIENT_CERT_REFUSED.has(f.code)) && !cert) {
    // etcd (Go) answers a missing certificate with bad_certificate under TLS 1.2
    detail = 'etcd requires a client certificate; pass --cert and --key'
  } else if (CLIENT_CERT_MISSING.has(f.code) || CLIENT_CERT_REFUSED.has(f.code)) {
    detail = `etcd refused the client certificate --cert ${cert} (not signed by a CA etcd trusts?)`
  } else if (f.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || f.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    detail = 'the member does not speak TLS; use an http:// endpoint without --cacert'
  } else {
    detail = f.message
  }
  return new TlsError(f.member, f.code, detail)
}
