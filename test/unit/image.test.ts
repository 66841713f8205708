// The image's one definition holds together: the DaemonSet and the docker run
// example name image/name tagged with package.json's version and run it with
// the same privileges, mounts and arguments; the Dockerfile and
// scripts/image.sh build from the same image/ files; the DaemonSet's pod
// translates to docker run flags (test/helpers/daemonset.ts) and refuses what
// it cannot translate.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { dockerMemory, expandVars, loadManifests, translateDaemonSet } from '../helpers/daemonset.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const read = (p: string) => readFileSync(`${REPO}${p}`, 'utf8')
const version = (JSON.parse(read('package.json')) as { version: string }).version
const IMAGE = `${read('image/name').trim()}:${version}`
const { daemonset, configMaps } = loadManifests()

/** The example's `docker run` as words: continuation lines joined, the shell's quotes kept out of the way. */
function dockerRunWords(script: string): string[] {
  const line = script.replace(/\\\n/g, ' ').split('\n').find((l) => /^\s*exec docker run /.test(l))
  if (!line) throw new Error('manifests/docker/run.sh: no `exec docker run` line')
  return line.trim().split(/\s+/).slice(3)
}

/** flag words into "flag value" strings (a value-less --env NAME stays one), the image, its arguments */
function splitRun(words: string[]): { flags: string[]; image: string; args: string[] } {
  const flags: string[] = []
  const noValue = new Set(['--detach', '--privileged', '--read-only'])
  let i = 0
  for (; i < words.length && words[i]!.startsWith('--'); i++) {
    if (noValue.has(words[i]!)) flags.push(words[i]!)
    else flags.push(`${words[i]} ${words[++i]}`)
  }
  return { flags, image: words[i]!, args: words.slice(i + 1) }
}

t.test('the DaemonSet and the docker run example name image/name at package.json version', async (t) => {
  t.equal(daemonset.spec.template.spec.containers[0].image, IMAGE)
  t.equal(splitRun(dockerRunWords(read('manifests/docker/run.sh'))).image, IMAGE)
  t.match(read('scripts/image.sh'), 'image/name', 'image.sh tags with image/name by default')
})

t.test('the docker run example runs the image as the DaemonSet does', async (t) => {
  const example = splitRun(dockerRunWords(read('manifests/docker/run.sh')))
  const pod = translateDaemonSet(daemonset, configMaps, { node: { name: 'n', hostIP: '192.0.2.1' }, name: 'weftd', charDevices: 'device' })
  const notEnv = (f: string) => !f.startsWith('--env ')
  const podFlags = splitRun([...pod.flags, pod.image]).flags
  t.same(example.flags.filter(notEnv).filter((f) => f !== '--detach').sort(), podFlags.filter(notEnv).sort(), 'same network, privileges, mounts, device, limits, restart')
  t.same(example.args, pod.args, 'same arguments')
  const exampleEnv = example.flags.filter((f) => f.startsWith('--env ')).map((f) => f.slice(6).split('=')[0])
  for (const key of Object.keys(configMaps.weftd!)) t.ok(exampleEnv.includes(key), `the example sets ${key} as the ConfigMap does`)
  t.notOk(pod.privileged, 'not privileged')
  t.same(pod.capDrop, ['ALL'])
  t.same([...pod.capAdd].sort(), ['NET_ADMIN', 'NET_RAW'])
})

t.test('the probes: liveness on /livez, readiness on /readyz (DESIGN.md §5)', async (t) => {
  const pod = translateDaemonSet(daemonset, configMaps, { node: { name: 'n', hostIP: '192.0.2.1' } })
  t.match(pod.liveness, { path: '/livez', port: 9811, host: '192.0.2.1' })
  t.match(pod.readiness, { path: '/readyz', port: 9811, host: '192.0.2.1' })
  t.equal(pod.env.WEFT_HEALTHZ_ADDR, '192.0.2.1:9811', 'weftd listens where kubelet probes: the node address')
})

t.test('the translation: Downward API, ConfigMap, $(VAR), hostPaths', async (t) => {
  const pod = translateDaemonSet(daemonset, configMaps, {
    node: { name: 'node-1', hostIP: '192.0.2.7' },
    configOverrides: { WEFT_ETCD_ENDPOINTS: 'http://192.0.2.2:2379' },
    hostPath: (p) => `/tmp/h${p}`,
  })
  t.match(pod.env, { WEFT_HOST_NAME: 'node-1', WEFT_PUBLIC_IP: '192.0.2.7', WEFT_ETCD_ENDPOINTS: 'http://192.0.2.2:2379', WEFT_PREFIX: '/weft' })
  t.ok(pod.flags.includes('--network'), 'host network')
  t.ok(pod.flags.includes('type=bind,source=/tmp/h/dev/net/tun,target=/dev/net/tun'), 'a CharDevice hostPath is a bind, as kubelet mounts it')
  t.notOk(pod.flags.includes('--device'))
  t.equal(expandVars('$(A):$(B)$$(A)', { A: 'x' }), 'x:$(B)$(A)', 'unknown variables stay, $$ escapes')
  t.equal(dockerMemory('128Mi'), '128m')
  t.equal(dockerMemory('100M'), '100000000')
})

t.test('the translation refuses what it does not know, so nothing is silently left out', async (t) => {
  const withPod = (f: (pod: Record<string, unknown>, c: Record<string, unknown>) => void) => {
    const copy = structuredClone(daemonset)
    f(copy.spec.template.spec, copy.spec.template.spec.containers[0])
    return copy
  }
  const node = { node: { name: 'n', hostIP: '192.0.2.1' } }
  t.throws(() => translateDaemonSet(withPod((p) => (p.hostPID = true)), configMaps, node), /spec\.template\.spec\.hostPID: not translated/)
  t.throws(() => translateDaemonSet(withPod((_, c) => (c.workingDir = '/x')), configMaps, node), /workingDir: not translated/)
  t.throws(() => translateDaemonSet(withPod((p) => (p.hostNetwork = false)), configMaps, node), /hostNetwork/)
  t.throws(() => translateDaemonSet(withPod((_, c) => ((c.securityContext as Record<string, unknown>).seccompProfile = {})), configMaps, node), /seccompProfile/)
  t.throws(() => translateDaemonSet(withPod((p) => (p.volumes = [{ name: 'run-weft', emptyDir: {} }])), configMaps, node), /only hostPath|no such volume/)
})

t.test('the Dockerfile and scripts/image.sh build from the same definition', async (t) => {
  const dockerfile = read('Dockerfile')
  const last = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  t.match(last, /^\nFROM scratch\n/, 'the image is only what image/rootfs.mjs assembles')
  t.match(last, /^COPY --from=rootfs \/rootfs \/$/m)
  t.same(last.split('\n').filter((l) => /^(RUN|COPY|ADD) /.test(l)), ['COPY --from=rootfs /rootfs /'], 'no other files: import --change cannot add any')
  t.match(last, /^ENTRYPOINT \["\/opt\/weft\/entrypoint\.sh"\]$/m)
  t.match(dockerfile, 'image/packages', 'the Dockerfile installs image/packages')
  t.match(dockerfile, /node \/image\/rootfs\.mjs --root \//, 'and assembles with image/rootfs.mjs')
  const files = read('image/files')
  t.match(files, /^image entrypoint\.sh \/opt\/weft\/entrypoint\.sh$/m, 'image/files ships the entrypoint')
  const script = read('scripts/image.sh')
  t.match(script, 'image/packages')
  t.match(script, 'image/rootfs.mjs')
  t.match(script, /ENV\|ENTRYPOINT/, "image.sh takes the Dockerfile's last-stage ENV and ENTRYPOINT")
  t.match(read('image/entrypoint.sh'), /^exec \/opt\/weft\/bin\/weftd "\$@"$/m, 'the entrypoint ends as weftd with the pod\'s arguments')
})

t.test('every program the agent runs is in the image', async (t) => {
  // what image/files puts on the PATH: deb entries and links, by their base name
  const inImage = new Set(
    read('image/files')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([kind]) => kind === 'deb' || kind === 'deb?' || kind === 'link')
      .map(([, path]) => path!.split('/').pop()!),
  )
  // every `run('prog'`, `spawn('prog'` and execFile of a literal name in the agent's sources
  const { readdirSync } = await import('node:fs')
  const sources = (dir: string): string[] =>
    readdirSync(`${REPO}${dir}`, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : []))
  const programs = new Map<string, string>()
  for (const file of sources('src')) {
    if (file.startsWith('src/cli/')) continue // weftctl is not in the image
    for (const m of read(file).matchAll(/\b(?:run|spawn|execFile|exec)\(\s*'([a-z][\w.-]*)'/g)) programs.set(m[1]!, file)
  }
  t.ok(programs.has('wireguard-go') && programs.has('ip'), `the scan finds the adapters' programs: ${[...programs.keys()].sort().join(' ')}`)
  t.notOk(inImage.has('no-such-program'), 'a program the image lacks is seen missing')
  // the runner for a named namespace (tests, the bench); the pod is in the host's network namespace already
  const outsideThePod = new Set(['nsenter'])
  for (const [program, file] of programs) if (!outsideThePod.has(program)) t.ok(inImage.has(program), `${program} (run by ${file}) is in image/files`)
})
