// weftd ships as one file, dist/weftd.mjs, bundled from src/ by esbuild.
// Why: an idle agent is mostly the code it has loaded. 450 separate modules
// (grpc-js, protobufjs, all of rxjs through its CommonJS entry, ...) each keep
// their full source and a module record in the heap; one bundle, with rxjs
// tree-shaken from its ES modules and whitespace dropped, keeps about 8 MB
// less (bench/lease-storm.ts prints the idle RSS). Names are kept, so stack
// traces still read.
//
//   node scripts/bundle-weftd.mjs      (part of `npm run build`)
//
// Test helpers import bundleWeftd() so a test never runs a stale bundle.
import { copyFile, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(REPO, 'dist')
/** what etcd3 1.x asks proto-loader for, relative to its own file */
const ETCD3_PROTO_REF = '${__dirname}/../proto/rpc.proto'

// Dependencies written as CommonJS expect require and __dirname; an ES module has neither.
const banner = [
  "import { createRequire as __weftCreateRequire } from 'node:module';",
  "import { dirname as __weftDirname } from 'node:path';",
  "import { fileURLToPath as __weftFileURLToPath } from 'node:url';",
  'const require = __weftCreateRequire(import.meta.url);',
  'const __filename = __weftFileURLToPath(import.meta.url);',
  'const __dirname = __weftDirname(__filename);',
].join(' ')

/** rxjs resolves to its CommonJS build under node, which loads every operator; its ES modules tree-shake. */
const rxjsAsEsm = {
  name: 'rxjs-esm',
  setup(build) {
    build.onResolve({ filter: /^rxjs$/ }, () => ({ path: join(REPO, 'node_modules/rxjs/dist/esm/index.js') }))
  },
}

/** etcd3 loads its .proto files from beside its own source at runtime: point it at the copies next to the bundle. */
const etcd3Protos = {
  name: 'etcd3-protos',
  setup(build) {
    build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      // fail the build, not the agent, if an etcd3 upgrade moves its protos
      if (!source.includes(ETCD3_PROTO_REF)) throw new Error(`${args.path}: no ${ETCD3_PROTO_REF}; etcd3 changed how it loads its protos`)
      return { contents: source.replace(ETCD3_PROTO_REF, '${__dirname}/etcd3-proto/rpc.proto'), loader: 'js' }
    })
  },
}

/** Bundle src/agent/main.ts into dist/weftd.mjs (replaced atomically: a running test or bench may be starting it). */
export async function bundleWeftd() {
  const result = await esbuild.build({
    entryPoints: [join(REPO, 'src/agent/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outfile: join(OUT, 'weftd.mjs'),
    banner: { js: banner },
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [rxjsAsEsm, etcd3Protos],
  })
  const protoDir = join(OUT, 'etcd3-proto')
  await mkdir(protoDir, { recursive: true })
  const etcd3Root = join(REPO, 'node_modules/etcd3/proto')
  for (const f of await readdir(etcd3Root)) if (f.endsWith('.proto')) await copyFile(join(etcd3Root, f), join(protoDir, f))
  const [bundle] = result.outputFiles
  const tmp = `${bundle.path}.${process.pid}.tmp`
  await mkdir(dirname(bundle.path), { recursive: true })
  await writeFile(tmp, bundle.contents)
  await rename(tmp, bundle.path)
  return bundle.path
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundleWeftd()
