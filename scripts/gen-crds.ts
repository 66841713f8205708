// Writes manifests/crds/ from the TypeBox schemas in src/crds:
//   npx tsx scripts/gen-crds.ts
// test/unit/crd-manifests.test.ts fails when the committed files are stale.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderCrds } from '../src/crds/crd.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'manifests', 'crds')
mkdirSync(dir, { recursive: true })
const files = renderCrds()
for (const [name, content] of files) {
  const path = join(dir, name)
  let old: string | undefined
  try {
    old = readFileSync(path, 'utf8')
  } catch {
    old = undefined
  }
  if (old === content) continue
  writeFileSync(path, content)
  console.log(`wrote ${join('manifests', 'crds', name)}`)
}
// a kind that was renamed or dropped must not leave its CRD behind
for (const name of readdirSync(dir)) {
  if (name.endsWith('.weft.dev.yaml') && !files.has(name)) {
    rmSync(join(dir, name))
    console.log(`removed ${join('manifests', 'crds', name)}`)
  }
}
