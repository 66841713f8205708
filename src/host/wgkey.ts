// The host's WireGuard key pair. The private key is made here on first start
// (x25519 from node:crypto, no `wg genkey` child) and kept in one file, mode
// 0600, that outlives reboots: a new key would cut every peer until they have
// all read the new lease, so a file that exists but cannot be parsed is an
// error, never a reason to make another. The private key never appears in an
// error message: errors name the file and what is wrong with it.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileAtomic } from './files.js'

export interface WgKeyPair {
  /** base64, 32 bytes */
  privateKey: string
  /** base64, 32 bytes */
  publicKey: string
}

export class WgKeyError extends Error {
  override readonly name = 'WgKeyError'
}

// DER framing of a raw 32-byte X25519 key (RFC 8410): node:crypto takes and
// gives keys as PKCS#8/SPKI, WireGuard as the bare 32 bytes in base64.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
/** 32 bytes in base64: 43 characters and one '=' */
const KEY_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

/** The 32 bytes of a base64 WireGuard key, or undefined when it is not one. */
function keyBytes(key: string): Buffer | undefined {
  if (!KEY_BASE64.test(key)) return undefined
  const bytes = Buffer.from(key, 'base64')
  return bytes.length === 32 ? bytes : undefined
}

/** True for a base64 32-byte key, as `wg` prints and takes them. */
export function isWgKey(key: string): boolean {
  return keyBytes(key) !== undefined
}

/** The public key of a base64 private key (as `wg pubkey` would print it). */
export function publicKeyOf(privateKey: string): string {
  const raw = keyBytes(privateKey)
  if (!raw) throw new WgKeyError('not a WireGuard private key (one base64 32-byte key expected)')
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
  return spki.subarray(SPKI_X25519_PREFIX.length).toString('base64')
}

function generatePrivateKey(): string {
  const { privateKey } = generateKeyPairSync('x25519')
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  const raw = Buffer.from(der.subarray(PKCS8_X25519_PREFIX.length))
  // clamp as `wg genkey` does, so the file holds exactly what WireGuard uses
  raw[0]! &= 248
  raw[31]! &= 127
  raw[31]! |= 64
  return raw.toString('base64')
}

/**
 * Read the key file, or make it on first start: file 0600, its directory 0700
 * when this creates it (an existing directory keeps its mode: it may be shared,
 * e.g. /etc). A file readable by group or others is tightened to 0600.
 */
export async function loadOrCreateKey(path: string): Promise<WgKeyPair> {
  let content: string | undefined
  try {
    content = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new WgKeyError(`WireGuard key file ${path} cannot be read (${code ?? 'unknown error'})`)
  }
  if (content === undefined) {
    const privateKey = generatePrivateKey()
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      await writeFileAtomic(path, `${privateKey}\n`, { mode: 0o600 })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new WgKeyError(`WireGuard key file ${path} cannot be written (${code ?? 'unknown error'})`)
    }
    return { privateKey, publicKey: publicKeyOf(privateKey) }
  }
  const privateKey = content.replace(/\r?\n$/, '')
  if (!isWgKey(privateKey)) {
    throw new WgKeyError(`WireGuard key file ${path} does not hold a private key (one base64 32-byte key expected, as \`wg genkey\` writes); move it away to make a new key, which every peer must then learn`)
  }
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600)
  return { privateKey, publicKey: publicKeyOf(privateKey) }
}
