// Assemble the weftd image's root filesystem from image/files: the checkout's
// build, the Node.js binary, this folder, and a root holding the Debian
// packages of image/packages (Dockerfile: its build stage's own /; scripts/
// image.sh: the packages unpacked with dpkg-deb). Every ELF file's libraries
// are added from that root, found by the root's own dynamic loader, so the
// image holds exactly the listed files and what they load. The output uses
// Debian's merged /usr layout (/bin, /sbin, /lib, /lib64 link into /usr)
// whatever the root's layout, so both builds give the same tree.
//
//   node image/rootfs.mjs --root DIR --weft DIR --node PATH --out DIR
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs'
import { dirname, isAbsolute, join, posix, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const IMAGE_DIR = dirname(fileURLToPath(import.meta.url))
/** the dynamic loader's path per multiarch triplet (its PT_INTERP, which ldd output does not list as a dependency) */
const LOADERS = { 'x86_64-linux-gnu': '/lib64/ld-linux-x86-64.so.2', 'aarch64-linux-gnu': '/lib/ld-linux-aarch64.so.1' }
const MERGED = ['bin', 'sbin', 'lib', 'lib64']

class ImageError extends Error {
  name = 'ImageError'
}

/** /sbin/ip -> /usr/sbin/ip: where a path of the root lands in the merged-/usr image. */
export function canonical(path) {
  const p = posix.normalize(path)
  for (const d of MERGED) if (p === `/${d}` || p.startsWith(`/${d}/`)) return `/usr${p}`
  return p
}

/** Parse image/files into entries; `$TRIPLET` expanded. */
export function parseFileList(text, triplet) {
  const entries = []
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) continue
    const words = line.replaceAll('$TRIPLET', triplet).split(/\s+/)
    const where = `image/files:${i + 1}`
    if (words[0] === 'link') {
      if (words.length !== 3 || !isAbsolute(words[1])) throw new ImageError(`${where}: expected "link <absolute path> <target>"`)
      entries.push({ kind: 'link', path: words[1], target: words[2] })
    } else if (['weft', 'node', 'image', 'deb', 'deb?'].includes(words[0])) {
      if (words.length < 2 || words.length > 3) throw new ImageError(`${where}: expected "<source> <path> [<image path>]"`)
      const dest = words[2] ?? words[1]
      if (!isAbsolute(dest)) throw new ImageError(`${where}: the image path ${JSON.stringify(dest)} must be absolute`)
      entries.push({ kind: 'copy', source: words[0], path: words[1], dest })
    } else throw new ImageError(`${where}: unknown source ${JSON.stringify(words[0])}: one of weft, node, image, deb, deb?, link`)
  }
  return entries
}

function tripletOf(root) {
  for (const t of Object.keys(LOADERS)) if (existsSync(join(root, 'usr/lib', t)) || existsSync(join(root, 'lib', t))) return t
  throw new ImageError(`${root}: no /usr/lib/<triplet> of ${Object.keys(LOADERS).join(' or ')}: is it a Debian root?`)
}

/** Resolve a path inside `root` as if root were /, following every symlink (bounded). */
function resolveIn(root, path) {
  let hops = 0
  const parts = posix.normalize(path).split('/').filter(Boolean)
  let done = '/'
  while (parts.length > 0) {
    const next = posix.join(done, parts.shift())
    const st = lstatSync(join(root, next), { throwIfNoEntry: false })
    if (st?.isSymbolicLink()) {
      if (++hops > 40) throw new ImageError(`${path}: too many symbolic links in ${root}`)
      const target = readlinkSync(join(root, next))
      parts.unshift(...target.split('/').filter(Boolean))
      done = target.startsWith('/') ? '/' : done
    } else done = next
  }
  return done
}

export function assemble({ root, weft, node, out, fileList = readFileSync(join(IMAGE_DIR, 'files'), 'utf8') }) {
  root = resolve(root)
  const triplet = tripletOf(root)
  const loader = LOADERS[triplet]
  const libraryPath = ['/lib', '/usr/lib'].map((d) => join(root, d, triplet)).join(':')
  const made = new Set()
  const copied = []

  mkdirSync(out, { recursive: true })
  for (const d of MERGED) {
    mkdirSync(join(out, 'usr', d), { recursive: true })
    symlinkSync(`usr/${d}`, join(out, d))
  }
  // what runc and dockerd mount over, and /var/run as Debian has it
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'etc', 'var']) mkdirSync(join(out, d), { recursive: true })
  chmodSync(join(out, 'tmp'), 0o1777)
  symlinkSync('../run', join(out, 'var/run'))

  const place = (dest) => {
    const at = join(out, canonical(dest))
    mkdirSync(dirname(at), { recursive: true })
    return at
  }

  /** Copy one path of the Debian root, the links on its way and, for ELF files, its libraries. */
  const fromRoot = (path) => {
    const dest = canonical(path)
    if (made.has(dest)) return
    const parent = resolveIn(root, posix.dirname(path))
    const here = posix.join(parent, posix.basename(path))
    const st = lstatSync(join(root, here), { throwIfNoEntry: false })
    if (!st) throw new ImageError(`${path} is not in the Debian root ${root}: which package of image/packages holds it?`)
    made.add(dest)
    if (st.isSymbolicLink()) {
      const target = readlinkSync(join(root, here))
      symlinkSync(target, place(dest))
      fromRoot(target.startsWith('/') ? target : posix.join(posix.dirname(path), target))
    } else if (st.isDirectory()) {
      mkdirSync(place(dest), { recursive: true })
      for (const child of readdirSync(join(root, here))) fromRoot(posix.join(path, child))
    } else fileFrom(join(root, here), dest, st.mode)
  }

  /** Copy a regular file to the image; an ELF file brings its libraries from the root. */
  const fileFrom = (src, dest, mode) => {
    const at = place(dest)
    copyFileSync(src, at)
    chmodSync(at, mode & 0o7777)
    made.add(canonical(dest))
    copied.push(dest)
    if (!isElf(src)) return
    for (const lib of librariesOf(src)) fromRoot(lib)
  }

  const isElf = (file) => readFileSync(file).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))

  /** The root's loader lists what a file loads, searching the root's library directories first. */
  const librariesOf = (file) => {
    const text = execFileSync(join(root, loader), ['--library-path', libraryPath, '--list', file], { encoding: 'utf8' })
    const libs = []
    for (const line of text.split('\n')) {
      const m = /=>\s+(\S+)\s+\(/.exec(line)
      if (!m) {
        if (/not found/.test(line)) throw new ImageError(`${file}: ${line.trim()}: add its package to image/packages`)
        continue
      }
      const rel = relative(root, m[1])
      if (rel.startsWith('..')) throw new ImageError(`${file} loads ${m[1]}, which is not in the Debian root ${root}: add its package to image/packages`)
      libs.push(`/${rel}`)
    }
    return libs
  }

  fromRoot(loader)
  for (const e of parseFileList(fileList, triplet)) {
    if (e.kind === 'link') {
      if (made.has(canonical(e.path))) continue
      symlinkSync(e.target, place(e.path))
      made.add(canonical(e.path))
      continue
    }
    if (e.source === 'deb' || e.source === 'deb?') {
      // deb?: where Debian releases differ (a file one release has and the next moved)
      if (e.source === 'deb?' && !lstatSync(join(root, resolveIn(root, e.path)), { throwIfNoEntry: false })) continue
      fromRoot(e.path)
      continue
    }
    const base = { weft, node: dirname(node), image: IMAGE_DIR }[e.source]
    const src = e.source === 'node' ? node : join(base, e.path)
    const st = lstatSync(src, { throwIfNoEntry: false })
    if (!st) throw new ImageError(`${src} is missing${e.source === 'weft' ? ': run `npm run build` first' : ''}`)
    const files = st.isDirectory() ? readdirSync(src).map((f) => [join(src, f), posix.join(e.dest, f)]) : [[src, e.dest]]
    for (const [from, dest] of files) fileFrom(from, dest, lstatSync(from).mode)
  }
  // node ships its debug info (99 MB -> 86 MB stripped); Debian's binaries come stripped already
  execFileSync('strip', ['--strip-unneeded', join(out, canonical('/usr/local/bin/node'))])
  return copied
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const { values } = parseArgs({ options: { root: { type: 'string' }, weft: { type: 'string' }, node: { type: 'string' }, out: { type: 'string' } } })
    for (const k of ['root', 'weft', 'node', 'out']) if (!values[k]) throw new ImageError(`--${k} is required`)
    if (existsSync(values.out) && readdirSync(values.out).length > 0) throw new ImageError(`--out ${values.out} must be empty`)
    assemble(values)
  } catch (err) {
    process.stderr.write(`rootfs: ${err instanceof ImageError ? err.message : err.stack}\n`)
    process.exit(1)
  }
}
