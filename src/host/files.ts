// Files other tools read while weft may be rewriting them (subnet.env, the
// docker opts file): a reader sees the old content or the new, never half,
// and an unchanged file is not touched, so inotify/systemd path units fire
// only on real changes.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export interface WriteOptions {
  /** default 0o644 */
  mode?: number
}

/**
 * Write content to path via a temp file in the same directory, fsync and
 * rename; creates the parent directory. Returns false, writing nothing, when
 * the file already holds exactly this content and mode.
 */
export async function writeFileAtomic(path: string, content: string, opts: WriteOptions = {}): Promise<boolean> {
  const mode = opts.mode ?? 0o644
  const current = await readFile(path, 'utf8').catch(() => undefined)
  if (current === content && ((await stat(path)).mode & 0o7777) === mode) return false

  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o755 })
  // same directory, so rename is atomic (same filesystem)
  const temp = join(dir, `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const file = await open(temp, 'wx', mode)
    try {
      await file.writeFile(content)
      // open() applies the umask; the mode asked for is the mode meant
      await file.chmod(mode)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw err
  }
  // the rename itself survives a crash only once the directory is synced
  const dirHandle = await open(dir, 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
  return true
}
