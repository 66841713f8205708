// The DaemonSet's pod as `docker run` flags, read from the manifest itself,
// so what the tests run and what Kubernetes would run cannot drift apart:
// host network, the container's securityContext, its hostPath volumes as
// binds (as kubelet mounts them), env from the ConfigMap and the Downward
// API, the memory limit, the restart policy. A field this translation does
// not know is an error rather than something silently left out; fields that
// only place the pod (tolerations, priority, update strategy) are named as
// such.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'

const MANIFESTS = fileURLToPath(new URL('../../manifests/', import.meta.url))

/* eslint-disable @typescript-eslint/no-explicit-any -- a manifest is untyped data, checked field by field below */
type Obj = Record<string, any>

export interface HttpProbe {
  path: string
  port: number
  /** kubelet's target: the pod IP, which is the node's on the host network */
  host: string
}

export interface HostPathVolume {
  /** the path on the host, as the manifest says */
  path: string
  /** where it lands on the test's host (the hostPath mapping) */
  source: string
  mountPath: string
  type: string
  readOnly: boolean
}

export interface DockerRun {
  image: string
  /** flags between `docker run` and the image */
  flags: string[]
  /** the container's arguments (k8s `args`) */
  args: string[]
  env: Record<string, string>
  hostPaths: HostPathVolume[]
  privileged: boolean
  capAdd: string[]
  capDrop: string[]
  liveness?: HttpProbe
  readiness?: HttpProbe
}

export interface TranslateOptions {
  /** the node the pod runs on: spec.nodeName and status.hostIP */
  node: { name: string; hostIP: string }
  /** the pod's hostPath paths on this host (tests map them into their own dirs); default: the path itself */
  hostPath?: (path: string) => string
  /** values replacing the ConfigMap's (an etcd endpoint of the test's own) */
  configOverrides?: Record<string, string>
  /** how a CharDevice hostPath becomes a flag: `bind` as kubelet does (default), `device` as a Docker user should (--device adds the cgroup rule) */
  charDevices?: 'bind' | 'device'
  /** --name */
  name?: string
}

/** pod-spec fields that only decide where and when a pod runs, not what it runs with */
const PLACEMENT = new Set(['tolerations', 'priorityClassName', 'nodeSelector', 'affinity', 'serviceAccountName', 'dnsPolicy'])
const POD_FIELDS = new Set([...PLACEMENT, 'hostNetwork', 'containers', 'volumes', 'terminationGracePeriodSeconds', 'restartPolicy'])
const CONTAINER_FIELDS = new Set(['name', 'image', 'args', 'command', 'env', 'envFrom', 'securityContext', 'resources', 'livenessProbe', 'readinessProbe', 'volumeMounts'])
const SECURITY_FIELDS = new Set(['privileged', 'capabilities', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation'])

class ManifestError extends Error {
  override name = 'ManifestError'
}

function unknown(where: string, obj: Obj, known: Set<string>): void {
  for (const k of Object.keys(obj)) if (!known.has(k)) throw new ManifestError(`${where}.${k}: not translated to docker run; teach test/helpers/daemonset.ts what it means`)
}

/** The manifests as shipped: the DaemonSet and every ConfigMap of manifests/kubernetes. */
export function loadManifests(): { daemonset: Obj; configMaps: Record<string, Record<string, string>> } {
  const daemonset = parse(readFileSync(`${MANIFESTS}kubernetes/daemonset.yaml`, 'utf8')) as Obj
  const configMaps: Record<string, Record<string, string>> = {}
  for (const doc of parseAllDocuments(readFileSync(`${MANIFESTS}kubernetes/configmap.yaml`, 'utf8'))) {
    const cm = doc.toJS() as Obj
    if (cm.kind === 'ConfigMap') configMaps[cm.metadata.name] = cm.data ?? {}
  }
  return { daemonset, configMaps }
}

/** Kubernetes' $(VAR) expansion: variables defined earlier expand, $$ escapes, unknown ones stay as written. */
export function expandVars(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in vars ? vars[name]! : m))
}

/** a memory quantity as docker run --memory takes it: 128Mi -> 128m (docker's k, m, g are binary), 100M -> 100000000 */
export function dockerMemory(q: string): string {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(q)
  if (!m) throw new ManifestError(`memory quantity ${JSON.stringify(q)} not understood`)
  const binary: Record<string, string> = { Ki: 'k', Mi: 'm', Gi: 'g' }
  if (m[2] && m[2] in binary) return `${m[1]}${binary[m[2]]}`
  return String(Number(m[1]) * ({ k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1))
}

function httpProbe(p: Obj | undefined, where: string, hostIP: string): HttpProbe | undefined {
  if (!p) return undefined
  if (!p.httpGet) throw new ManifestError(`${where}: only httpGet probes are translated`)
  return { path: String(p.httpGet.path), port: Number(p.httpGet.port), host: p.httpGet.host ?? hostIP }
}

export function translateDaemonSet(daemonset: Obj, configMaps: Record<string, Record<string, string>>, opts: TranslateOptions): DockerRun {
  const pod = daemonset?.spec?.template?.spec as Obj | undefined
  if (daemonset?.kind !== 'DaemonSet' || !pod) throw new ManifestError('not a DaemonSet with spec.template.spec')
  unknown('spec.template.spec', pod, POD_FIELDS)
  if (pod.hostNetwork !== true) throw new ManifestError('spec.template.spec.hostNetwork: weftd converges the host, so it must be true')
  if (!Array.isArray(pod.containers) || pod.containers.length !== 1) throw new ManifestError('spec.template.spec.containers: exactly one container is translated')
  const c = pod.containers[0] as Obj
  const where = `containers[${String(c.name)}]`
  unknown(where, c, CONTAINER_FIELDS)
  const flags: string[] = ['--network', 'host']
  if (opts.name) flags.push('--name', opts.name)
  // a DaemonSet's pods always restart (restartPolicy Always is the only one it allows)
  flags.push('--restart', 'always')
  if (pod.terminationGracePeriodSeconds !== undefined) flags.push('--stop-timeout', String(pod.terminationGracePeriodSeconds))

  // --- security
  const sec = (c.securityContext ?? {}) as Obj
  unknown(`${where}.securityContext`, sec, SECURITY_FIELDS)
  const privileged = sec.privileged === true
  if (privileged) flags.push('--privileged')
  const capAdd = ((sec.capabilities?.add ?? []) as string[]).map(String)
  const capDrop = ((sec.capabilities?.drop ?? []) as string[]).map(String)
  // docker applies --cap-drop before --cap-add whatever their order, as the CRI runtimes do
  for (const cap of capDrop) flags.push('--cap-drop', cap)
  for (const cap of capAdd) flags.push('--cap-add', cap)
  if (sec.readOnlyRootFilesystem === true) flags.push('--read-only')
  if (sec.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges')

  // --- resources: only the limits constrain a running container
  const limits = (c.resources?.limits ?? {}) as Obj
  for (const k of Object.keys(limits)) {
    if (k === 'memory') flags.push('--memory', dockerMemory(String(limits.memory)))
    else if (k === 'cpu') flags.push('--cpus', String(limits.cpu).endsWith('m') ? String(parseInt(String(limits.cpu), 10) / 1000) : String(limits.cpu))
    else throw new ManifestError(`${where}.resources.limits.${k}: not translated`)
  }

  // --- volumes: hostPath only, bound where the container mounts them
  const volumes = new Map<string, Obj>(((pod.volumes ?? []) as Obj[]).map((v) => [String(v.name), v]))
  const hostPaths: HostPathVolume[] = []
  for (const m of (c.volumeMounts ?? []) as Obj[]) {
    const v = volumes.get(String(m.name))
    if (!v) throw new ManifestError(`${where}.volumeMounts[${String(m.name)}]: no such volume`)
    if (!v.hostPath) throw new ManifestError(`volumes[${String(v.name)}]: only hostPath volumes are translated`)
    const path = String(v.hostPath.path)
    const source = opts.hostPath ? opts.hostPath(path) : path
    const type = String(v.hostPath.type ?? '')
    const readOnly = m.readOnly === true
    hostPaths.push({ path, source, mountPath: String(m.mountPath), type, readOnly })
    if (type === 'CharDevice' && opts.charDevices === 'device') flags.push('--device', `${source}:${String(m.mountPath)}`)
    // --mount, not -v: a bind source that is missing is an error, never a directory made in its place
    else flags.push('--mount', `type=bind,source=${source},target=${String(m.mountPath)}${readOnly ? ',readonly' : ''}`)
  }

  // --- env: envFrom first, then env in order, each $(VAR) expanding what came before
  const env: Record<string, string> = {}
  for (const from of (c.envFrom ?? []) as Obj[]) {
    const name = from.configMapRef?.name as string | undefined
    if (!name) throw new ManifestError(`${where}.envFrom: only configMapRef is translated`)
    const data = configMaps[name]
    if (!data) throw new ManifestError(`${where}.envFrom: no ConfigMap ${name} in manifests/kubernetes/configmap.yaml`)
    for (const [k, v] of Object.entries(data)) env[k] = opts.configOverrides?.[k] ?? String(v)
  }
  const fields: Record<string, string> = { 'spec.nodeName': opts.node.name, 'status.hostIP': opts.node.hostIP, 'status.podIP': opts.node.hostIP }
  for (const e of (c.env ?? []) as Obj[]) {
    const name = String(e.name)
    if (e.value !== undefined) env[name] = expandVars(String(e.value), env)
    else if (e.valueFrom?.fieldRef) {
      const path = String(e.valueFrom.fieldRef.fieldPath)
      if (!(path in fields)) throw new ManifestError(`${where}.env[${name}]: fieldRef ${path} not translated`)
      env[name] = fields[path]!
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef as Obj
      const v = configMaps[String(ref.name)]?.[String(ref.key)]
      if (v === undefined) throw new ManifestError(`${where}.env[${name}]: no key ${String(ref.key)} in ConfigMap ${String(ref.name)}`)
      env[name] = opts.configOverrides?.[String(ref.key)] ?? v
    } else throw new ManifestError(`${where}.env[${name}]: neither value nor a translated valueFrom`)
  }
  for (const [k, v] of Object.entries(env)) flags.push('--env', `${k}=${v}`)

  // --- what runs: command replaces the image's entrypoint, args its CMD
  const command = (c.command ?? []) as string[]
  const args = [...command.slice(1), ...((c.args ?? []) as string[])].map((a) => expandVars(String(a), env))
  if (command.length > 0) flags.push('--entrypoint', String(command[0]))

  return {
    image: String(c.image),
    flags,
    args,
    env,
    hostPaths,
    privileged,
    capAdd,
    capDrop,
    ...(c.livenessProbe ? { liveness: httpProbe(c.livenessProbe as Obj, `${where}.livenessProbe`, opts.node.hostIP)! } : {}),
    ...(c.readinessProbe ? { readiness: httpProbe(c.readinessProbe as Obj, `${where}.readinessProbe`, opts.node.hostIP)! } : {}),
  }
}
