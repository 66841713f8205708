// Prometheus series every controller gets from the runtime, labelled by
// controller name. One set per registry, so several managers can live in one
// process (tests, the lease-storm bench) without clashing registrations.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface RuntimeMetrics {
  reconciles: Counter<'controller' | 'result'>
  errors: Counter<'controller'>
  duration: Histogram<'controller'>
  depth: Gauge<'controller'>
}

const perRegistry = new WeakMap<Registry, RuntimeMetrics>()

export function runtimeMetrics(registry: Registry): RuntimeMetrics {
  let m = perRegistry.get(registry)
  if (m) return m
  const registers = [registry]
  m = {
    reconciles: new Counter({
      name: 'weft_reconcile_total',
      help: 'Reconciles by controller and result (success, requeue_after, error, terminal_error).',
      labelNames: ['controller', 'result'],
      registers,
    }),
    errors: new Counter({ name: 'weft_reconcile_errors_total', help: 'Reconciles that failed, by controller.', labelNames: ['controller'], registers }),
    duration: new Histogram({
      name: 'weft_reconcile_duration_seconds',
      help: 'Time spent in reconcile, by controller.',
      labelNames: ['controller'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    depth: new Gauge({ name: 'weft_workqueue_depth', help: 'Keys waiting for a worker, by controller.', labelNames: ['controller'], registers }),
  }
  perRegistry.set(registry, m)
  return m
}
