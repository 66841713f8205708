// The udp forwarder's counters on /metrics, read at scrape time.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { UdpBackend } from './backend.js'
import type { UdpForwarderCounters } from './forwarder.js'

/** The forwarder's counters on /metrics, read at scrape time (they restart at 0 with a new forwarder). */
export function registerUdpMetrics(registry: Registry, backend: UdpBackend): void {
  const registers = [registry]
  // a native read is a few atomic loads: each series reads afresh
  const read = () => backend.counters()
  const perDirection = (name: string, what: string, tx: keyof UdpForwarderCounters, rx: keyof UdpForwarderCounters) =>
    new Counter({
      name,
      help: `Overlay ${what} the udp forwarder carried: tx = TUN to peer, rx = peer to TUN.`,
      labelNames: ['direction'],
      registers,
      collect() {
        const c = read()
        this.reset()
        if (!c) return
        this.inc({ direction: 'tx' }, c[tx])
        this.inc({ direction: 'rx' }, c[rx])
      },
    })
  perDirection('weft_udp_packets_total', 'packets', 'txPackets', 'rxPackets')
  perDirection('weft_udp_bytes_total', 'bytes', 'txBytes', 'rxBytes')
  const reasons = { noRoute: 'no_route', unknownSender: 'unknown_sender', spoofedSource: 'spoofed_source', malformed: 'malformed', tunWriteErrors: 'tun_write_error', sendErrors: 'send_error' } as const
  new Counter({
    name: 'weft_udp_dropped_total',
    help: 'Packets the udp forwarder dropped, by reason (unknown_sender: a datagram from an address that holds no live lease).',
    labelNames: ['reason'],
    registers,
    collect() {
      const c = read()
      this.reset()
      if (!c) return
      for (const [k, reason] of Object.entries(reasons)) this.inc({ reason }, c[k as keyof typeof reasons])
    },
  })
  new Gauge({
    name: 'weft_udp_forwarder_open',
    help: '1 while the udp forwarder (TUN weft0) is open.',
    registers,
    collect() {
      this.set(read() ? 1 : 0)
    },
  })
}
