// A loopback TCP proxy to a TCP port or a unix socket. Tests cut it to
// disconnect one etcd client while another keeps writing (etcd stays up); the
// etcd helper uses it to reach an etcd inside a namespace over its unix socket.
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface CuttableProxy {
  endpoint: string
  cut(): void
  restore(): void
  close(): Promise<void>
}

/** target: a port on 127.0.0.1, or a unix socket path */
export async function startProxy(target: number | string): Promise<CuttableProxy> {
  const sockets = new Set<Socket>()
  let cut = false
  const server: Server = createServer((client) => {
    if (cut) return client.destroy()
    const upstream = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut() {
      cut = true
      for (const s of sockets) s.destroy()
    },
    restore() {
      cut = false
    },
    async close() {
      cut = true
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
