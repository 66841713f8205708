// A container image built offline (DESIGN.md §7): Debian's busybox-static as
// /bin/busybox plus a symlink per applet (sh, ping, nc, ip, httpd, ...),
// imported into a test dockerd with `docker import`. The rootfs tarball is
// built once per test process and removed when it exits.
import { mkdtempSync, rmSync } from 'node:fs'
import { copyFile, mkdir, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/host/exec.js'
import type { Dockerd } from './dockerd.js'

export const BUSYBOX_IMAGE = 'weft-busybox:latest'
const BUSYBOX = '/bin/busybox'

let tarball: Promise<string> | undefined
let cacheDir: string | undefined

process.once('exit', () => {
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true })
})

async function buildTarball(): Promise<string> {
  cacheDir = mkdtempSync(join(tmpdir(), 'weft-image-'))
  const root = join(cacheDir, 'rootfs')
  // runc and dockerd bind-mount onto these; an image without them still works, but noisily
  for (const dir of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var/www']) await mkdir(join(root, dir), { recursive: true })
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'))
  const applets = (await run(BUSYBOX, ['--list'])).split('\n').filter((a) => a && a !== 'busybox')
  for (const applet of applets) await symlink('busybox', join(root, 'bin', applet))
  const path = join(cacheDir, 'busybox-rootfs.tar')
  await run('tar', ['-C', root, '--numeric-owner', '-cf', path, '.'])
  return path
}

/** Path of the busybox rootfs tarball, built on first use. */
export function busyboxTarball(): Promise<string> {
  tarball ??= buildTarball().catch((err: unknown) => {
    tarball = undefined
    throw err
  })
  return tarball
}

/** Import the busybox image into a test daemon; returns its tag. */
export async function importBusybox(daemon: Pick<Dockerd, 'docker'>, tag = BUSYBOX_IMAGE): Promise<string> {
  const path = await busyboxTarball()
  await daemon.docker(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', path, tag])
  return tag
}
