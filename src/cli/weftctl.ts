// weftctl's entry point: pick the command, parse its flags (connection flags
// may come anywhere on the line), run it, and turn any failure into one
// kubectl-shaped line on stderr and an exit code. The process always exits:
// the etcd client's grpc channels would otherwise keep it alive.
import { GLOBAL_OPTIONS, GLOBAL_USAGE, bool, parseCommandLine } from './args.js'
import { applyCommand } from './apply.js'
import { checkCommand } from './check.js'
import { StoreHolder, type Command, type Context } from './context.js'
import { deleteCommand } from './delete.js'
import { describeCommand } from './describe.js'
import { diffCommand } from './diff.js'
import { formatError } from './errors.js'
import { getCommand } from './get.js'
import { versionCommand } from './version.js'
import { waitCommand } from './wait.js'

const COMMANDS: readonly Command[] = [applyCommand, getCommand, describeCommand, deleteCommand, diffCommand, waitCommand, checkCommand, versionCommand]

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3
  return `weftctl controls weft's overlay networks: objects in etcd that every host's weftd converges to.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Usage:
  weftctl COMMAND [flags]

${GLOBAL_USAGE}

Use "weftctl COMMAND --help" for more about a command.
`
}

/** The command word: the first argument that is neither a flag nor a global flag's separate value. */
function splitCommand(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') break
    if (a.startsWith('-')) {
      const flag = a.replace(/^--?/, '')
      if (!a.includes('=') && GLOBAL_OPTIONS[flag]?.type === 'string') i++
      continue
    }
    return { name: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] }
  }
  return { name: undefined, rest: [...argv] }
}

export async function main(argv: readonly string[], holder: { current?: StoreHolder } = {}): Promise<number> {
  const out = (text: string) => void process.stdout.write(text)
  const err = (line: string) => void process.stderr.write(line + '\n')
  let { name, rest } = splitCommand(argv)
  if (name === 'help') {
    ;({ name, rest } = splitCommand(rest))
    rest.push('--help')
  }
  if (name === undefined) {
    out(overview())
    return 0
  }
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    err(`error: unknown command "${name}" for "weftctl" (see "weftctl --help")`)
    return 1
  }
  try {
    const { values, positionals } = parseCommandLine(rest, command.options)
    if (bool(values, 'help')) {
      out(`${command.usage}\n\n${GLOBAL_USAGE}\n`)
      return 0
    }
    const stores = new StoreHolder(values)
    holder.current = stores
    const ctx: Context = { values, positionals, out, err, stdin: process.stdin, store: () => stores.get(), now: () => Date.now() }
    try {
      return await command.run(ctx)
    } finally {
      stores.close()
    }
  } catch (e) {
    err(formatError(e))
    return command.errorExitCode ?? 1
  }
}

function exit(code: number): void {
  // an empty write's callback runs once everything before it is flushed
  process.stdout.write('', () => process.exit(code))
}

// `weftctl get ... | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1))

const holder: { current?: StoreHolder } = {}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  // watches end here: release etcd, exit as a shell reports a process stopped by that signal
  process.once(signal, () => {
    holder.current?.close()
    exit(code)
  })
}
main(process.argv.slice(2), holder).then(exit, (e: unknown) => {
  process.stderr.write(formatError(e) + '\n')
  exit(1)
})
