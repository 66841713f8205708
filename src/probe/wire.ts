// The probe datagram: 16 bytes, a request that the peer's agent sends back
// with only its type changed. Small on purpose: one request and one reply per
// peer per round is the whole budget (see schedule.ts).
//
//   0..3  magic "WFPB"   4 version (1)   5 type (1 request, 2 reply)   6..7 zero
//   8..11 nonce (the prober's, random per agent run: a previous run's replies never count)
//   12..15 seq (the prober's probe number)
export const PROBE_BYTES = 16
const MAGIC = 0x57465042 // "WFPB"
const VERSION = 1

export type ProbeType = 'request' | 'reply'

export interface ProbeDatagram {
  type: ProbeType
  nonce: number
  seq: number
}

export function encodeProbe(p: ProbeDatagram): Buffer {
  const b = Buffer.alloc(PROBE_BYTES)
  b.writeUInt32BE(MAGIC, 0)
  b.writeUInt8(VERSION, 4)
  b.writeUInt8(p.type === 'request' ? 1 : 2, 5)
  b.writeUInt32BE(p.nonce >>> 0, 8)
  b.writeUInt32BE(p.seq >>> 0, 12)
  return b
}

/** The datagram, or undefined for anything that is not a probe of this version (ignored, never answered). */
export function decodeProbe(b: Buffer): ProbeDatagram | undefined {
  if (b.length !== PROBE_BYTES || b.readUInt32BE(0) !== MAGIC || b.readUInt8(4) !== VERSION || b.readUInt16BE(6) !== 0) return undefined
  const t = b.readUInt8(5)
  if (t !== 1 && t !== 2) return undefined
  return { type: t === 1 ? 'request' : 'reply', nonce: b.readUInt32BE(8), seq: b.readUInt32BE(12) }
}

/** The answer to a request: the same bytes, type reply. */
export function replyTo(request: Buffer): Buffer {
  const b = Buffer.from(request)
  b.writeUInt8(2, 5)
  return b
}
