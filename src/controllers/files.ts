// The files controller: subnet.env and the docker options file say what the
// held lease says (DESIGN.md §5). Key: "files"; runs when the held lease
// changes and at every resync, so a file deleted or edited by hand is
// rewritten within the resync period. Files are left in place while no
// lease is held: dockerd keeps its last good settings.
import { map } from 'rxjs'
import { writeFileAtomic } from '../host/files.js'
import { formatCidr } from '../net/cidr.js'
import type { LeaseHolder } from '../lease/held.js'
import { renderDockerOpts, renderSubnetEnv, type SubnetFacts } from '../lease/subnetenv.js'
import { ConditionError, type ControllerSpec, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'

export const FILES = 'Files'
const KEY = 'files'

export interface FilesControllerOptions {
  holder: LeaseHolder
  subnetFile: string
  dockerOptsFile: string
  resyncMs?: number
}

export function filesController(opts: FilesControllerOptions): ControllerSpec {
  const { holder, subnetFile, dockerOptsFile } = opts

  const reconcile = async (_key: string, { log }: ReconcileContext): Promise<ReconcileResult> => {
    // desired: what the held lease says
    const held = holder.current
    if (!held) return { condition: { status: false, reason: 'NoLease', message: `no lease held yet; ${subnetFile} not written` } }
    const facts: SubnetFacts = { network: held.spec.network, subnet: held.subnet, mtu: held.mtu, ipMasq: held.spec.ipMasq }
    if (held.spec.ipv6 && held.ipv6Subnet) facts.ipv6 = { network: held.spec.ipv6.network, subnet: held.ipv6Subnet }
    // actual vs desired: writeFileAtomic compares and writes only on difference
    for (const [path, content] of [
      [subnetFile, renderSubnetEnv(facts)],
      [dockerOptsFile, renderDockerOpts(facts)],
    ] as const) {
      try {
        if (await writeFileAtomic(path, content, { mode: 0o644 })) log.info({ path, subnet: formatCidr(facts.subnet) }, 'wrote file')
      } catch (err) {
        throw new ConditionError('WriteFailed', `cannot write ${path}: ${(err as Error).message}`, { cause: err })
      }
    }
    return { condition: { status: true, reason: 'Written', message: `${subnetFile} and ${dockerOptsFile} match the lease` } }
  }

  return {
    name: 'files',
    condition: FILES,
    reconcile,
    keys: [KEY],
    triggers: [holder.held$.pipe(map(() => KEY))],
    ...(opts.resyncMs !== undefined ? { resyncMs: opts.resyncMs } : {}),
  }
}
