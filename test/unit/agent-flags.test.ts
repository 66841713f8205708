import t from 'tap'
import { FlagError, parseFlags, type AgentFlags } from '../../src/agent/flags.js'

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags(argv, env) as AgentFlags

t.test('defaults as DESIGN.md §5', async (t) => {
  const f = parse(['--host-name', 'h1'])
  t.same(f.connection.endpoints, ['http://127.0.0.1:2379'])
  t.equal(f.connection.prefix, '/weft')
  t.equal(f.overlay, 'default')
  t.equal(f.subnetFile, '/run/weft/subnet.env')
  t.equal(f.dockerOptsFile, '/run/weft/docker')
  t.equal(f.dockerHost, 'unix:///var/run/docker.sock')
  t.same(f.healthz, { host: '127.0.0.1', port: 9811 })
  t.equal(f.logLevel, 'info')
  t.equal(f.labels, undefined)
})

t.test('env vars, overridden by flags', async (t) => {
  const env = { WEFT_HOST_NAME: 'from-env', WEFT_ETCD_ENDPOINTS: 'http://10.0.0.1:2379,http://10.0.0.2:2379', WEFT_LABELS: 'zone=a,tier=edge', WEFT_PUBLIC_IP: '192.168.1.9' }
  const f = parse([], env)
  t.equal(f.hostName, 'from-env')
  t.same(f.connection.endpoints, ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'])
  t.same(f.labels, { zone: 'a', tier: 'edge' })
  t.equal(f.publicIP, '192.168.1.9')
  t.equal(parse(['--host-name', 'flag'], env).hostName, 'flag')
})

t.test('bad flags are FlagErrors naming the flag', async (t) => {
  t.throws(() => parse(['--nope']), FlagError)
  t.throws(() => parse(['--host-name', 'Bad_Name']), /--host-name: invalid name "Bad_Name"/)
  t.throws(() => parse(['--public-ip', '1.2.3']), /--public-ip/)
  t.throws(() => parse(['--healthz-addr', '127.0.0.1:99999']), /--healthz-addr/)
  t.throws(() => parse(['--docker-host', 'ssh://me@host']), /--docker-host: invalid address "ssh:\/\/me@host"/)
  t.throws(() => parse(['--docker-host', 'docker.sock']), /--docker-host/)
  t.throws(() => parse(['--docker-host', 'tcp://']), /--docker-host/)
  t.throws(() => parse(['--labels', 'a=b,=c']), /--labels: invalid key ""/)
  t.throws(() => parse(['--endpoints', 'not a url']), /--endpoints/)
})

t.test('--docker-host: the Engine API addresses weftd can reach', async (t) => {
  for (const ok of ['unix:///var/run/docker.sock', '/run/docker.sock', 'tcp://127.0.0.1:2375', 'https://docker.local:2376', 'http://[::1]:2375'])
    t.equal(parse(['--host-name', 'h', '--docker-host', ok]).dockerHost, ok, ok)
})

t.test('--wireguard-key-file: default, env, flag; an absolute path', async (t) => {
  const ep = ['--endpoints', 'http://127.0.0.1:2379']
  t.equal(parse(ep).wireguardKeyFile, '/var/lib/weft/wireguard.key')
  t.equal(parse(ep, { WEFT_WIREGUARD_KEY_FILE: '/etc/weft/wg.key' }).wireguardKeyFile, '/etc/weft/wg.key')
  t.equal(parse([...ep, '--wireguard-key-file', '/srv/k'], { WEFT_WIREGUARD_KEY_FILE: '/etc/weft/wg.key' }).wireguardKeyFile, '/srv/k')
  t.throws(() => parse([...ep, '--wireguard-key-file', 'wg.key']), { name: 'FlagError', message: /--wireguard-key-file: "wg.key" must be an absolute path/ })
})
