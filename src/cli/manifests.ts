// Reading `-f FILE|DIR|-` the way kubectl does: files as given, directories'
// .yaml/.yml/.json files (recursing with -R), stdin for `-`; every file may
// hold many YAML documents, and a `kind: List` is unpacked into its items.
import { readdir, readFile, stat } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { KINDS, type KindName } from '../crds/kinds.js'
import { UsageError } from './errors.js'

export interface Manifest {
  /** where it came from, for messages: a path or `STDIN` */
  source: string
  doc: unknown
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

export async function readManifests(paths: readonly string[], opts: { recursive?: boolean; stdin?: NodeJS.ReadableStream } = {}): Promise<Manifest[]> {
  if (paths.length === 0) throw new UsageError('must specify -f FILE|DIR|-')
  const out: Manifest[] = []
  for (const path of paths) {
    if (path === '-') {
      out.push(...parseManifests(await readStream(opts.stdin ?? process.stdin), 'STDIN'))
      continue
    }
    for (const file of await expand(path, opts.recursive ?? false)) {
      out.push(...parseManifests(await readFile(file, 'utf8'), file))
    }
  }
  return out
}

async function expand(path: string, recursive: boolean): Promise<string[]> {
  const st = await stat(path).catch(() => undefined)
  if (!st) throw new UsageError(`the path "${path}" does not exist`)
  if (!st.isDirectory()) return [path]
  const files: string[] = []
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  for (const e of entries) {
    const full = join(path, e.name)
    if (e.isDirectory()) {
      if (recursive) files.push(...(await expand(full, true)))
    } else if (MANIFEST_EXTENSIONS.has(extname(e.name).toLowerCase())) files.push(full)
  }
  return files
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks).toString('utf8')
}

/** Every non-empty document of one file; a syntax error names the file and line. */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = []
  for (const document of parseAllDocuments(text)) {
    const error = document.errors[0]
    if (error) throw new UsageError(`error parsing ${source}: ${error.message.split('\n')[0]}`)
    const doc: unknown = document.toJS()
    if (doc === null || doc === undefined) continue
    if (isList(doc)) out.push(...doc.items.map((item) => ({ source, doc: item })))
    else out.push({ source, doc })
  }
  return out
}

function isList(doc: unknown): doc is { items: unknown[] } {
  const d = doc as { kind?: unknown; items?: unknown }
  return typeof d === 'object' && d !== null && typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items)
}

// An overlay must exist before leases name it, and leases before networks pick hosts.
const APPLY_ORDER: readonly KindName[] = ['OverlayConfig', 'HostLease', 'Network']

/** Stable: documents of one kind keep their order in the input. */
export function inApplyOrder<T extends { kind: KindName }>(objs: readonly T[]): T[] {
  return [...objs].sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind))
}

/** Deleting goes the other way round: what depends on an object goes first. */
export function inDeleteOrder<T extends { kind: KindName }>(objs: readonly T[]): T[] {
  return inApplyOrder(objs).reverse()
}

/** The `kind/name` a document names, without validating the rest (enough to delete it). */
export function documentRef(m: Manifest): { kind: KindName; name: string } {
  const d = m.doc as { kind?: unknown; metadata?: { name?: unknown } } | null
  const kind = typeof d?.kind === 'string' ? d.kind : undefined
  if (!kind) throw new UsageError(`error validating "${m.source}": error validating data: kind not set`)
  if (!(kind in KINDS)) throw new UsageError(`resource mapping not found from "${m.source}": no matches for kind "${kind}" in version "weft.dev/v1alpha1"`)
  const name = d?.metadata?.name
  if (typeof name !== 'string' || !name) throw new UsageError(`error validating "${m.source}": error validating data: metadata.name not set`)
  return { kind: kind as KindName, name }
}
