// weft's iptables work as plain data, for either family: parsing
// iptables-save/ip6tables-save output and planning the one
// `iptables-restore --noflush` transaction that converges weft's own chains
// (src/firewall/rules.ts says which). Pure, so unit-tested without a kernel;
// host/iptables.ts only runs the commands.

export type Table = 'filter' | 'nat' | 'mangle' | 'raw'

/** One rule as iptables-save prints it after `-A <chain>`, split into arguments. */
export type RuleSpec = readonly string[]

/** A chain weft owns entirely, reached from a builtin chain by one jump rule. */
export interface OwnChain {
  table: Table
  name: string
  /** the chain holding the jump, e.g. FORWARD or POSTROUTING */
  jumpFrom: string
  /** comment on the jump rule, so `iptables-save` readers know who put it there */
  jumpComment: string
  /** the exact, ordered rule list the chain must hold */
  rules: readonly RuleSpec[]
}

export interface ChainState {
  /** ACCEPT/DROP for builtin chains, null for user chains */
  policy: string | null
  rules: RuleSpec[]
}

export type TableState = Map<string, ChainState>

export interface Plan {
  /** iptables-restore input; empty when nothing needs doing */
  restore: string
  /** why each change is needed, for logs and status conditions ("drift") */
  reasons: string[]
}

/** Split one iptables-save line into arguments, honouring its double quotes and backslash escapes. */
export function splitArgs(line: string): string[] {
  const args: string[] = []
  let current = ''
  let inToken = false
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (ch === '\\' && i + 1 < line.length) {
      current += line[++i]
      inToken = true
    } else if (ch === '"') {
      quoted = !quoted
      inToken = true
    } else if (!quoted && (ch === ' ' || ch === '\t')) {
      if (inToken) args.push(current)
      current = ''
      inToken = false
    } else {
      current += ch
      inToken = true
    }
  }
  if (inToken) args.push(current)
  return args
}

/** Quote an argument for iptables-restore input the way iptables-save does. */
export function quoteArg(arg: string): string {
  if (arg !== '' && !/[\s"\\]/.test(arg)) return arg
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

export function formatRule(spec: RuleSpec): string {
  return spec.map(quoteArg).join(' ')
}

/** Parse iptables-save output into tables of chains. */
export function parseSave(text: string): Map<Table, TableState> {
  const tables = new Map<Table, TableState>()
  let current: TableState | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      current = new Map()
      tables.set(line.slice(1) as Table, current)
    } else if (line === 'COMMIT') {
      current = undefined
    } else if (current && line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/)
      current.set(name!, { policy: policy === '-' || policy === undefined ? null : policy, rules: [] })
    } else if (current && line.startsWith('-A ')) {
      const [, chain, ...spec] = splitArgs(line)
      const state = current.get(chain!) ?? { policy: null, rules: [] }
      state.rules.push(spec)
      current.set(chain!, state)
    }
  }
  return tables
}

export function jumpRule(chain: Pick<OwnChain, 'name' | 'jumpComment'>): RuleSpec {
  return ['-m', 'comment', '--comment', chain.jumpComment, '-j', chain.name]
}

function sameRule(a: RuleSpec, b: RuleSpec): boolean {
  return a.length === b.length && a.every((arg, i) => arg === b[i])
}

function jumpsTo(spec: RuleSpec, chain: string): boolean {
  const j = spec.indexOf('-j')
  return j >= 0 && spec[j + 1] === chain
}

function tableBlocks(lines: Map<Table, string[]>): string {
  let out = ''
  for (const [table, body] of lines) if (body.length > 0) out += `*${table}\n${body.join('\n')}\nCOMMIT\n`
  return out
}

/**
 * What to restore so each chain holds exactly its rules and is jumped to once
 * from its builtin chain. A missing jump is inserted first in that chain; an
 * existing one is left where it is (dockerd re-inserts its own jumps at the
 * top on every start; chasing the first slot would only fight it).
 */
export function planEnsure(desired: readonly OwnChain[], current: ReadonlyMap<Table, TableState>): Plan {
  const lines = new Map<Table, string[]>()
  const reasons: string[] = []
  for (const chain of desired) {
    const table = current.get(chain.table) ?? new Map<string, ChainState>()
    const body = lines.get(chain.table) ?? []
    lines.set(chain.table, body)

    const have = table.get(chain.name)
    const rulesMatch = have !== undefined && have.rules.length === chain.rules.length && have.rules.every((r, i) => sameRule(r, chain.rules[i]!))
    if (!rulesMatch) {
      reasons.push(have ? `${chain.table}/${chain.name}: rules differ` : `${chain.table}/${chain.name}: chain missing`)
      // declaring a user chain in --noflush mode creates it or empties it
      body.push(`:${chain.name} - [0:0]`)
      for (const rule of chain.rules) body.push(`-A ${chain.name} ${formatRule(rule)}`)
    }

    const wanted = jumpRule(chain)
    const jumps = (table.get(chain.jumpFrom)?.rules ?? []).filter((r) => jumpsTo(r, chain.name))
    const keep = jumps.findIndex((r) => sameRule(r, wanted))
    jumps.forEach((r, i) => {
      if (i === keep) return
      reasons.push(`${chain.table}/${chain.jumpFrom}: stray jump to ${chain.name}`)
      body.push(`-D ${chain.jumpFrom} ${formatRule(r)}`)
    })
    if (keep < 0) {
      reasons.push(`${chain.table}/${chain.jumpFrom}: jump to ${chain.name} missing`)
      body.push(`-I ${chain.jumpFrom} 1 ${formatRule(wanted)}`)
    }
  }
  return { restore: tableBlocks(lines), reasons }
}

/** What to restore so the named chains, and every rule jumping to them, are gone. */
export function planRemove(chains: readonly Pick<OwnChain, 'table' | 'name'>[], current: ReadonlyMap<Table, TableState>): Plan {
  const lines = new Map<Table, string[]>()
  const reasons: string[] = []
  for (const chain of chains) {
    const table = current.get(chain.table)
    if (!table?.has(chain.name)) continue
    const body = lines.get(chain.table) ?? []
    lines.set(chain.table, body)
    for (const [from, state] of table) {
      if (from === chain.name) continue
      for (const rule of state.rules) if (jumpsTo(rule, chain.name)) body.push(`-D ${from} ${formatRule(rule)}`)
    }
    body.push(`-F ${chain.name}`, `-X ${chain.name}`)
    reasons.push(`${chain.table}/${chain.name}: removed`)
  }
  return { restore: tableBlocks(lines), reasons }
}

function versionAtLeast(version: string, minimum: readonly number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10))
  for (let i = 0; i < minimum.length; i++) {
    const have = parts[i] ?? 0
    if (Number.isNaN(have)) return false
    if (have !== minimum[i]) return have > minimum[i]!
  }
  return true
}

/** MASQUERADE --random-fully needs iptables >= 1.6.2 (the option) and Linux >= 3.14 (NF_NAT_RANGE_PROTO_RANDOM_FULLY). */
export function randomFullySupported(iptablesVersionOutput: string, kernelRelease: string): boolean {
  const m = /v(\d+\.\d+\.\d+)/.exec(iptablesVersionOutput)
  const kernel = /^(\d+\.\d+)/.exec(kernelRelease)
  return m !== null && kernel !== null && versionAtLeast(m[1]!, [1, 6, 2]) && versionAtLeast(kernel[1]!, [3, 14])
}
