// A process's CPU and memory as /proc shows them, for benches that report
// what a server (etcd) spent.
import { readdir, readFile } from 'node:fs/promises'

export interface ProcSample {
  /** utime + stime, in seconds */
  cpuSeconds: number
  rssMB: number
  /** peak RSS since the process started */
  peakMB: number
}

/** clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux) */
const HZ = 100

export async function sampleProc(pid: number): Promise<ProcSample> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const mb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024
  return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / HZ, rssMB: mb('VmRSS'), peakMB: mb('VmHWM') }
}

/** The PID of the one process whose command line holds every one of `args` (NUL-separated words), if any. */
export async function findPid(args: readonly string[]): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const words: string[] = await readFile(`/proc/${entry}/cmdline`, 'utf8').then(
      (s) => s.split('\0'),
      () => [],
    )
    if (args.every((a) => words.includes(a))) return Number(entry)
  }
  return undefined
}

/** MemAvailable of this machine, in MB. */
export async function memAvailableMB(): Promise<number> {
  const info = await readFile('/proc/meminfo', 'utf8')
  return Number(/MemAvailable:\s+(\d+)/.exec(info)?.[1] ?? 0) / 1024
}
