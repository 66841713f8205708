// `weftctl version`: this client's version and, unless --client, the etcd
// server's, as `kubectl version` prints client and server.
import { readFileSync } from 'node:fs'
import { bool, type OptionSpec } from './args.js'
import type { Command } from './context.js'

const options: OptionSpec = { client: { type: 'boolean' } }

const usage = `Print the weftctl version and the etcd server's.

Usage:
  weftctl version [--client]

Options:
      --client   print the client version only, without contacting etcd`

/** package.json sits two levels up from both src/cli and dist/cli. */
export function clientVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the client and server versions',
  usage,
  options,
  async run(ctx) {
    ctx.out(`Client Version: v${clientVersion()}\n`)
    if (bool(ctx.values, 'client')) return 0
    const store = ctx.store()
    const status = await store.call(() => store.etcd.maintenance.status())
    ctx.out(`Server Version: etcd v${status.version}\n`)
    return 0
  },
}
