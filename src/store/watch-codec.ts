// etcd's WatchResponse read by hand, into the very object etcd3's own decoder
// makes (proto-loader with keepCase, longs: String, enums: String, defaults:
// true), so everything downstream is unchanged. Hand-written for speed: every
// watch message of every agent passes here, and protobufjs' generic decode
// plus its conversion of every int64 through `long` was a tenth of a host's
// CPU per join at thousands of hosts (bench/fleet.ts --profile).
// test/unit/watch-codec.test.ts checks it field by field against etcd3's
// decoder on generated messages, unknown fields and huge numbers included.
import type { IEvent, IKeyValue, IResponseHeader, IWatchResponse } from 'etcd3'

// wire types
const VARINT = 0
const FIXED64 = 1
const LENGTH = 2
const GROUP_START = 3
const GROUP_END = 4
const FIXED32 = 5

/** A position in one message (or sub-message) of `buf`; the last varint read lands in lo and hi, 32 bits each. */
class Reader {
  lo = 0
  hi = 0

  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get more(): boolean {
    return this.pos < this.end
  }

  private byte(): number {
    if (this.pos >= this.end) throw new RangeError('WatchResponse: truncated message')
    return this.buf[this.pos++]!
  }

  varint(): void {
    let lo = 0
    let b = 0
    // seven bits a byte: four whole bytes fill lo's low 28 bits, the fifth splits between lo and hi
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byte()
      lo |= (b & 0x7f) << shift
      if (b < 0x80) return this.set(lo, 0)
    }
    b = this.byte()
    lo |= (b & 0x0f) << 28
    let hi = (b & 0x7f) >> 4
    if (b < 0x80) return this.set(lo, hi)
    for (let shift = 3; shift < 32; shift += 7) {
      b = this.byte()
      hi |= (b & 0x7f) << shift
      if (b < 0x80) return this.set(lo, hi)
    }
    throw new RangeError('WatchResponse: varint longer than 10 bytes')
  }

  private set(lo: number, hi: number): void {
    this.lo = lo >>> 0
    this.hi = hi >>> 0
  }

  /** the length of a length-delimited field, checked against what is left */
  length(): number {
    this.varint()
    if (this.hi !== 0 || this.lo > this.end - this.pos) throw new RangeError('WatchResponse: length beyond the message')
    return this.lo
  }

  /** the last varint as uint64, in decimal */
  unsigned(): string {
    if (this.hi === 0) return String(this.lo)
    // below 2^53 a double holds it exactly
    if (this.hi < 0x200000) return String(this.hi * 0x100000000 + this.lo)
    return ((BigInt(this.hi) << 32n) | BigInt(this.lo)).toString()
  }

  /** the last varint as int64 (two's complement), in decimal */
  signed(): string {
    if (this.hi < 0x80000000) return this.unsigned()
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo)).toString()
  }

  get bool(): boolean {
    return this.lo !== 0 || this.hi !== 0
  }

  bytes(): Buffer {
    const n = this.length()
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** a sub-message's reader; this one moves past it */
  sub(): Reader {
    const n = this.length()
    const r = new Reader(this.buf, this.pos, this.pos + n)
    this.pos += n
    return r
  }

  skip(wireType: number, field: number): void {
    if (wireType === VARINT) this.varint()
    else if (wireType === FIXED64) this.advance(8)
    else if (wireType === LENGTH) this.advance(this.length())
    else if (wireType === FIXED32) this.advance(4)
    else if (wireType === GROUP_START) {
      for (;;) {
        this.varint()
        const wt = this.lo & 7
        if (wt === GROUP_END) {
          if (this.lo >>> 3 !== field) throw new RangeError('WatchResponse: group ended by another field')
          return
        }
        this.skip(wt, this.lo >>> 3)
      }
    } else throw new RangeError(`WatchResponse: wire type ${wireType} of field ${field}`)
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new RangeError('WatchResponse: truncated message')
    this.pos += n
  }
}

/** A WatchResponse as etcd3 hands it to a watch stream's 'data' listeners. */
export function decodeWatchResponse(buf: Buffer): IWatchResponse {
  const r = new Reader(buf, 0, buf.length)
  const out: IWatchResponse = {
    header: null as unknown as IResponseHeader,
    watch_id: '0',
    created: false,
    canceled: false,
    compact_revision: '0',
    cancel_reason: '',
    fragment: false,
    events: [],
  }
  while (r.more) {
    r.varint()
    const field = r.lo >>> 3
    const wireType = r.lo & 7
    if (wireType === VARINT && field >= 2 && field <= 7 && field !== 6) {
      r.varint()
      if (field === 2) out.watch_id = r.signed()
      else if (field === 3) out.created = r.bool
      else if (field === 4) out.canceled = r.bool
      else if (field === 5) out.compact_revision = r.signed()
      else out.fragment = r.bool
    } else if (field === 1 && wireType === LENGTH) out.header = header(r.sub())
    else if (field === 6 && wireType === LENGTH) out.cancel_reason = r.bytes().toString('utf8')
    else if (field === 11 && wireType === LENGTH) out.events.push(event(r.sub()))
    else r.skip(wireType, field)
  }
  return out
}

function header(r: Reader): IResponseHeader {
  const out: IResponseHeader = { cluster_id: '0', member_id: '0', revision: '0', raft_term: '0' }
  while (r.more) {
    r.varint()
    const field = r.lo >>> 3
    const wireType = r.lo & 7
    if (wireType !== VARINT || field < 1 || field > 4) {
      r.skip(wireType, field)
      continue
    }
    r.varint()
    if (field === 1) out.cluster_id = r.unsigned()
    else if (field === 2) out.member_id = r.unsigned()
    else if (field === 3) out.revision = r.signed()
    else out.raft_term = r.unsigned()
  }
  return out
}

/** as etcd3's enums: String, a value this proto does not name stays a number */
const EVENT_TYPES: readonly string[] = ['Put', 'Delete']

function event(r: Reader): IEvent {
  const out = { type: 'Put', kv: null, prev_kv: null } as unknown as IEvent
  while (r.more) {
    r.varint()
    const field = r.lo >>> 3
    const wireType = r.lo & 7
    if (field === 1 && wireType === VARINT) {
      r.varint()
      const n = r.lo | 0
      ;(out as { type: unknown }).type = r.hi === 0 && n >= 0 && n < EVENT_TYPES.length ? EVENT_TYPES[n] : n
    } else if (field === 2 && wireType === LENGTH) out.kv = keyValue(r.sub())
    else if (field === 3 && wireType === LENGTH) out.prev_kv = keyValue(r.sub())
    else r.skip(wireType, field)
  }
  return out
}

const EMPTY = Buffer.alloc(0)

function keyValue(r: Reader): IKeyValue {
  const out: IKeyValue = { key: EMPTY, create_revision: '0', mod_revision: '0', version: '0', value: EMPTY, lease: '0' }
  while (r.more) {
    r.varint()
    const field = r.lo >>> 3
    const wireType = r.lo & 7
    if (field === 1 && wireType === LENGTH) out.key = r.bytes()
    else if (field === 5 && wireType === LENGTH) out.value = r.bytes()
    else if (field >= 2 && field <= 6 && field !== 5 && wireType === VARINT) {
      r.varint()
      const n = r.signed()
      if (field === 2) out.create_revision = n
      else if (field === 3) out.mod_revision = n
      else if (field === 4) out.version = n
      else out.lease = n
    } else r.skip(wireType, field)
  }
  return out
}
