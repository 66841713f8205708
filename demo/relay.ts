// A byte relay between a TCP address and a unix socket. The demo's hosts are
// network namespaces whose loopback cannot reach the root namespace's etcd;
// a unix socket lives in the shared filesystem, so a relay pair carries etcd's
// gRPC into each host without touching any route or link of the machine:
//   host ns 127.0.0.1:2379 -> (tcp-to-unix) -> sock -> (unix-to-tcp) -> etcd
//
//   relay unix-to-tcp <socket-path> <host:port>
//   relay tcp-to-unix <host:port> <socket-path>
import { connect, createServer, type Socket } from 'node:net'
import { rmSync } from 'node:fs'

const [mode, from, to] = process.argv.slice(2)
if (!mode || !from || !to || !['unix-to-tcp', 'tcp-to-unix'].includes(mode)) {
  process.stderr.write('usage: relay unix-to-tcp <socket> <host:port> | tcp-to-unix <host:port> <socket>\n')
  process.exit(2)
}

const hostPort = (text: string) => {
  const i = text.lastIndexOf(':')
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) }
}

const dial = (): Socket => (mode === 'unix-to-tcp' ? connect(hostPort(to)) : connect(to))

const server = createServer((client) => {
  const upstream = dial()
  client.pipe(upstream).pipe(client)
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', end).on('close', end)
  upstream.on('error', end).on('close', end)
})

if (mode === 'unix-to-tcp') {
  rmSync(from, { force: true })
  server.listen(from)
} else {
  server.listen(hostPort(from))
}
server.on('listening', () => process.stdout.write('ready\n'))
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)))
