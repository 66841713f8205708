// Runs one UdpForwarder inside whatever network namespace it was started in
// (the bench starts it with `nsenter --net`), driven by JSON lines on stdin:
//   argv[2]: UdpForwarderOptions as JSON
//   stdout:  {"ready":true,"info":...,"features":...} once open, or {"error":"..."}
//   stdin:   {"op":"setPeers","peers":[...]} | {"op":"counters"} | {"op":"close"}
//            each answered with one JSON line; stdin closing also closes the forwarder.
import { createInterface } from 'node:readline'
import { UdpForwarder, type UdpForwarderOptions } from '../../src/backends/udp/forwarder.js'

const reply = (o: unknown): void => {
  process.stdout.write(JSON.stringify(o) + '\n')
}

let fwd: UdpForwarder
try {
  fwd = UdpForwarder.open(JSON.parse(process.argv[2] ?? '{}') as UdpForwarderOptions)
} catch (err) {
  reply({ error: (err as Error).message })
  process.exit(1)
}
reply({ ready: true, info: fwd.info, features: fwd.features() })

const shutdown = (): void => {
  fwd.close()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  try {
    const cmd = JSON.parse(line) as { op: string; peers?: { subnet: string; publicIP: string }[] }
    if (cmd.op === 'setPeers') {
      fwd.setPeers(cmd.peers ?? [])
      reply({ ok: true })
    } else if (cmd.op === 'counters') {
      reply({ counters: fwd.counters() })
    } else if (cmd.op === 'close') {
      fwd.close()
      reply({ ok: true })
      process.exit(0)
    } else {
      reply({ error: `unknown op ${cmd.op}` })
    }
  } catch (err) {
    reply({ error: (err as Error).message })
  }
})
rl.on('close', shutdown)
