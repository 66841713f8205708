// The host's WireGuard key file: made once (0600 in a 0700 directory), read back
// unchanged on every later start, and an unparsable file is an error naming the
// file that never echoes what the file holds.
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { WgKeyError, isWgKey, loadOrCreateKey, publicKeyOf } from '../../src/host/wgkey.js'

const tmp = await mkdtemp(join(tmpdir(), 'weft-wgkey-'))
t.teardown(() => rm(tmp, { recursive: true, force: true }))
/** `wg pubkey`, the reference implementation */
const wgPubkey = (privateKey: string) => execFileSync('wg', ['pubkey'], { input: `${privateKey}\n` }).toString().trim()

t.test('first start makes the key: file 0600, new directories 0700, a clamped x25519 key wg agrees with', async (t) => {
  const path = join(tmp, 'first', 'var-lib-weft', 'wireguard.key')
  const pair = await loadOrCreateKey(path)
  t.equal((await stat(path)).mode & 0o777, 0o600, 'file 0600')
  t.equal((await stat(join(tmp, 'first', 'var-lib-weft'))).mode & 0o777, 0o700, 'its directory 0700')
  t.equal((await stat(join(tmp, 'first'))).mode & 0o777, 0o700, 'every directory it made 0700')
  t.equal(await readFile(path, 'utf8'), `${pair.privateKey}\n`, 'the file holds the private key, as wg genkey writes it')
  t.ok(isWgKey(pair.privateKey) && isWgKey(pair.publicKey))
  t.equal(pair.publicKey, wgPubkey(pair.privateKey), 'public key as wg pubkey computes it')
  const raw = Buffer.from(pair.privateKey, 'base64')
  t.equal(raw[0]! & 7, 0, 'clamped: low bits clear')
  t.equal(raw[31]! & 0xc0, 0x40, 'clamped: top bit clear, bit 254 set')

  const before = await stat(path)
  t.same(await loadOrCreateKey(path), pair, 'a later start reads the same key')
  const after = await stat(path)
  t.equal(after.ino, before.ino, 'the file is not replaced')
  t.equal(after.mtimeMs, before.mtimeMs, 'nor rewritten')
  t.not((await loadOrCreateKey(join(tmp, 'other', 'wireguard.key'))).privateKey, pair.privateKey, 'another host gets another key')
})

t.test('a key file made by wg genkey is read as it is; a loose mode is tightened to 0600', async (t) => {
  const privateKey = execFileSync('wg', ['genkey']).toString().trim()
  const path = join(tmp, 'genkey.key')
  await writeFile(path, `${privateKey}\n`)
  await chmod(path, 0o644)
  t.same(await loadOrCreateKey(path), { privateKey, publicKey: wgPubkey(privateKey) })
  t.equal((await stat(path)).mode & 0o777, 0o600)
  await writeFile(path, privateKey)
  t.equal((await loadOrCreateKey(path)).privateKey, privateKey, 'no trailing newline is fine too')
})

t.test('a file that exists but holds no key stops with a WgKeyError naming the file, never a new key', async (t) => {
  const secret = execFileSync('wg', ['genkey']).toString().trim()
  const cases: [string, string][] = [
    ['empty', ''],
    ['text', 'hello\n'],
    ['two keys', `${secret}\n${secret}\n`],
    ['key and junk', `${secret} # my key\n`],
    ['31 bytes', `${Buffer.alloc(31, 7).toString('base64')}\n`],
    ['33 bytes', `${Buffer.alloc(33, 7).toString('base64')}\n`],
    ['hex', `${Buffer.alloc(32, 7).toString('hex')}\n`],
  ]
  for (const [name, content] of cases) {
    const path = join(tmp, `bad-${name.replace(/ /g, '-')}.key`)
    await writeFile(path, content, { mode: 0o600 })
    const err = await loadOrCreateKey(path).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.type(err, WgKeyError, `${name}: WgKeyError`)
    const message = (err as Error).message
    t.ok(message.includes(path), `${name}: the message names the file`)
    // the check below can fire: the secret is in what the file holds
    if (content.includes(secret)) t.notOk(message.includes(secret), `${name}: the message does not echo the private key`)
    t.equal(await readFile(path, 'utf8'), content, `${name}: the file is left as it was`)
  }
  const dir = join(tmp, 'a-directory.key')
  await mkdir(dir)
  await t.rejects(loadOrCreateKey(dir), { name: 'WgKeyError', message: new RegExp(`${dir} cannot be read \\(EISDIR\\)`) })
})

t.test('a key path that cannot be used is a WgKeyError naming it', async (t) => {
  const blocker = join(tmp, 'blocker')
  await writeFile(blocker, 'a file where a directory should be')
  const path = join(blocker, 'wireguard.key')
  await t.rejects(loadOrCreateKey(path), { name: 'WgKeyError', message: new RegExp(`${path} cannot be read \\(ENOTDIR\\)`) })
})

t.test('publicKeyOf matches wg pubkey and rejects a non-key without echoing it', async (t) => {
  for (let i = 0; i < 5; i++) {
    const k = execFileSync('wg', ['genkey']).toString().trim()
    t.equal(publicKeyOf(k), wgPubkey(k))
  }
  const notAKey = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I='
  const err = (() => {
    try {
      publicKeyOf(`${notAKey}x`)
    } catch (e) {
      return e as Error
    }
    return undefined
  })()
  t.type(err, WgKeyError)
  t.notOk(err?.message.includes(notAKey), 'the input is not in the message')
  t.equal(isWgKey(''), false)
  t.equal(isWgKey(`${Buffer.alloc(32).toString('base64').slice(0, 42)}B=`), false, 'non-canonical base64 (stray bits in the last character) is no key')
})
