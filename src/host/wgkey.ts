// The host's WireGuard key pair. The private key is made here on first start
// (x25519 from node:crypto, no `wg genkey` child) and kept in one file, mode
// 0600, that outlives reboots: a new key would cut every peer until they have
// all read the new lease, so a file that exists but cannot be parsed is an
// error, never a reason to make another. The private key never appears in an
// error message: errors name the file and what is wrong with it.
export interface WgKeyPair {
  /** base64, 32 bytes */
  privateKey: string
  /** base64, 32 bytes */
  publicKey: string
}

export class WgKeyError extends Error {
  override readonly name = 'WgKeyError'
}

export function loadOrCreateKey(path: string): Promise<WgKeyPair> {
  return Promise.reject(new WgKeyError(`${path}: loadOrCreateKey not implemented yet`))
}

export function publicKeyOf(privateKey: string): string {
  void privateKey
  throw new WgKeyError('publicKeyOf not implemented yet')
}
