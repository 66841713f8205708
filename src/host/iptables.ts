// iptables adapter: reads tables with iptables-save (ip6tables-save for
// IPv6) and converges weft's own chains with one `iptables-restore --noflush`
// transaction per apply, the way kube-proxy and flannel do, so rules are
// never half-applied and the hot path costs one process spawn however many
// rules there are. What to restore is planned in src/firewall/plan.ts; this
// file only runs the commands. Chains and rules owned by anyone else (Docker,
// the user) are never flushed or rewritten.
import { release } from 'node:os'
import { parseSave, planEnsure, planRemove, randomFullySupported, type OwnChain, type Table, type TableState } from '../firewall/plan.js'
import { runnerFor, type Runner } from './exec.js'

// the planner's names, where callers have always found them
export * from '../firewall/plan.js'

/** Which of the kernel's two tables: iptables or ip6tables. */
export type IpFamily = 'ipv4' | 'ipv6'

const COMMANDS: Record<IpFamily, { save: string; restore: string; version: string }> = {
  ipv4: { save: 'iptables-save', restore: 'iptables-restore', version: 'iptables' },
  ipv6: { save: 'ip6tables-save', restore: 'ip6tables-restore', version: 'ip6tables' },
}

export interface IptablesOptions {
  /** network namespace name under /run/netns; production runs in the host's own */
  netns?: string
  runner?: Runner
  /** default ipv4 */
  family?: IpFamily
}

export class Iptables {
  private readonly run: Runner
  private randomFully: Promise<boolean> | undefined
  readonly family: IpFamily
  private readonly cmd: (typeof COMMANDS)[IpFamily]

  constructor(opts: IptablesOptions = {}) {
    this.run = opts.runner ?? runnerFor(opts.netns)
    this.family = opts.family ?? 'ipv4'
    this.cmd = COMMANDS[this.family]
  }

  async save(table: Table): Promise<TableState> {
    const text = await this.run(this.cmd.save, ['-t', table])
    return parseSave(text).get(table) ?? new Map()
  }

  /** One iptables-save for all the tables asked (a spawn is most of an idle agent's CPU); a table not loaded reads as empty. */
  private async saveTables(tables: Iterable<Table>): Promise<Map<Table, TableState>> {
    const wanted = [...new Set(tables)]
    const state = new Map<Table, TableState>()
    if (wanted.length === 1) state.set(wanted[0]!, await this.save(wanted[0]!))
    else if (wanted.length > 1) {
      const all = parseSave(await this.run(this.cmd.save, []))
      for (const table of wanted) state.set(table, all.get(table) ?? new Map())
    }
    return state
  }

  private async restore(input: string): Promise<void> {
    await this.run(this.cmd.restore, ['--noflush', '-w'], { input })
  }

  /** Differences between the host and the desired chains; empty when converged. */
  async drift(chains: readonly OwnChain[]): Promise<string[]> {
    return planEnsure(chains, await this.saveTables(chains.map((c) => c.table))).reasons
  }

  /** Converge the chains and their jumps in one restore; returns whether anything changed. */
  async ensure(chains: readonly OwnChain[]): Promise<boolean> {
    const plan = planEnsure(chains, await this.saveTables(chains.map((c) => c.table)))
    if (plan.restore === '') return false
    await this.restore(plan.restore)
    return true
  }

  /** Remove the chains and every jump to them; returns whether anything was there. */
  async remove(chains: readonly Pick<OwnChain, 'table' | 'name'>[]): Promise<boolean> {
    const plan = planRemove(chains, await this.saveTables(chains.map((c) => c.table)))
    if (plan.restore === '') return false
    await this.restore(plan.restore)
    return true
  }

  /** Asked once per adapter: the answer cannot change while the host runs. */
  supportsRandomFully(): Promise<boolean> {
    this.randomFully ??= this.run(this.cmd.version, ['--version'])
      .then((out) => randomFullySupported(out, release()))
      .catch(() => false)
    return this.randomFully
  }
}
