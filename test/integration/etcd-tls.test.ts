// TLS to etcd (issue 10, item 6; DESIGN.md §3): etcd serving TLS only and
// requiring client certificates, all made here with openssl in a temp dir.
// weftctl and weftd work with --cacert --cert --key and print no warning
// (grpc-js's own TLS sends an IP endpoint as SNI, which Node answers with
// DEP0123: shown first, so the "no warning" checks can be seen to fire); a
// wrong CA, a missing client certificate and a wrong server name each give
// one line naming the certificate problem.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { OverlayConfig } from '../../src/crds/index.js'
import { Store } from '../../src/store/index.js'
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js'
import { createTopology, run, type Topology } from '../helpers/netns.js'
import { REPO, runWeftctl } from '../helpers/weftctl.js'
import { startWeftd, until, type Weftd } from '../helpers/weftd.js'

let dir: string
let topo: Topology
let etcd: EtcdProcess
let etcdIP: string
const file = (name: string) => join(dir, name)

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** a CA, and certificates it signs: the server's for `ips`, a client's */
async function makeCerts(ips: string[]) {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  for (const ca of ['ca', 'wrong-ca']) openssl(['req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=weft test ${ca}`])
  const sign = async (name: string, ext: string) => {
    await writeFile(file(`${name}.ext`), ext)
    openssl(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`])
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
  }
  await sign('server', `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth\n`)
  await sign('client', 'extendedKeyUsage=clientAuth\n')
}

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-tls-'))
  topo = await createTopology({ hosts: ['h1'] })
  etcdIP = topo.underlayCidr.replace(/\.0\/24$/, '.2')
  await run('ip', ['-n', topo.switchNetns, 'addr', 'add', `${etcdIP}/24`, 'dev', 'br0'])
  // the test reaches etcd at 127.0.0.1 (a relay), the host at etcdIP: the certificate names both, and no name
  await makeCerts(['127.0.0.1', etcdIP])
  etcd = await startEtcd({
    netns: topo.switchNetns,
    listenIP: etcdIP,
    tls: { cert: file('server.crt'), key: file('server.key'), ca: file('ca.crt'), client: { cert: file('client.crt'), key: file('client.key') } },
  })
})

t.teardown(async () => {
  await etcd?.destroy()
  await topo?.destroy()
  await rm(dir, { recursive: true, force: true })
})

const tlsFlags = () => ['--cacert', file('ca.crt'), '--cert', file('client.crt'), '--key', file('client.key')]
const overlay = `apiVersion: weft.dev/v1alpha1
kind: OverlayConfig
metadata: {name: default}
spec: {network: 10.2.0.0/16, backend: {type: host-gw}}
`

t.test("grpc-js's own TLS credentials to an IP endpoint print DEP0123 (what the checks below look for)", async (t) => {
  const script = `
    const grpc = require('@grpc/grpc-js'); const fs = require('fs')
    const creds = grpc.credentials.createSsl(fs.readFileSync(${JSON.stringify(file('ca.crt'))}), fs.readFileSync(${JSON.stringify(file('client.key'))}), fs.readFileSync(${JSON.stringify(file('client.crt'))}))
    const c = new grpc.Client(${JSON.stringify(etcd.endpoint.replace(/^https:\/\//, ''))}, creds)
    c.waitForReady(Date.now() + 3000, (err) => { process.stdout.write(err ? 'error ' + err.message : 'ready'); process.exit(0) })`
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'))
  const { stdout, stderr } = spawnSync(process.execPath, ['-e', script], { cwd: REPO, env, encoding: 'utf8' })
  t.match(stdout, /^(ready|error .*)$/, `it dialled (${stdout})`)
  t.match(stderr, /DEP0123/, 'and Node warned on stderr as the TLS connection started')
})

t.test('weftctl with --cacert --cert --key: works, nothing on stderr', async (t) => {
  const base = ['--endpoints', etcd.endpoint, '--prefix', '/weft-tls', ...tlsFlags()]
  const apply = await runWeftctl([...base, 'apply', '-f', '-'], { input: overlay })
  t.equal(apply.code, 0, `apply: ${apply.stderr}`)
  t.equal(apply.stdout, 'overlayconfig/default created\n')
  t.equal(apply.stderr, '', 'no warning on stderr')
  const get = await runWeftctl([...base, 'get', 'oc', 'default', '-o', 'name'])
  t.equal(get.code, 0, `get: ${get.stderr}`)
  t.equal(get.stdout, 'overlayconfig/default\n')
  t.equal(get.stderr, '', 'no warning on stderr')
})

const failures: [string, (endpoint: string) => string[], RegExp][] = [
  [
    'a wrong CA',
    (ep) => ['--endpoints', ep, '--cacert', file('wrong-ca.crt'), '--cert', file('client.crt'), '--key', file('client.key')],
    /^error: TLS to etcd at 127\.0\.0\.1:\d+ failed: its server certificate is not signed by the CA in --cacert \S+wrong-ca\.crt \([A-Z_]+\)\n$/,
  ],
  [
    'no client certificate',
    (ep) => ['--endpoints', ep, '--cacert', file('ca.crt')],
    /^error: TLS to etcd at 127\.0\.0\.1:\d+ failed: etcd requires a client certificate; pass --cert and --key \(ERR_SSL_[A-Z0-9_]+\)\n$/,
  ],
  [
    'a wrong server name',
    // the same etcd by a name its certificate does not carry
    (ep) => ['--endpoints', ep.replace('127.0.0.1', 'localhost'), ...tlsFlags()],
    /^error: TLS to etcd at localhost:\d+ failed: its server certificate is not valid for this address: .*localhost.* \(ERR_TLS_CERT_ALTNAME_INVALID\)\n$/,
  ],
]

for (const [what, args, pattern] of failures) {
  t.test(`${what}: one line naming the certificate problem`, async (t) => {
    const r = await runWeftctl([...args(etcd.endpoint), '--prefix', '/weft-tls', 'get', 'oc'])
    t.equal(r.code, 1, 'exit 1')
    t.match(r.stderr, pattern, r.stderr)
    t.equal(r.stdout, '')
  })
}

t.test('weftd with --cacert --cert --key: claims its lease over TLS, no warning in its output', async (t) => {
  const prefix = '/weft-tls-agent'
  const store = Store.connect({ endpoints: [etcd.endpoint], prefix, cacert: file('ca.crt'), cert: file('client.crt'), key: file('client.key') })
  t.teardown(() => store.close())
  await store.create({ apiVersion: 'weft.dev/v1alpha1', kind: 'OverlayConfig', metadata: { name: 'default' }, spec: { network: '10.2.0.0/16', backend: { type: 'host-gw' } } } as OverlayConfig)
  const w: Weftd = await startWeftd(topo, topo.hosts[0]!, { endpoint: etcd.netnsEndpoint, prefix, dir: join(dir, 'agent'), args: tlsFlags() })
  t.teardown(() => w.kill('SIGKILL'))
  const lease = await until('a lease for h1', () => store.get('HostLease', 'h1').catch(() => undefined), 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${w.output().slice(-3000)}`)
  })
  t.match(lease.spec.subnet, /^10\.2\.\d+\.0\/24$/, `h1 holds ${lease.spec.subnet}`)
  t.ok(etcd.netnsEndpoint.startsWith(`https://${etcdIP}:`), 'through an IP endpoint')
  t.notMatch(w.output(), /DEP0123|Warning:/, 'no warning in its output')
})
