// The udp forwarder driven in a child node process inside a host namespace
// (test/integration/udp-forwarder.test.ts's child mode: JSON lines over
// stdin/stdout), and the traffic both forwarder tests send through it. No tap
// here: the child mode loads none.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { nsenterArgs, run } from './netns.js'

export type Counters = Record<string, number>

export class ForwarderChild {
  private lines: string[] = []
  private waiters: ((line: string) => void)[] = []
  ready!: { info: { tunName: string; port: number; gatewayIP: string }; features: Record<string, unknown> }

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const w = this.waiters.shift()
      if (w) w(line)
      else this.lines.push(line)
    })
  }

  next(timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const line = this.lines.shift()
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as Record<string, unknown>)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('forwarder child did not answer')), timeoutMs)
      this.waiters.push((l) => {
        clearTimeout(timer)
        resolve(JSON.parse(l) as Record<string, unknown>)
      })
    })
  }

  async request(cmd: object): Promise<Record<string, unknown>> {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n')
    const r = await this.next()
    if (r.error) throw new Error(String(r.error))
    return r
  }

  async counters(): Promise<Counters> {
    return (await this.request({ op: 'counters' })).counters as Counters
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
  }
}

/** node -e CODE inside a namespace; its stdout */
export const nsNode = (netns: string, code: string, timeoutMs = 30_000) => run('nsenter', nsenterArgs(netns, process.execPath, ['-e', code]), timeoutMs)

/** One UDP/IPv4 datagram from inside a namespace, e.g. a forged encapsulated packet to a forwarder's port. */
export async function sendDatagram(netns: string, to: string, port: number, payload: Buffer): Promise<void> {
  await nsNode(netns, `const s=require('dgram').createSocket('udp4');s.send(Buffer.from('${payload.toString('hex')}','hex'),${port},'${to}',(e)=>{s.close();process.exit(e?1:0)})`)
}

/** TCP transfer of `bytes` random bytes from one namespace to `toIP` (IPv4 or IPv6) in another: sha256 sent and received, bytes received. */
export async function transfer(fromNetns: string, toNetns: string, toIP: string, bytes: number, port = 5000): Promise<{ sent: string; received: string; n: number }> {
  const listenOn = toIP.includes(':') ? `,'::'` : ''
  const server = spawn(
    'nsenter',
    nsenterArgs(toNetns, process.execPath, [
      '-e',
      `const net=require('net'),h=require('crypto').createHash('sha256');let n=0;
       const s=net.createServer(c=>{c.on('data',d=>{h.update(d);n+=d.length});c.on('end',()=>{console.log(JSON.stringify({n,sha:h.digest('hex')}));c.end();s.close()})});
       s.listen(${port}${listenOn},()=>console.log('listening'));setTimeout(()=>process.exit(2),60000).unref()`,
    ]),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  try {
    const lines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]()
    if ((await lines.next()).value !== 'listening') throw new Error('transfer server did not start')
    const sent = (
      await nsNode(
        fromNetns,
        `const net=require('net'),crypto=require('crypto');const b=crypto.randomBytes(${bytes});
         const c=net.connect(${port},'${toIP}',()=>c.end(b));c.resume();
         c.on('close',()=>console.log(crypto.createHash('sha256').update(b).digest('hex')));
         c.on('error',e=>{console.error(e.message);process.exit(1)})`,
        60_000,
      )
    ).trim()
    const got = JSON.parse(String((await lines.next()).value)) as { n: number; sha: string }
    return { sent, received: got.sha, n: got.n }
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL')
  }
}
