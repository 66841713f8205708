// What a command runs with: its parsed flags, output streams and a lazily
// connected store (help and `version --client` never dial etcd).
import { reservedLeaseClaims } from '../lease/reserved.js'
import { Store } from '../store/index.js'
import { connectionOptions, type FlagValues, type OptionSpec } from './args.js'

export interface Context {
  values: FlagValues
  positionals: string[]
  /** write to stdout as is */
  out(text: string): void
  /** one line to stderr */
  err(line: string): void
  stdin: NodeJS.ReadableStream
  store(): Store
  now(): number
}

export interface Command {
  name: string
  summary: string
  usage: string
  options: OptionSpec
  /** resolves to the exit code */
  run(ctx: Context): Promise<number>
  /** the exit code of a failure before run (bad flags); default 1 */
  errorExitCode?: number
}

/** Builds the store on first use and closes it (and grpc's handles with it) when asked. */
export class StoreHolder {
  private store: Store | undefined

  constructor(private readonly values: FlagValues) {}

  get(): Store {
    // a reserved HostLease applied or deleted by hand takes its subnet's claim key with it
    this.store ??= Store.connect(connectionOptions(this.values)).use(reservedLeaseClaims)
    return this.store
  }

  close(): void {
    this.store?.close()
    this.store = undefined
  }
}
