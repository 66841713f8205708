// The networks controller: every Network this host is selected for exists in
// this host's dockerd, with its attachments connected (the tutorial's `docker
// network create/connect/rm`, DESIGN.md §2). Key: the Network's name, which is
// also the Docker network's name.
//
//   observe desired: the Network (informer) and whether it selects this host
//                    (src/docker/host-selection.ts) → the Docker network wanted here
//   observe actual:  the Docker network of that name, with its containers
//   act:             one step of src/docker/network-plan.ts (create, recreate, remove,
//                    or leave a network weft does not own / others use alone), then
//                    connect, re-address or disconnect attachments
//   report:          this host's entry in status.hosts (compare-and-swap, retried on
//                    conflict, other hosts' entries untouched); removed when the
//                    host leaves the selection
//
// Docker networks weft owns whose Network is gone (deleted while this agent
// was down) are found by listing the daemon's networks at every resync.
import { isDeepStrictEqual } from 'node:util'
import { EMPTY, catchError, from, mergeMap, of, timer } from 'rxjs'
import type { Network, NetworkHostStatus } from '../crds/network.js'
import { MANAGED_LABEL } from '../crds/network.js'
import { selectsHost, type HostFacts } from '../docker/host-selection.js'
import { desiredNetwork, ownedBy, planAttachments, planNetwork, PREFIX_LABEL, type Attachment, type NetworkStep } from '../docker/network-plan.js'
import { Conflict, DaemonUnavailable, DockerError, NotFound, type DockerHost, type NetworkDetail } from '../host/docker.js'
import type { LeaseHolder } from '../lease/held.js'
import { conditionsEqual, setCondition, watch, type ConditionInput, type ControllerSpec, type Manager, type ReconcileContext, type ReconcileResult } from '../runtime/index.js'
import { ConflictError, NotFoundError, type Store } from '../store/index.js'

export const READY = 'Ready'
export const ATTACHED = 'Attached'
const STATUS_ATTEMPTS = 10

export interface NetworksControllerOptions {
  manager: Manager
  docker: DockerHost
  holder: LeaseHolder
  hostName: string
  /** --labels; undefined: the labels of this host's HostLease */
  labels?: Record<string, string>
  /** poll while the daemon is away or a container is missing; default 5 s */
  pollMs?: number
  /** every network looked at again, and orphans searched for, the backstop to Docker's events; default 60 s */
  resyncMs?: number
}

type Outcome = { ready: ConditionInput; attached?: ConditionInput; networkID?: string; retry: boolean }

export function networksController(opts: NetworksControllerOptions): ControllerSpec {
  const { manager, docker, holder, hostName } = opts
  const store: Store = manager.store
  const prefix = store.prefix
  const networks = manager.informer('Network')
  const pollMs = opts.pollMs ?? 5_000
  const resyncMs = opts.resyncMs ?? 60_000
  /** the last spec seen per name: which containers weft attached, after the spec dropped them or the Network went */
  const lastSeen = new Map<string, Network>()

  const host = (): HostFacts => ({ name: hostName, labels: opts.labels ?? holder.current?.lease.metadata.labels ?? {} })

  const reconcile = async (name: string, { log }: ReconcileContext): Promise<ReconcileResult | void> => {
    // --- observe desired
    const net = networks.get(name)
    // a Network key holding garbage (never valid since this agent started) is not a deletion: its Docker network stays
    if (!net && networks.invalid(name)) return
    const previous = lastSeen.get(name)
    const selected = net !== undefined && selectsHost(net.spec.hosts, host())
    const desired = selected ? desiredNetwork(net, prefix) : undefined
    const attachments = selected ? (net.spec.attachments ?? []) : []
    const formerAttachments = previous?.spec.attachments ?? []

    // --- observe actual
    let actual: NetworkDetail | undefined
    try {
      actual = await inspect(name)
    } catch (err) {
      if (!(err instanceof DaemonUnavailable)) throw err
      if (net && selected) await writeHostEntry(net, { ready: cond(READY, 'False', 'DaemonUnavailable', `dockerd does not answer: ${err.message}`), retry: true })
      return { requeueAfter: pollMs }
    }

    // --- act on the difference
    const step = planNetwork({ name, desired, actual, prefix, knownAttachments: [...attachments, ...formerAttachments] })
    let outcome: Outcome
    if (step.action === 'blocked') {
      outcome = { ready: cond(READY, 'False', step.reason, step.message), networkID: step.id, retry: true }
    } else {
      try {
        const id = await apply(step, log)
        outcome = id === undefined ? { ready: cond(READY, 'True', 'NotWanted', ''), retry: false } : await attach(id, attachments, formerAttachments, log)
      } catch (err) {
        if (!(err instanceof DockerError)) throw err
        const reason = err instanceof DaemonUnavailable ? 'DaemonUnavailable' : `${capitalize(step.action)}Failed`
        outcome = { ready: cond(READY, 'False', reason, `cannot ${step.action} Docker network ${name}: ${err.message}`), retry: true }
      }
    }

    // --- report
    if (net) lastSeen.set(name, net)
    else if (step.action === 'none' || step.action === 'remove') lastSeen.delete(name)
    if (net && selected) await writeHostEntry(net, outcome)
    else if (net) await removeHostEntry(name)
    // a deleted Network's network that cannot go yet: no status to write, so the error is the report (logged once per message)
    else if (outcome.retry) throw new Error(`${outcome.ready.reason}: ${outcome.ready.message}`)
    return outcome.retry ? { requeueAfter: pollMs } : undefined
  }

  const inspect = async (name: string): Promise<NetworkDetail | undefined> => {
    try {
      return await docker.inspectNetwork(name)
    } catch (err) {
      if (err instanceof NotFound) return undefined
      throw err
    }
  }

  /** Carry out a network step; returns the network's id when there is one of ours to attach to. */
  const apply = async (step: NetworkStep, log: ReconcileContext['log']): Promise<string | undefined> => {
    switch (step.action) {
      case 'none':
        return undefined
      case 'keep':
        return step.id
      case 'blocked':
        return undefined
      case 'create': {
        const id = await docker.createNetwork(step.desired)
        log.info({ id, subnet: step.desired.subnet }, 'created Docker network')
        return id
      }
      case 'recreate':
      case 'remove': {
        for (const c of step.disconnect) await docker.disconnect(step.id, c.id, { force: true }).catch(ignore(NotFound))
        await docker.removeNetwork(step.id).catch(ignore(NotFound))
        if (step.action === 'remove') {
          log.info({ id: step.id, disconnected: step.disconnect.map((c) => c.name) }, 'removed Docker network')
          return undefined
        }
        const id = await docker.createNetwork(step.desired)
        log.info({ old: step.id, id, subnet: step.desired.subnet }, 'recreated Docker network for a changed spec')
        return id
      }
    }
  }

  /** Connect, re-address and disconnect attachments; the outcome to report. */
  const attach = async (id: string, attachments: readonly Attachment[], former: readonly Attachment[], log: ReconcileContext['log']): Promise<Outcome> => {
    const actual = await docker.inspectNetwork(id)
    const missing: string[] = []
    const failed: string[] = []
    for (const s of planAttachments(actual, attachments, former)) {
      try {
        if (s.action === 'disconnect' || s.action === 'reconnect') await docker.disconnect(id, s.container, { force: true }).catch(ignore(NotFound))
        const addresses = s.action === 'disconnect' ? {} : { ...(s.ipv4Address ? { ipv4Address: s.ipv4Address } : {}), ...(s.ipv6Address ? { ipv6Address: s.ipv6Address } : {}) }
        if (s.action === 'connect' || s.action === 'reconnect') await docker.connect(id, s.container, addresses)
        log.info({ container: s.container, ...addresses }, `${s.action}ed container`)
      } catch (err) {
        if (err instanceof NotFound && s.action !== 'disconnect') missing.push(s.container)
        else if (err instanceof Conflict || err instanceof NotFound) failed.push(`${s.container}: ${err.message}`)
        else throw err
      }
    }
    const ready = failed.length
      ? cond(READY, 'False', 'AttachFailed', `cannot attach ${failed.join('; ')}`)
      : cond(READY, 'True', 'Converged', `Docker network ${id.slice(0, 12)} matches the spec`)
    const connected = attachments.length - missing.length - failed.length
    const attached = missing.length
      ? cond(ATTACHED, 'False', 'ContainerNotFound', `no container ${missing.join(', ')} on this host; retrying`)
      : failed.length
        ? cond(ATTACHED, 'False', 'AttachFailed', `${connected} of ${attachments.length} attachment(s) connected`)
        : cond(ATTACHED, 'True', attachments.length ? 'Attached' : 'NoAttachments', `${connected} attachment(s) connected`)
    return { ready, attached, networkID: id, retry: missing.length > 0 || failed.length > 0 }
  }

  /** status.hosts[this host] = what was found; CAS on the object, retried on conflict, other hosts' entries kept. */
  const writeHostEntry = async (net: Network, outcome: Outcome) => {
    await updateHosts(net.metadata.name, (current, obj) => {
      const gen = obj.metadata.generation ?? 1
      let conditions = setCondition(current?.conditions, { ...outcome.ready, observedGeneration: gen })
      conditions = outcome.attached ? setCondition(conditions, { ...outcome.attached, observedGeneration: gen }) : conditions.filter((c) => c.type !== ATTACHED)
      const entry: NetworkHostStatus = { ...(outcome.networkID ? { networkID: outcome.networkID } : {}), conditions }
      if (current && current.networkID === entry.networkID && conditionsEqual(current.conditions, entry.conditions)) return undefined
      return entry
    })
  }

  const removeHostEntry = (name: string) => updateHosts(name, () => null)

  /** Read-modify-write of this host's entry. `change` returns the new entry, null to remove it, undefined for no write. */
  const updateHosts = async (name: string, change: (current: NetworkHostStatus | undefined, obj: Network) => NetworkHostStatus | null | undefined) => {
    // the informer's copy answers "nothing to write" without a read from etcd, which is every resync's case
    const cached = networks.get(name)
    if (cached && change(cached.status?.hosts?.[hostName], cached) === undefined) return
    if (cached && !(hostName in (cached.status?.hosts ?? {})) && change(undefined, cached) === null) return
    for (let attempt = 1; ; attempt++) {
      let obj: Network
      try {
        obj = await store.get('Network', name)
      } catch (err) {
        if (err instanceof NotFoundError) return
        throw err
      }
      const hosts = { ...(obj.status?.hosts ?? {}) }
      const next = change(hosts[hostName], obj)
      if (next === undefined || (next === null && !(hostName in hosts))) return
      if (next === null) delete hosts[hostName]
      else hosts[hostName] = next
      if (isDeepStrictEqual(hosts, obj.status?.hosts ?? {})) return
      try {
        await store.updateStatus({ ...obj, status: { ...obj.status, hosts } })
        return
      } catch (err) {
        if (err instanceof NotFoundError) return
        if (!(err instanceof ConflictError) || attempt >= STATUS_ATTEMPTS) throw err
      }
    }
  }

  /** Names of Docker networks this weft owns, so a Network deleted while the agent was down is cleaned up. */
  const ownedNames = async (): Promise<string[]> =>
    (await docker.listNetworks({ [MANAGED_LABEL]: 'true', [PREFIX_LABEL]: prefix })).filter((n) => ownedBy(n, prefix) && !networks.get(n.name)).map((n) => n.name)

  return {
    name: 'networks',
    reconcile,
    workers: 2,
    resyncMs,
    watches: [
      watch(networks, (n, event) => {
        // remember the spec of a deleted Network: its attachments are what weft may disconnect
        if (event === 'DELETED' && !lastSeen.has(n.metadata.name)) lastSeen.set(n.metadata.name, n)
        return n.metadata.name
      }),
    ],
    triggers: [
      // this host's labels may have changed: every Network's selection may have
      holder.held$.pipe(mergeMap(() => networks.list().map((n) => n.metadata.name))),
      // orphans searched for now and then; and whenever Docker says a container or network changed,
      // every Network is looked at again (a late container to attach, a network removed by hand)
      timer(0, resyncMs).pipe(mergeMap(() => from(ownedNames()).pipe(catchError(() => EMPTY))), mergeMap((names) => names)),
      docker.changes().pipe(
        mergeMap(() => from(ownedNames()).pipe(catchError(() => of<string[]>([])))),
        mergeMap((owned) => [...networks.list().map((n) => n.metadata.name), ...owned]),
      ),
    ],
  }
}

function cond(type: string, status: ConditionInput['status'], reason: string, message: string): ConditionInput {
  return { type, status, reason, message }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1)
}

/** A catch handler that swallows one error class (e.g. NotFound on a remove: already gone). */
function ignore(kind: new (...args: never[]) => Error): (err: unknown) => void {
  return (err) => {
    if (!(err instanceof kind)) throw err
  }
}
