// The lease this host holds right now, shared with every controller that
// builds on it (files, data path, dockerd): they read it here instead of
// re-deriving it from etcd, and are triggered when it changes.
import { isDeepStrictEqual } from 'node:util'
import { BehaviorSubject, Subject, distinctUntilChanged, map, type Observable } from 'rxjs'
import type { HostLease, ResolvedOverlaySpec } from '../crds/index.js'
import type { Cidr, Cidr6 } from '../net/cidr.js'

export interface HeldLease {
  overlay: string
  /** the overlay's spec, every default filled in */
  spec: ResolvedOverlaySpec
  subnet: Cidr
  /** dual-stack overlays only: this host's IPv6 subnet (its ::1 is docker0's IPv6 gateway) */
  ipv6Subnet?: Cidr6
  publicIP: string
  /** the lease's spec.publicIPv6, when it has one (host-gw dual-stack next hop) */
  publicIPv6?: string
  reserved: boolean
  /** the overlay MTU: spec.mtu, else the underlay link MTU minus the backend overhead */
  mtu: number
  /** the HostLease as last written or read */
  lease: HostLease
}

/** The parts of a HostLease's spec other controllers fill in (vxlan: the VTEP's MAC). */
export type BackendData = Record<string, unknown>

export class LeaseHolder {
  private readonly held = new BehaviorSubject<HeldLease | undefined>(undefined)
  private readonly backend = new BehaviorSubject<BackendData>({})
  private readonly lost = new Subject<void>()
  private readonly expiry = new BehaviorSubject<number | undefined>(undefined)
  private published = false

  /** Emits on every change of what is held, with `undefined` while no lease is held. */
  readonly held$: Observable<HeldLease | undefined> = this.held.pipe(distinctUntilChanged((a, b) => isDeepStrictEqual(strip(a), strip(b))))
  /** The backend data others asked to publish; the lease controller writes it into the lease. */
  readonly backendData$: Observable<BackendData> = this.backend.pipe(distinctUntilChanged((a, b) => isDeepStrictEqual(a, b)))
  readonly subnet$ = this.held$.pipe(map((h) => h?.subnet))
  /** When the held etcd lease lapses unless renewed (ms since the epoch); the host status writer publishes it as expireTime. */
  readonly expireAt$: Observable<number | undefined> = this.expiry.pipe(distinctUntilChanged())

  get current(): HeldLease | undefined {
    return this.held.value
  }

  get backendData(): BackendData {
    return this.backend.value
  }

  /** Whether the data path has published its data since the agent started. */
  get backendDataKnown(): boolean {
    return this.published
  }

  /** undefined for a reserved lease, or none held */
  get expireAt(): number | undefined {
    return this.expiry.value
  }

  /** Called by the lease controller only. */
  set(next: HeldLease | undefined): void {
    this.held.next(next)
  }

  /** Called by the lease controller only: the held etcd lease lapses at `at` unless renewed. */
  setExpireAt(at: number | undefined): void {
    this.expiry.next(at)
  }

  /** Publish backend data in this host's lease (the data path sets its VTEP MAC here). */
  setBackendData(data: BackendData): void {
    // the data path sets it at every pass, nearly always as it was: a flat compare first, not a deep one per subscriber
    const unchanged = this.published && sameBackendData(this.backend.value, data)
    this.published = true
    if (!unchanged) this.backend.next(data)
  }
}

/** backend data is a flat record of strings (a VTEP MAC, a public key); anything nested is compared deeply */
function sameBackendData(a: BackendData, b: BackendData): boolean {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  return keys.every((k) => (a[k] === b[k] && k in b) || (typeof a[k] === 'object' && a[k] !== null && isDeepStrictEqual(a[k], b[k])))
}

// resourceVersion and status move on every renewal; what others act on is the rest
function strip(h: HeldLease | undefined) {
  if (!h) return undefined
  const { lease, ...rest } = h
  return { ...rest, leaseSpec: lease.spec, labels: lease.metadata.labels }
}
