// The probe's one UDP socket, the adapter between schedule.ts and the kernel:
// bound to this host's overlay address (targets.ts) on PROBE_PORT, it sends
// this host's requests from that address, so they leave through the backend
// exactly as container traffic does, and it answers other hosts' requests.
// Only sources inside the overlay network are answered: the address is local,
// so a datagram could also arrive over the underlay, and that is no probe.
import { createSocket, type Socket } from 'node:dgram'
import { contains, tryParseIPv4, type Cidr } from '../net/cidr.js'
import { decodeProbe, encodeProbe, replyTo, type ProbeDatagram } from './wire.js'

/** The overlay address is not (yet) on this host: the data path has not put it there. */
export class ProbeBindError extends Error {
  override name = 'ProbeBindError'
  constructor(
    readonly address: string,
    readonly port: number,
    cause: unknown,
  ) {
    super(`cannot bind the probe socket to ${address}:${port}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`)
  }
}

export interface ProbeSocketOptions {
  address: string
  port: number
  /** the overlay network: requests from elsewhere are not answered */
  network: Cidr
  onReply(from: string, reply: ProbeDatagram, at: number): void
}

export class ProbeSocket {
  /** requests answered / datagrams ignored, for the metrics */
  answered = 0
  ignored = 0

  private constructor(
    private readonly sock: Socket,
    readonly address: string,
    readonly port: number,
  ) {}

  static async open(opts: ProbeSocketOptions): Promise<ProbeSocket> {
    // replies and peers' requests arrive at ~2 per peer per round: room for a stalled event loop (capped by net.core.rmem_max)
    const sock = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (err) => reject(new ProbeBindError(opts.address, opts.port, err)))
      sock.bind({ address: opts.address, port: opts.port, exclusive: true }, () => resolve())
    }).catch((err) => {
      sock.close()
      throw err
    })
    const s = new ProbeSocket(sock, opts.address, opts.port)
    // errors after bind are per send (reported to the sender's callback); never crash the agent
    sock.on('error', () => undefined)
    sock.on('message', (msg, rinfo) => {
      const d = decodeProbe(msg)
      const src = tryParseIPv4(rinfo.address)
      if (!d || src === undefined || !contains(opts.network, src)) {
        s.ignored++
        return
      }
      if (d.type === 'reply') {
        opts.onReply(rinfo.address, d, Date.now())
        return
      }
      s.answered++
      sock.send(replyTo(msg), rinfo.port, rinfo.address, () => undefined)
    })
    sock.unref()
    return s
  }

  /** Send a request; rejects with the kernel's reason when it cannot leave (no route, address gone). */
  send(address: string, request: ProbeDatagram): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(encodeProbe(request), this.port, address, (err) => (err ? reject(err) : resolve())))
  }

  close(): void {
    try {
      this.sock.close()
    } catch {
      // already closed
    }
  }
}
