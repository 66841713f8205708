// The dockerd service as weft may drive it: run the operator's
// --dockerd-restart-command (e.g. `systemctl restart docker`) and read the
// docker options file the restarted daemon will take its flags from.
//
// The command is the operator's own command line, given to weftd as a flag,
// so it runs through /bin/sh like a systemd ExecStart= or a cron line would
// (`systemctl daemon-reload && systemctl restart docker` must work). Nothing
// from etcd or a spec is ever part of it: the desired flags reach it only as
// environment variables (DOCKER_NETWORK_OPTIONS and friends, the names of the
// docker opts file), which the shell does not re-parse unless the command
// expands them unquoted, as a systemd unit's $DOCKER_NETWORK_OPTIONS does.
import { readFile } from 'node:fs/promises'
import { run, type Runner } from './exec.js'

export interface DockerdServiceOptions {
  /** --dockerd-restart-command */
  restartCommand: string
  /** --docker-opts-file: where the files controller writes DOCKER_NETWORK_OPTIONS */
  optsFile: string
  /** how long the command may take; default 120 s */
  timeoutMs?: number
  runner?: Runner
}

export class DockerdService {
  private readonly run: Runner

  constructor(private readonly opts: DockerdServiceOptions) {
    this.run = opts.runner ?? run
  }

  get command(): string {
    return this.opts.restartCommand
  }

  /** The docker opts file as it is now; '' when absent or unreadable. */
  async optsFile(): Promise<string> {
    return readFile(this.opts.optsFile, 'utf8').catch(() => '')
  }

  /** Run the restart command to completion with `env` added; throws CommandError when it fails. */
  async restart(env: Record<string, string>): Promise<void> {
    await this.run('/bin/sh', ['-c', this.opts.restartCommand], {
      env: { ...process.env, WEFT_DOCKER_OPTS_FILE: this.opts.optsFile, ...env },
      timeoutMs: this.opts.timeoutMs ?? 120_000,
    })
  }
}
