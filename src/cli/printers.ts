// Output formats of `get`, as kubectl prints them: aligned tables with
// upper-case headers (and more columns with -o wide), the whole object as YAML
// or JSON (several as a `kind: List`), or `kind/name` lines.
import { stringify } from 'yaml'
import { KINDS, type AnyResource, type KindInfo } from '../crds/kinds.js'
import type { Condition } from '../crds/meta.js'
import { describeInvalid, type InvalidObject } from '../store/index.js'
import { UsageError } from './errors.js'

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name'
const FORMATS: readonly OutputFormat[] = ['wide', 'yaml', 'json', 'name']

export function outputFormat(flag: string | undefined): OutputFormat {
  if (flag === undefined || flag === '') return 'table'
  if ((FORMATS as readonly string[]).includes(flag)) return flag as OutputFormat
  throw new UsageError(`unable to match a printer suitable for the output format "${flag}", allowed formats are: ${[...FORMATS].sort().join(',')}`)
}

// --- durations, as kubectl's AGE column ------------------------------------------------------------

/**
 * kubectl's human duration: precise while short, coarser as it grows
 * (`45s`, `5m12s`, `3h`, `2d5h`, `400d`, `3y`).
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000)
  if (seconds < -1) return '<invalid>'
  if (seconds < 0) return '0s'
  if (seconds < 60 * 2) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`
  if (minutes < 60 * 3) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`
  if (hours < 48) return `${hours}h`
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`
  const days = Math.floor(hours / 24)
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`
  return `${Math.floor(days / 365)}y`
}

export function age(timestamp: string | undefined, now: number): string {
  const t = timestamp ? Date.parse(timestamp) : NaN
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t)
}

// --- tables ----------------------------------------------------------------------------------------

/** kubectl's tabwriter settings: columns three spaces apart, the last one unpadded. */
const GAP = 3

export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return widths
}

export function formatRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? cell.length) + GAP)))
    .join('')
    .trimEnd()
}

export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths = columnWidths(rows)
  return rows.map((r) => formatRow(r, widths) + '\n').join('')
}

const NONE = '<none>'

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return NONE
  return String(v)
}

export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b))
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : NONE
}

function conditionStatus(conditions: readonly Condition[] | undefined, type: string): string | undefined {
  return conditions?.find((c) => c.type === type)?.status
}

interface Columns {
  headers: string[]
  wideHeaders: string[]
  row(obj: AnyResource, now: number): string[]
  wideRow(obj: AnyResource, now: number): string[]
}

const overlayColumns: Columns = {
  headers: ['NAME', 'NETWORK', 'BACKEND', 'SUBNETLEN', 'AGE'],
  wideHeaders: ['MTU', 'IPMASQ', 'LEASETTL', 'IPV6NETWORK'],
  row: (o, now) => {
    if (o.kind !== 'OverlayConfig') return []
    return [o.metadata.name, cell(o.spec.network), cell(o.spec.backend?.type), cell(o.spec.subnetLen), age(o.metadata.creationTimestamp, now)]
  },
  wideRow: (o) => {
    if (o.kind !== 'OverlayConfig') return []
    // 0 is a setting, not an absence: derive the MTU from the underlay link
    return [o.spec.mtu === 0 ? 'auto' : cell(o.spec.mtu), cell(o.spec.ipMasq), cell(o.spec.leaseTTL), cell(o.spec.ipv6Network)]
  },
}

const leaseColumns: Columns = {
  headers: ['NAME', 'OVERLAY', 'SUBNET', 'PUBLICIP', 'BACKEND', 'READY', 'AGE'],
  wideHeaders: ['IPV6SUBNET', 'EXPIRES', 'LABELS'],
  row: (o, now) => {
    if (o.kind !== 'HostLease') return []
    const ready = conditionStatus(o.status?.conditions, 'Ready') ?? 'Unknown'
    return [o.metadata.name, cell(o.spec.overlay), cell(o.spec.subnet), cell(o.spec.publicIP), cell(o.spec.backend?.type), ready, age(o.metadata.creationTimestamp, now)]
  },
  wideRow: (o, now) => {
    if (o.kind !== 'HostLease') return []
    return [cell(o.spec.ipv6Subnet), expires(o.spec.reserved, o.status?.expireTime, now), formatLabels(o.metadata.labels)]
  },
}

/** Time left on a lease, in AGE's units; reserved leases never expire. */
function expires(reserved: boolean | undefined, expireTime: string | undefined, now: number): string {
  if (reserved) return '<never>'
  const t = expireTime ? Date.parse(expireTime) : NaN
  if (Number.isNaN(t)) return NONE
  return t <= now ? '<expired>' : humanDuration(t - now)
}

const networkColumns: Columns = {
  headers: ['NAME', 'DRIVER', 'SUBNET', 'HOSTS', 'AGE'],
  wideHeaders: ['GATEWAY', 'IPV6SUBNET', 'READY'],
  row: (o, now) => {
    if (o.kind !== 'Network') return []
    return [o.metadata.name, cell(o.spec.driver), cell(o.spec.subnet), hostSelection(o.spec.hosts), age(o.metadata.creationTimestamp, now)]
  },
  wideRow: (o) => {
    if (o.kind !== 'Network') return []
    const hosts = Object.values(o.status?.hosts ?? {})
    const ready = hosts.filter((h) => conditionStatus(h.conditions, 'Ready') === 'True').length
    return [cell(o.spec.gateway), cell(o.spec.ipv6Subnet), `${ready}/${hosts.length}`]
  },
}

/** Which hosts a Network is for: names, then label selector, `<all>` when unrestricted. */
export function hostSelection(hosts: { names?: string[]; matchLabels?: Record<string, string> } | undefined): string {
  const parts: string[] = []
  if (hosts?.names?.length) parts.push(hosts.names.join(','))
  if (hosts?.matchLabels && Object.keys(hosts.matchLabels).length) parts.push(formatLabels(hosts.matchLabels))
  return parts.length ? parts.join(';') : '<all>'
}

const COLUMNS: Record<AnyResource['kind'], Columns> = { OverlayConfig: overlayColumns, HostLease: leaseColumns, Network: networkColumns }

export function tableHeader(info: KindInfo, wide: boolean): string[] {
  const c = COLUMNS[info.kind]
  return wide ? [...c.headers, ...c.wideHeaders] : c.headers
}

export function tableRow(obj: AnyResource, wide: boolean, now: number): string[] {
  const c = COLUMNS[obj.kind]
  return wide ? [...c.row(obj, now), ...c.wideRow(obj, now)] : c.row(obj, now)
}

// --- what could not be printed ---------------------------------------------------------------

/** One stderr line per key that holds no valid object, as kubectl prints a server's warnings. */
export function invalidWarning(invalid: InvalidObject): string {
  return `Warning: skipped ${describeInvalid(invalid)}`
}

// --- whole objects -------------------------------------------------------------------------------

export function toYaml(obj: unknown): string {
  // kubectl's layout: no folding of long strings, list items flush with their key
  return stringify(obj, { lineWidth: 0, indentSeq: false })
}

export function toJson(obj: unknown): string {
  return JSON.stringify(obj, null, 4) + '\n'
}

/** Several objects in one document, as kubectl returns them. */
export function asList(items: readonly AnyResource[]): unknown {
  return { apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } }
}

export function nameOf(obj: { kind: AnyResource['kind']; metadata: { name: string } }): string {
  return `${KINDS[obj.kind].singular}/${obj.metadata.name}`
}

/**
 * The whole output of a one-shot `get`. `single` is true when the user named
 * exactly one object: YAML/JSON then print it bare rather than in a List.
 */
export function printObjects(info: KindInfo, objs: readonly AnyResource[], format: OutputFormat, opts: { single: boolean; now: number }): string {
  switch (format) {
    case 'yaml':
      return toYaml(opts.single && objs.length === 1 ? objs[0] : asList(objs))
    case 'json':
      return toJson(opts.single && objs.length === 1 ? objs[0] : asList(objs))
    case 'name':
      return objs.map((o) => nameOf(o) + '\n').join('')
    case 'table':
    case 'wide': {
      if (objs.length === 0) return ''
      const wide = format === 'wide'
      return renderTable([tableHeader(info, wide), ...objs.map((o) => tableRow(o, wide, opts.now))])
    }
  }
}
