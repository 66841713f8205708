// `weftctl describe`: one object as kubectl describes custom resources —
// `Key:  value` sections with field names turned into words (`Subnet Len`),
// values aligned per level, and conditions as a table.
import type { HostLease } from '../crds/index.js'
import { unreachablePeerLines } from './check.js'
import type { AnyResource } from '../crds/kinds.js'
import type { Condition } from '../crds/meta.js'
import { subnetKeyName, subnetKeyName6 } from '../lease/allocate.js'
import { unownedBecause } from '../lease/ownership.js'
import { claimPrefixOf } from '../lease/registry.js'
import { formatCidr6, tryParseCidr, tryParseCidr6, type Cidr6 } from '../net/cidr.js'
import { InvalidStoredObjectError, NotFoundError, parseSelector, type Store } from '../store/index.js'
import { objectRefs, resolveKind, str, type OptionSpec } from './args.js'
import type { Command } from './context.js'
import { formatError, UsageError } from './errors.js'
import { invalidWarning, renderTable } from './printers.js'

const options: OptionSpec = { selector: { type: 'string', short: 'l' } }

const usage = `Show details of objects, including their status conditions.

Examples:
  weftctl describe hostlease host-a
  weftctl describe network/mynet_01
  weftctl describe hl -l zone=a

Usage:
  weftctl describe KIND NAME... | KIND/NAME... | KIND -l SELECTOR

Options:
  -l, --selector=''   describe every object of KIND matching the selector`

export const describeCommand: Command = {
  name: 'describe',
  summary: 'Show details of objects',
  usage,
  options,
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('you must specify the type of resource to describe: overlayconfigs (oc), hostleases (hl) or networks (net)')
    const store = ctx.store()
    const refs = objectRefs(ctx.positionals)
    const selectorText = str(ctx.values, 'selector')
    let objects: AnyResource[] = []
    let failed = false
    if (refs.length) {
      for (const ref of refs) {
        try {
          objects.push(await store.get(ref.info.kind, ref.name))
        } catch (err) {
          if (!(err instanceof NotFoundError) && !(err instanceof InvalidStoredObjectError)) throw err
          ctx.err(formatError(err))
          failed = true
        }
      }
    } else {
      const info = resolveKind(ctx.positionals[0]!)
      const { items, invalid } = await store.list(info.kind, selectorText ? parseSelector(selectorText) : undefined)
      objects = items
      if (objects.length === 0) ctx.err('No resources found.')
      for (const i of invalid) ctx.err(invalidWarning(i))
    }
    const described: string[] = []
    for (const obj of objects) {
      if (obj.kind !== 'HostLease') described.push(describeObject(obj))
      else described.push(describeObject(obj, await claimLines(store, obj), await unreachablePeerLines(store, obj.metadata.name)))
    }
    ctx.out(described.join('\n\n'))
    return failed ? 1 : 0
  },
}

// Maps whose keys are data (driver options, label keys, host names), printed as typed.
const DATA_MAPS = new Set(['spec.options', 'spec.hosts.matchLabels', 'spec.backend.data', 'status.hosts'])

/** `subnetLen` -> `Subnet Len`, `publicIP` -> `Public IP`, `networkID` -> `Network ID`, `publicIPv6` -> `Public IPv6`, `ipMasq` -> `IP Masq`. */
export function fieldLabel(key: string): string {
  // "IPv4", "IPv6" and "IP" are written as users write them, not "Ipv6", "I Pv6" or "Ip"
  const words = key
    .replace(/^ipv([46])/, 'IPv$1')
    .replace(/^ip(?=[A-Z])/, 'IP')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/\bI Pv([46])/g, 'IPv$1')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

/**
 * Whose claim the lease's subnet holds: the claim, not the lease, decides who
 * gets the subnet's traffic (src/lease/ownership.ts), so a lease without it is
 * said to be no peer, with why.
 */
async function claimLines(store: Store, lease: HostLease): Promise<[string, string][]> {
  const lines: [string, string][] = [['Subnet Claim', await claimLine(store, lease)]]
  const subnet6 = lease.spec.ipv6Subnet === undefined ? undefined : tryParseCidr6(lease.spec.ipv6Subnet)
  if (subnet6) lines.push(['IPv6 Subnet Claim', await claimLine6(store, lease, subnet6)])
  return lines
}

/** The IPv6 claim is written in the same transaction as the IPv4 one; it keeps the subnet for the host, traffic follows the IPv4 claim. */
async function claimLine6(store: Store, lease: HostLease, subnet: Cidr6): Promise<string> {
  const key = claimPrefixOf(store.prefix, lease.spec.overlay) + subnetKeyName6(subnet)
  const holder = (await store.call(() => store.etcd.get(key).exec())).kvs[0]?.value.toString()
  if (holder === lease.metadata.name) return `${key} (held by this lease's host)`
  if (holder === undefined) return `NoClaim: no host claims ${formatCidr6(subnet)}`
  return `ClaimedByOther: ${formatCidr6(subnet)} is claimed by host "${holder}", not by this lease`
}

async function claimLine(store: Store, lease: HostLease): Promise<string> {
  const subnet = tryParseCidr(lease.spec.subnet)
  if (!subnet) return '<none>'
  const key = claimPrefixOf(store.prefix, lease.spec.overlay) + subnetKeyName(subnet)
  const kv = (await store.call(() => store.etcd.get(key).exec())).kvs[0]
  const claims = new Map(kv ? [[subnetKeyName(subnet), kv.value.toString()]] : [])
  const unowned = unownedBecause(lease, lease.spec.overlay, claims)
  if (!unowned) return `${key} (held by this lease's host)`
  return `${unowned.reason}: ${unowned.message.replace(/^HostLease "[^"]*": /, '')}; this lease is no peer on any host`
}

/** HostLeases also show whose claim holds their subnet and, from the reachability reports, the peers they cannot reach. */
export function describeObject(obj: AnyResource, subnetClaims: readonly [label: string, text: string][] = [], unreachablePeers?: readonly string[]): string {
  const lines: string[] = []
  const { name, labels, annotations, uid, generation, resourceVersion, creationTimestamp } = obj.metadata
  const top: [string, string[]][] = [
    ['Name', [name]],
    ['Labels', pairs(labels)],
    ['Annotations', pairs(annotations)],
    ['API Version', [obj.apiVersion]],
    ['Kind', [obj.kind]],
  ]
  const width = Math.max(...top.map(([k]) => k.length)) + 3
  for (const [key, values] of top) {
    lines.push(`${(key + ':').padEnd(width)}${values[0]}`)
    for (const v of values.slice(1)) lines.push(' '.repeat(width) + v)
  }
  lines.push('Metadata:')
  renderMap(lines, 1, { creationTimestamp, generation, resourceVersion, uid }, 'metadata', { UID: 'uid' })
  lines.push('Spec:')
  renderMap(lines, 1, obj.spec as Record<string, unknown>, 'spec')
  for (const [label, text] of subnetClaims) lines.push(`${label}:  ${text}`)
  if (unreachablePeers !== undefined) {
    lines.push(`Unreachable Peers:${unreachablePeers.length ? '' : '  <none>'}`)
    for (const l of unreachablePeers) lines.push(`  ${l}`)
  }
  const status = obj.status as Record<string, unknown> | undefined
  if (status && Object.keys(status).length) {
    lines.push('Status:')
    renderMap(lines, 1, status, 'status')
  } else lines.push('Status:  <none>')
  return lines.join('\n') + '\n'
}

function pairs(map: Record<string, string> | undefined): string[] {
  const entries = Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b))
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`) : ['<none>']
}

const INDENT = '  '

/** `path` is the map's own field path; it decides whether its keys are field names or data. */
function renderMap(lines: string[], depth: number, map: Record<string, unknown>, path: string, labelOverrides: Record<string, string> = {}): void {
  const pad = INDENT.repeat(depth)
  const rawKeys = DATA_MAPS.has(path)
  const entries = Object.entries(map).filter(([, v]) => v !== undefined)
  const label = (k: string) => Object.keys(labelOverrides).find((l) => labelOverrides[l] === k) ?? (rawKeys ? k : fieldLabel(k))
  // scalars of one level share a column, as kubectl's tabwriter lines them up
  const width = Math.max(0, ...entries.filter(([, v]) => isScalar(v) || isEmpty(v)).map(([k]) => label(k).length)) + 3
  for (const [key, value] of entries) {
    const name = label(key)
    if (isScalar(value)) lines.push(`${pad}${(name + ':').padEnd(width)}${String(value)}`)
    else if (isEmpty(value)) lines.push(`${pad}${(name + ':').padEnd(width)}<none>`)
    else if (key === 'conditions' && Array.isArray(value)) {
      lines.push(`${pad}${name}:`)
      renderConditions(lines, depth + 1, value as Condition[])
    } else if (Array.isArray(value)) {
      lines.push(`${pad}${name}:`)
      for (const item of value) {
        if (isScalar(item)) lines.push(`${pad}${INDENT}${String(item)}`)
        else renderMap(lines, depth + 1, item as Record<string, unknown>, `${path}.${key}[]`)
      }
    } else {
      lines.push(`${pad}${name}:`)
      // below a data map (a host's entry) the keys are fields again
      renderMap(lines, depth + 1, value as Record<string, unknown>, rawKeys ? `${path}.*` : `${path}.${key}`)
    }
  }
}

function renderConditions(lines: string[], depth: number, conditions: Condition[]): void {
  const header = ['Type', 'Status', 'Reason', 'Message', 'LastTransitionTime', 'ObservedGeneration']
  const rows = conditions.map((c) => [c.type, c.status, c.reason || '<none>', c.message || '<none>', c.lastTransitionTime, c.observedGeneration === undefined ? '<none>' : String(c.observedGeneration)])
  const table = renderTable([header, header.map((h) => '-'.repeat(h.length)), ...rows])
  for (const line of table.trimEnd().split('\n')) lines.push(INDENT.repeat(depth) + line)
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

function isEmpty(v: unknown): boolean {
  return v === null || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && v !== null && Object.keys(v).length === 0)
}
