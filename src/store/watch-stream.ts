// One etcd Watch stream, opened as etcd3's WatchClient.watch() opens it (the
// member its pool picks, the auth metadata, a member whose stream errors while
// still writable marked failed), but decoding each message with our own
// decoder (watch-codec.ts) instead of protobufjs: every agent decodes every
// change of the range it watches.
//
// etcd3 keeps its pool and the service clients it makes to itself; the pool is
// reached through the WatchClient that holds it, and the request encoder is the
// one grpc's generated client carries for this method (its `service`).
import type { EventEmitter } from 'node:events'
import type { Client, Metadata, ServiceClientConstructor } from '@grpc/grpc-js'
import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3'
import { decodeWatchResponse } from './watch-codec.js'

/** etcd3 types the stream narrowly; it is grpc's ClientDuplexStream, an EventEmitter */
export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse> & Pick<EventEmitter, 'removeAllListeners'>

/** what this file uses of etcd3's ConnectionPool */
interface Pool {
  withConnection<T>(service: 'Watch', fn: (args: { resource: unknown; client: Client; metadata: Metadata }) => T): Promise<T>
  markFailed(resource: unknown, error: Error): void
}

export function openWatchStream(etcd: Etcd3): Promise<WatchStream> {
  const pool = (etcd.watchClient as unknown as { client: Pool }).client
  return pool.withConnection('Watch', ({ resource, client, metadata }) => {
    const method = (client.constructor as ServiceClientConstructor).service['Watch']
    if (!method) throw new Error('etcd3 client has no Watch method')
    const stream = client.makeBidiStreamRequest(method.path, method.requestSerialize, decodeWatchResponse, metadata, {})
    stream.on('error', (err: Error) => stream.writable && pool.markFailed(resource, err))
    return stream as unknown as WatchStream
  })
}
