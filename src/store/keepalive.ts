// Lease renewals over one LeaseKeepAlive stream per client, kept open between
// them. An agent renews its reachability report's etcd lease every 10 s
// (probe/publisher.ts); a stream opened and closed per renewal was most of an
// idle fleet's CPU, the agents' and etcd's (bench/fleet.ts prints both).
//
// etcd answers one stream's requests in order, each answer naming its lease,
// so a renewal takes the first answer for its lease. A renewal not answered
// within its deadline (a hung member) drops the stream, as does any error or
// end of it; the renewals waiting on it fail, and the next one opens a new
// stream on whichever member the client picks (its retry moves on from a
// member that failed, see Store.keepAliveOnce).
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3'
import { abandon } from './streams.js'

/** etcd3 types the stream narrowly; it is grpc's ClientDuplexStream */
export type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> & { cancel(): void; removeAllListeners(): unknown }

interface Waiting {
  leaseID: string
  resolve: (ttl: number) => void
  reject: (err: unknown) => void
  timer: NodeJS.Timeout
}

interface Open {
  stream: KeepAliveStream
  waiting: Waiting[]
  dropped: boolean
}

export class KeepAliveChannel {
  private current: Open | undefined
  private opening: Promise<Open> | undefined
  private closed = false

  constructor(
    /** a new LeaseKeepAlive stream (no deadline: each renewal has its own) */
    private readonly connect: () => Promise<KeepAliveStream>,
    /** the error a renewal fails with when its stream ended or went silent */
    private readonly unavailable: (why: string) => Error,
  ) {}

  /** Renew `leaseID` once: its TTL now, 0 when etcd no longer has it. */
  async renew(leaseID: string, timeoutMs: number): Promise<number> {
    if (this.closed) throw this.unavailable('the client was closed')
    const open = this.current ?? (await (this.opening ??= this.start().finally(() => (this.opening = undefined))))
    // dropped while we waited for it to open: a renewal on it would never be answered, nor failed
    if (open.dropped) throw this.unavailable('the keepalive stream ended')
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.drop(open, this.unavailable(`no answer to a lease keepalive within ${timeoutMs} ms`)), timeoutMs)
      open.waiting.push({ leaseID, resolve, reject, timer })
      open.stream.write({ ID: leaseID })
    })
  }

  /** Fail what waits and let the stream go (the client closing). */
  close(): void {
    this.closed = true
    if (this.current) this.drop(this.current, this.unavailable('the client was closed'))
  }

  private async start(): Promise<Open> {
    const stream = await this.connect()
    const open: Open = { stream, waiting: [], dropped: false }
    stream.on('data', (res: ILeaseKeepAliveResponse) => {
      const i = open.waiting.findIndex((w) => w.leaseID === res.ID)
      if (i < 0) return
      const [w] = open.waiting.splice(i, 1)
      clearTimeout(w!.timer)
      w!.resolve(Number(res.TTL))
    })
    stream.on('error', (err: unknown) => this.drop(open, err))
    stream.on('end', () => this.drop(open, this.unavailable('the keepalive stream ended')))
    if (this.closed) {
      this.drop(open, this.unavailable('the client was closed'))
      throw this.unavailable('the client was closed')
    }
    this.current = open
    return open
  }

  /** the stream given up: its renewals fail with `err`, the next renewal opens another */
  private drop(open: Open, err: unknown): void {
    if (this.current === open) this.current = undefined
    if (open.dropped) return
    open.dropped = true
    for (const w of open.waiting.splice(0)) {
      clearTimeout(w.timer)
      w.reject(err)
    }
    abandon(open.stream)
  }
}
