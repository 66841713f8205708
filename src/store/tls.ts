// TLS to etcd (--cacert --cert --key, or https:// endpoints).
//
// grpc-js's own TLS credentials send the endpoint's host as SNI even when it
// is an IP address, which RFC 6066 forbids and Node answers with a DEP0123
// warning on stderr at every start. Ours are the same TLS (same context,
// same certificate check against the host, IP SANs included) without SNI for
// an IP, and one per member, so each knows its own host.
//
// They also keep the last TLS failure per member, with Node's error code: grpc
// reports a failed connection only as text ("No connection established"), and
// a user needs to read which certificate is wrong (see TlsError).
import { readFileSync } from 'node:fs'
import { isIP, type Socket } from 'node:net'
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls'
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js'
import { StoreError } from './errors.js'

export interface TlsFiles {
  cacert?: string
  cert?: string
  key?: string
}

export interface TlsFailure {
  member: string
  /** Node/OpenSSL error code, e.g. SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID */
  code: string
  message: string
  at: number
}

/** How long a TLS failure explains a later "unreachable" for that member. */
const FAILURE_MEMORY_MS = 15_000
/** a quiet diagnosis waits this long per member for the server's verdict */
const DIAGNOSIS_MS = 1000
/** and runs at most this often, so an outage costs no probe per failed call */
const DIAGNOSIS_EVERY_MS = 10_000

export class TlsSettings {
  readonly context: SecureContext
  private readonly failures = new Map<string, TlsFailure>()

  constructor(readonly files: TlsFiles) {
    const read = (flag: string, path: string | undefined) => {
      if (!path) return undefined
      try {
        return readFileSync(path)
      } catch (err) {
        throw new StoreError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
      }
    }
    const ca = read('--cacert', files.cacert)
    const cert = read('--cert', files.cert)
    const key = read('--key', files.key)
    if (Boolean(cert) !== Boolean(key)) throw new StoreError(`--cert and --key go together: ${cert ? '--key' : '--cert'} is missing`)
    try {
      this.context = createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) })
    } catch (err) {
      throw new StoreError(`cannot use the TLS files (--cacert/--cert/--key): ${(err as Error).message}`)
    }
  }

  /** channel credentials for one member, `host:port` */
  credentialsFor(member: string): ChannelCredentials {
    return new MemberTlsCredentials(this, member)
  }

  /** the latest TLS failure of any of these members, if it is recent */
  recentFailure(now = Date.now()): TlsFailure | undefined {
    let latest: TlsFailure | undefined
    for (const f of this.failures.values()) if (now - f.at < FAILURE_MEMORY_MS && (!latest || f.at > latest.at)) latest = f
    return latest
  }

  private lastDiagnosis = 0

  /**
   * Ask the members once more, quietly, why TLS failed. Under TLS 1.3 a server
   * refusing a missing client certificate says so just after the handshake;
   * once grpc has written its preface, the server's reset can destroy that
   * alert unread, and the call fails as if the network had. A connection that
   * writes nothing reads the alert. At most once per DIAGNOSIS_EVERY_MS, each
   * member bounded by DIAGNOSIS_MS; the failure it finds is recorded.
   */
  async diagnose(endpoints: readonly string[], now = Date.now()): Promise<TlsFailure | undefined> {
    if (now - this.lastDiagnosis < DIAGNOSIS_EVERY_MS) return this.recentFailure()
    this.lastDiagnosis = now
    await Promise.all(endpoints.filter((e) => e.startsWith('https://')).map((e) => this.probe(new URL(e).host)))
    return this.recentFailure()
  }

  private probe(member: string): Promise<void> {
    const host = hostOf(member)
    const port = Number(/:(\d+)$/.exec(member)?.[1] ?? 2379)
    return new Promise((resolve) => {
      const tls = tlsConnect({ host, port, secureContext: this.context, ...(isIP(host) ? {} : { servername: host }), ALPNProtocols: ['h2'] }, () => {
        if (!tls.authorized) this.record(member, tls.authorizationError as NodeJS.ErrnoException)
        tls.resume() // read, never write: the server's verdict, if any, arrives as an error
      })
      const done = () => {
        clearTimeout(timer)
        tls.destroy()
        resolve()
      }
      const timer = setTimeout(done, DIAGNOSIS_MS)
      tls.on('error', (err: NodeJS.ErrnoException) => {
        this.record(member, err)
        done()
      })
      tls.on('close', done)
    })
  }

  /** @internal */
  record(member: string, err: NodeJS.ErrnoException | undefined): void {
    if (!err) {
      this.failures.delete(member)
      return
    }
    // a reset or a closed socket is the network, not a certificate
    if (!err.code || /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|ERR_STREAM_PREMATURE_CLOSE)$/.test(err.code)) return
    this.failures.set(member, { member, code: err.code, message: err.message, at: Date.now() })
  }
}

class MemberTlsCredentials extends ChannelCredentials {
  constructor(
    private readonly settings: TlsSettings,
    private readonly member: string,
  ) {
    super()
  }

  _isSecure(): boolean {
    return true
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this
  }

  _createSecureConnector(_target: unknown, _options: unknown, callCredentials?: CallCredentials) {
    const { settings, member } = this
    const host = hostOf(member)
    return {
      connect(socket: Socket) {
        return new Promise<{ socket: Socket; secure: boolean }>((resolve, reject) => {
          const tls = tlsConnect(
            { socket, secureContext: settings.context, host, ...(isIP(host) ? {} : { servername: host }), ALPNProtocols: ['h2'] },
            () => {
              if (!tls.authorized) {
                settings.record(member, tls.authorizationError as NodeJS.ErrnoException)
                reject(tls.authorizationError)
                return
              }
              settings.record(member, undefined)
              resolve({ socket: tls, secure: true })
            },
          )
          // TLS 1.3: a server refusing our client certificate says so after the handshake
          tls.on('error', (err: NodeJS.ErrnoException) => {
            settings.record(member, err)
            reject(err)
          })
        })
      },
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials ?? CallCredentials.createEmpty(),
      destroy: () => undefined,
    }
  }
}

/** `host:port`, `[v6]:port` -> the host, as a certificate names it */
export function hostOf(member: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(member) ?? /^([^:]+)(?::\d+)?$/.exec(member)
  return m ? m[1]! : member
}
