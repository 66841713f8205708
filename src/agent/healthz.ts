// /livez, /readyz, /healthz and /metrics on --healthz-addr (DESIGN.md §5),
// plain text with the reason, so `curl` shows why.
//  - /livez: what a liveness probe or watchdog restarts the agent on. 200 while
//    its own loops run: this answer needs the event loop, and no controller's
//    reconcile has been running longer than STUCK_MS (every etcd, docker and
//    command call is bounded far below that). Never etcd, peers or dockerd:
//    restarting a whole fleet because etcd is away would only drop the udp
//    data path on every host at once.
//  - /readyz: 200 only when every controller of this host is converged and
//    etcd answered the last probe (etcdprobe.ts); otherwise 503.
//  - /healthz: the same as /readyz, for flannel-style probes.
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { Gauge, collectDefaultMetrics, type Registry } from 'prom-client'
import type { LeaseHolder } from '../lease/held.js'
import type { Controller, HostReadiness, Runnable } from '../runtime/index.js'
import type { EtcdProbe } from './etcdprobe.js'

export interface HealthzOptions {
  host: string
  port: number
  readiness: HostReadiness
  probe: EtcdProbe
  holder: LeaseHolder
  /** the agent's controllers, whose work loops /livez watches */
  controllers: () => readonly Controller[]
  registry: Registry
  logger: Logger
}

export interface Health {
  ok: boolean
  reason: string
}

/** A reconcile running this long is stuck (its calls all time out far sooner). */
export const STUCK_MS = 5 * 60_000

export function liveness(controllers: readonly Pick<Controller, 'name' | 'longestRunning'>[], now = Date.now()): Health {
  for (const c of controllers) {
    const r = c.longestRunning()
    if (r && now - r.since > STUCK_MS) return { ok: false, reason: `controller ${c.name} stuck: reconcile of "${r.key}" running for ${Math.round((now - r.since) / 1000)} s` }
  }
  return { ok: true, reason: 'ok' }
}

/** /readyz (and /healthz) */
export function health(readiness: HostReadiness, probe: EtcdProbe): Health {
  const etcd = probe.status
  if (!etcd) return { ok: false, reason: 'etcd not probed yet' }
  if (!etcd.reachable) return { ok: false, reason: `etcd unreachable: ${etcd.error ?? 'no answer'}` }
  const r = readiness.readiness()
  return r.ready ? { ok: true, reason: 'ok' } : { ok: false, reason: `not converged: ${r.message}` }
}

export class HealthzServer implements Runnable {
  readonly name = 'healthz'
  private server: Server | undefined

  constructor(private readonly opts: HealthzOptions) {
    registerHostMetrics(opts)
  }

  /** the bound address (port 0 in flags picks a free one) */
  get address(): AddressInfo | undefined {
    const a = this.server?.address()
    return a && typeof a === 'object' ? a : undefined
  }

  async start(): Promise<void> {
    const { readiness, probe, registry, controllers } = this.opts
    const answer = (res: ServerResponse, h: Health) => res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(`${h.reason}\n`)
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end()
      } else if (path === '/livez') {
        answer(res, liveness(controllers()))
      } else if (path === '/readyz' || path === '/healthz') {
        answer(res, health(readiness, probe))
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(`${err.message}\n`),
        )
      } else {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found; try /livez, /readyz, /healthz or /metrics\n')
      }
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.opts.logger.info({ addr: `${this.address?.address}:${this.address?.port}` }, 'serving /livez, /readyz, /healthz and /metrics')
  }

  async stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
}

/** Host-level series: lease state, readiness, plus the process's own (RSS, CPU, event loop). */
function registerHostMetrics({ registry, readiness, holder }: HealthzOptions): void {
  // the event-loop lag histogram samples on a timer: prom-client's default (every 10 ms, 100
  // wake-ups a second) was most of an idle agent's CPU; once a second still shows a stalled loop
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 })
  new Gauge({
    name: 'weft_lease_held',
    help: '1 while this host holds a lease of its overlay, labelled with the subnet; 0 otherwise.',
    labelNames: ['overlay', 'subnet'],
    registers: [registry],
    collect() {
      this.reset()
      const h = holder.current
      if (h) this.set({ overlay: h.overlay, subnet: h.lease.spec.subnet }, 1)
      else this.set({ overlay: '', subnet: '' }, 0)
    },
  })
  new Gauge({
    name: 'weft_lease_expire_timestamp_seconds',
    help: "When this host's lease lapses unless renewed (Unix time); absent for reserved leases.",
    registers: [registry],
    collect() {
      this.reset()
      const t = holder.expireAt
      if (t !== undefined) this.set(Math.round(t / 1000))
    },
  })
  new Gauge({
    name: 'weft_condition',
    help: 'Host conditions (Ready and one per controller): 1 for the current status.',
    labelNames: ['type', 'status', 'reason'],
    registers: [registry],
    collect() {
      this.reset()
      for (const c of readiness.conditions()) this.set({ type: c.type, status: c.status, reason: c.reason }, 1)
    },
  })
}
