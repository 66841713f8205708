// Which WireGuard implementation this host's device runs, on /metrics.
import { Gauge, type Registry } from 'prom-client'
import type { WireguardBackend } from './backend.js'

export function registerWireguardMetrics(registry: Registry, backend: WireguardBackend): void {
  new Gauge({
    name: 'weft_wireguard_implementation',
    help: 'The WireGuard implementation of weft-wg: 1 for the one running (kernel or wireguard-go), absent while there is no device.',
    labelNames: ['implementation'],
    registers: [registry],
    collect() {
      this.reset()
      const impl = backend.implementation
      if (impl) this.set({ implementation: impl }, 1)
    },
  })
}
