// Key layout: one key per object, `<prefix>/<plural>/<name>`, JSON values,
// readable with `etcdctl get --prefix /weft`.
import { KINDS, type KindName } from '../crds/kinds.js'

export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/\/+$/, '')
  return p.startsWith('/') ? p : `/${p}`
}

export function kindPrefix(prefix: string, kind: KindName): string {
  return `${normalizePrefix(prefix)}/${KINDS[kind].plural}/`
}

export function objectKey(prefix: string, kind: KindName, name: string): string {
  return kindPrefix(prefix, kind) + name
}
