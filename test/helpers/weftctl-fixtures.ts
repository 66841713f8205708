// Shared by the weftctl integration tests: DESIGN.md §2's example objects, a
// per-test key prefix (removed afterwards) with a weftctl runner bound to it,
// and manifest files in a temporary directory.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EtcdProcess } from './etcd.js'
import { runWeftctl, type RunOptions, type RunResult } from './weftctl.js'

// DESIGN.md §2's examples
export const OVERLAY = `apiVersion: weft.dev/v1alpha1
kind: OverlayConfig
metadata: {name: default}
spec:
  network: 10.2.0.0/16
  backend:
    type: udp
`
export const LEASE = `apiVersion: weft.dev/v1alpha1
kind: HostLease
metadata: {name: host-a, labels: {zone: a}}
spec:
  overlay: default
  subnet: 10.2.45.0/24
  publicIP: 192.168.152.14
  backend: {type: udp, data: {}}
  reserved: true
`
export const NETWORK = `apiVersion: weft.dev/v1alpha1
kind: Network
metadata: {name: mynet_01, labels: {team: web}}
spec:
  driver: bridge
  subnet: 10.1.1.0/24
  gateway: 10.1.1.254
  ipRange: 10.1.1.128/25
  hosts: {names: [host-a], matchLabels: {zone: a}}
  attachments:
    - {container: web1, ipv4Address: 10.1.1.100}
`
export const ALL = [NETWORK, OVERLAY, LEASE].join('---\n') // out of order on purpose: apply sorts


interface Teardown {
  teardown(fn: () => unknown): void
}

let counter = 0

export interface Scope {
  prefix: string
  run(args: string[], opts?: RunOptions): Promise<RunResult>
  /** every key under the prefix, as etcdctl lists them */
  keys(): Promise<string[]>
}

export function scope(t: Teardown, etcd: EtcdProcess): Scope {
  const prefix = `/weftctl-test-${process.pid}-${++counter}`
  t.teardown(() => etcd.etcdctl(['del', '--prefix', `${prefix}/`]))
  const env = { WEFT_ETCD_ENDPOINTS: etcd.endpoint, WEFT_PREFIX: prefix }
  return {
    prefix,
    run: (args, opts = {}) => runWeftctl(args, { ...opts, env: { ...env, ...opts.env } }),
    keys: async () => (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/`])).split('\n').filter(Boolean),
  }
}

/** A directory for manifest files, removed on teardown; `file` writes one and returns its path. */
export async function manifestDir(t: Teardown): Promise<{ dir: string; file(name: string, text: string): Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'weftctl-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return {
    dir,
    async file(name, text) {
      const path = join(dir, name)
      await mkdir(join(path, '..'), { recursive: true })
      await writeFile(path, text)
      return path
    },
  }
}
