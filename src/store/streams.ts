// Letting go of a gRPC stream of our own on purpose (a watch, a keepalive): its
// events no longer reach us, and it is half-closed before it is cancelled, so
// etcd3 does not count it as the member's failure.

/** what abandon() needs of grpc's ClientDuplexStream (etcd3 types it narrowly) */
export interface OwnStream {
  removeAllListeners(): unknown
  on(event: 'error', listener: () => void): unknown
  end(): unknown
  cancel(): void
}

export function abandon(stream: OwnStream): void {
  stream.removeAllListeners()
  stream.on('error', () => undefined)
  stream.end()
  stream.cancel()
}
