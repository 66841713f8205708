// What decoding one watch message costs: weft's WatchResponse decoder
// (src/store/watch-codec.ts) beside etcd3's own (protobufjs through
// proto-loader, int64s to strings through `long`), on the message every
// agent receives at a join elsewhere: one header and two puts, the HostLease
// (its JSON about 2.5 KB) and its subnet claim. In this process, no etcd.
//
//   npx tsx bench/watch-decode.ts [--messages 200000] [--value-bytes 2500]
//   node --jitless --import tsx bench/watch-decode.ts --messages 20000   (as bin/weftd runs the agent)
import { parseArgs } from 'node:util'
import type { ServiceClientConstructor } from '@grpc/grpc-js'
import { Etcd3, type IWatchResponse } from 'etcd3'
import { decodeWatchResponse } from '../src/store/watch-codec.js'

const { values } = parseArgs({ options: { messages: { type: 'string', default: '200000' }, 'value-bytes': { type: 'string', default: '2500' } } })
const messages = Number(values.messages)
const valueBytes = Number(values['value-bytes'])

// etcd3's encoder and decoder of the Watch method, as its streams use them (no connection is made)
const etcd = new Etcd3({ hosts: '127.0.0.1:1' })
const client = (etcd.watchClient as unknown as { client: { hosts: { getServiceClient(name: string): object }[] } }).client.hosts[0]!.getServiceClient('Watch')
const method = (client.constructor as ServiceClientConstructor).service['Watch']!

const kv = (key: string, value: string) => ({ key: Buffer.from(key), create_revision: '81214', mod_revision: '81214', version: '1', value: Buffer.from(value), lease: '7587863208545163300' })
const join: Buffer = method.responseSerialize({
  header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '81214', raft_term: '7' },
  events: [
    { type: 'Put', kv: kv('/weft/hostleases/h-2001', 'x'.repeat(valueBytes)) },
    { type: 'Put', kv: kv('/weft/subnets/default/10.7.209.0-24', 'h-2001') },
  ],
})

function time(decode: (buf: Buffer) => IWatchResponse): number {
  // warm up, then time; the median of five runs
  for (let i = 0; i < Math.min(messages, 20_000); i++) decode(join)
  const runs: number[] = []
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < messages / 5; i++) decode(join)
    runs.push(Number(process.hrtime.bigint() - start) / 1e3 / (messages / 5))
  }
  return runs.sort((a, b) => a - b)[2]!
}

const theirs = time((buf) => method.responseDeserialize(buf) as IWatchResponse)
const ours = time(decodeWatchResponse)
etcd.close()
console.log(`one join's watch message (${join.length} bytes: a header, two puts), decoded, median of 5 runs of ${messages / 5}`)
console.log(`  weft (watch-codec.ts)              ${ours.toFixed(2)} µs`)
console.log(`  reference: etcd3 (protobufjs)      ${theirs.toFixed(2)} µs`)
console.log(`  at 2000 hosts, per join: ${((ours * 2000) / 1000).toFixed(1)} ms of the fleet's CPU, beside ${((theirs * 2000) / 1000).toFixed(1)} ms`)
