// The entry point bundled into dist/weftd.mjs (scripts/bundle-weftd.mjs), which bin/weftd runs.
import { run } from './weftd.js'

await run()
