import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { writeFileAtomic } from '../../src/host/files.js'

t.test('atomic write creates, skips unchanged content, replaces changed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-files-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'run', 'weft', 'subnet.env')

  t.equal(await writeFileAtomic(path, 'FLANNEL_MTU=1472\n'), true, 'created with its parent dirs')
  t.equal(await readFile(path, 'utf8'), 'FLANNEL_MTU=1472\n')
  t.equal((await stat(path)).mode & 0o777, 0o644)
  const inode = (await stat(path)).ino

  t.equal(await writeFileAtomic(path, 'FLANNEL_MTU=1472\n'), false, 'same content is not rewritten')
  t.equal((await stat(path)).ino, inode, 'the file was not replaced')

  t.equal(await writeFileAtomic(path, 'FLANNEL_MTU=1450\n'), true)
  t.equal(await readFile(path, 'utf8'), 'FLANNEL_MTU=1450\n')
  t.not((await stat(path)).ino, inode, 'replaced by rename, not rewritten in place')

  await chmod(path, 0o600)
  t.equal(await writeFileAtomic(path, 'FLANNEL_MTU=1450\n'), true, 'a wrong mode is repaired')
  t.equal((await stat(path)).mode & 0o777, 0o644)

  t.same(await readdir(join(dir, 'run', 'weft')), ['subnet.env'], 'no temp files left')
})

t.test('a failed write leaves the old file and no temp file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-files-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'docker')
  await writeFile(path, 'old\n')
  // the target is a directory: rename must fail
  const blocked = join(dir, 'blocked')
  await writeFileAtomic(join(blocked, 'x'), 'x')
  await t.rejects(writeFileAtomic(blocked, 'new\n'))
  t.equal(await readFile(path, 'utf8'), 'old\n')
  t.same((await readdir(dir)).sort(), ['blocked', 'docker'])
})
