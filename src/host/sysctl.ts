// Kernel parameters under /proc/sys. /proc/sys/net is per network namespace
// and resolved by the reading process, so inside a test namespace the value
// is read and written by a child under nsenter (cat, tee), never by this
// process, which would see the root namespace's copy.
import { readFile, writeFile } from 'node:fs/promises'
import { runnerFor, type Runner } from './exec.js'

export const IP_FORWARD = 'net.ipv4.ip_forward'
/** IPv6's counterpart, for dual-stack overlays (note: with it on, the kernel ignores router advertisements where accept_ra is 1) */
export const IPV6_FORWARD = 'net.ipv6.conf.all.forwarding'

/** net.ipv4.ip_forward -> /proc/sys/net/ipv4/ip_forward; refuses anything that could escape /proc/sys. */
export function sysctlPath(key: string): string {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw new Error(`invalid sysctl key ${JSON.stringify(key)}`)
  return `/proc/sys/${key.replaceAll('.', '/')}`
}

export class Sysctl {
  private readonly run: Runner | undefined

  constructor(opts: { netns?: string; runner?: Runner } = {}) {
    this.run = opts.runner ?? (opts.netns ? runnerFor(opts.netns) : undefined)
  }

  async read(key: string): Promise<string> {
    const path = sysctlPath(key)
    const text = this.run ? await this.run('cat', [path]) : await readFile(path, 'utf8')
    return text.trim()
  }

  async write(key: string, value: string): Promise<void> {
    const path = sysctlPath(key)
    if (this.run) await this.run('tee', [path], { input: `${value}\n` })
    else await writeFile(path, `${value}\n`)
  }

  /** Set the value only if it differs; returns whether it had to be written. */
  async ensure(key: string, value: string): Promise<boolean> {
    if ((await this.read(key)) === value) return false
    await this.write(key, value)
    return true
  }
}
