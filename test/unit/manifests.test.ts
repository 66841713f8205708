// The deployment manifests are data other tools read (kustomize, kubelet,
// systemd): check they hold together without those tools installed.
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments, parse } from 'yaml'

const MANIFESTS = fileURLToPath(new URL('../../manifests/', import.meta.url))

t.test('kustomization names only files that exist and parse as Kubernetes objects', async (t) => {
  const kustomization = parse(readFileSync(`${MANIFESTS}kustomization.yaml`, 'utf8')) as { resources: string[] }
  t.ok(kustomization.resources.length >= 6)
  for (const res of kustomization.resources) {
    t.ok(existsSync(`${MANIFESTS}${res}`), `${res} exists`)
    for (const doc of parseAllDocuments(readFileSync(`${MANIFESTS}${res}`, 'utf8'))) {
      const obj = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } }
      t.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${res}: apiVersion, kind and name set`)
    }
  }
})

t.test('the DaemonSet runs on the host network with the mounts and probes weftd needs', async (t) => {
  const ds = parse(readFileSync(`${MANIFESTS}kubernetes/daemonset.yaml`, 'utf8')) as {
    spec: { template: { spec: { hostNetwork: boolean; containers: { volumeMounts: { mountPath: string }[]; livenessProbe: { httpGet: { path: string } }; securityContext: { capabilities: { add: string[] } } }[] } } }
  }
  const pod = ds.spec.template.spec
  t.equal(pod.hostNetwork, true)
  const [weftd] = pod.containers
  const mounts = weftd!.volumeMounts.map((m) => m.mountPath)
  for (const path of ['/run/weft', '/run/xtables.lock', '/var/run/docker.sock', '/dev/net/tun']) t.ok(mounts.includes(path), `mounts ${path}`)
  t.equal(weftd!.livenessProbe.httpGet.path, '/livez', 'liveness on /livez (DESIGN.md §5)')
  t.ok(weftd!.securityContext.capabilities.add.includes('NET_ADMIN'))
})

t.test('the docker drop-in starts dockerd with the options weftd writes', async (t) => {
  const dropIn = readFileSync(`${MANIFESTS}systemd/docker.service.d/weft.conf`, 'utf8')
  t.match(dropIn, /EnvironmentFile=-\/run\/weft\/docker/)
  t.match(dropIn, /\$DOCKER_NETWORK_OPTIONS/)
  const unit = readFileSync(`${MANIFESTS}systemd/weftd.service`, 'utf8')
  t.match(unit, /ExecStart=\/usr\/local\/bin\/weftd /)
  t.match(unit, /Before=docker\.service/)
  // systemd's default (control-group) would kill a wireguard-go daemon with every agent restart
  t.match(unit, /^KillMode=process$/m)
})
