// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does
// it (client-node 2.0.1 ships no such helper): one holder at a time; a candidate takes the Lease
// when it was released (no holder) or when nobody renewed it for leaseDuration, measured on the
// candidate's own clock from when it last saw the record change (never from the record's
// timestamps, so clock skew between machines does not matter); the holder renews it every
// retryPeriod and gives up leadership once it has not renewed for renewDeadline (shorter than
// leaseDuration, so it stops before anyone else may start); on shutdown it releases the Lease so
// that a rolling update hands over at once.
//
// The decisions are pure functions (tested by tables in test/unit/common/leader-election.test.ts);
// the LeaderElector loop does the I/O through a LeaseStore.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { withTimeout } from "./deadline.ts";
import { apiMessage, isConflict, isNotFound } from "./kube.ts";
import type { Logger } from "./log.ts";

export interface LeaderElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** client-go's defaults (and controller-runtime's): 15 s, 10 s, 2 s. */
export const DEFAULT_TIMINGS: LeaderElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** What the Lease's spec says, in milliseconds since the epoch. */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTimeMs?: number;
  renewTimeMs?: number;
  leaseTransitions: number;
}

/** A record as this candidate last saw it change, on its own clock. */
export interface Observed {
  record: LeaseRecord;
  atMs: number;
}

/** Whether the timings can work at all (client-go refuses the same). */
export function validateTimings(t: LeaderElectionTimings): string | undefined {
  if (!(t.retryPeriodMs > 0)) return "the retry period must be positive";
  if (!(t.renewDeadlineMs > t.retryPeriodMs)) return "the renew deadline must be longer than the retry period";
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) return "the lease duration must be longer than the renew deadline";
  return undefined;
}

const sameRecord = (a: LeaseRecord, b: LeaseRecord) =>
  a.holderIdentity === b.holderIdentity &&
  a.leaseDurationSeconds === b.leaseDurationSeconds &&
  a.acquireTimeMs === b.acquireTimeMs &&
  a.renewTimeMs === b.renewTimeMs &&
  a.leaseTransitions === b.leaseTransitions;

/** The observation after reading `record` at nowMs: its time moves only when the record changed. */
export function observe(previous: Observed | undefined, record: LeaseRecord, nowMs: number): Observed {
  return previous !== undefined && sameRecord(previous.record, record) ? previous : { record, atMs: nowMs };
}

export type Attempt =
  /** No Lease yet: create it holding it. */
  | { kind: "create"; record: LeaseRecord }
  /** Write this record (with the read's resourceVersion): acquire (acquired true) or renew. */
  | { kind: "update"; record: LeaseRecord; acquired: boolean }
  /** Another holds it, and may until expiresInMs from now. */
  | { kind: "held"; holder: string; expiresInMs: number };

/**
 * One try at acquiring or renewing (client-go's tryAcquireOrRenew). current: the Lease as just
 * read (undefined: there is none); observed: the same, with when this candidate saw it change.
 */
export function decide(input: { identity: string; current?: LeaseRecord; observed?: Observed; nowMs: number; leaseDurationMs: number }): Attempt {
  const { identity, current, nowMs, leaseDurationMs } = input;
  const ours = (acquireTimeMs: number, transitions: number): LeaseRecord => ({
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    acquireTimeMs,
    renewTimeMs: nowMs,
    leaseTransitions: transitions,
  });
  if (current === undefined) return { kind: "create", record: ours(nowMs, 0) };
  if (current.holderIdentity === identity) return { kind: "update", record: ours(current.acquireTimeMs ?? nowMs, current.leaseTransitions), acquired: false };
  if (current.holderIdentity !== "") {
    // The holder's own lease duration counts (it may be configured longer than ours), measured from our observation.
    const durationMs = Math.max(current.leaseDurationSeconds * 1000, 0) || leaseDurationMs;
    const seenAt = input.observed !== undefined && sameRecord(input.observed.record, current) ? input.observed.atMs : nowMs;
    const expiresInMs = seenAt + durationMs - nowMs;
    if (expiresInMs > 0) return { kind: "held", holder: current.holderIdentity, expiresInMs };
  }
  return { kind: "update", record: ours(nowMs, current.leaseTransitions + 1), acquired: true };
}

/** Whether a leader whose last successful renewal started at lastRenewMs must give up leadership now. */
export function renewalLost(lastRenewMs: number, nowMs: number, renewDeadlineMs: number): boolean {
  return nowMs - lastRenewMs >= renewDeadlineMs;
}

/** The record that releases the Lease (client-go: no holder, 1 s), or undefined when it is not ours to release. */
export function releaseRecord(current: LeaseRecord | undefined, identity: string, nowMs: number): LeaseRecord | undefined {
  if (current === undefined || current.holderIdentity !== identity) return undefined;
  return { holderIdentity: "", leaseDurationSeconds: 1, acquireTimeMs: nowMs, renewTimeMs: nowMs, leaseTransitions: current.leaseTransitions };
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export function recordFromLease(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  const ms = (t: unknown) => (t === undefined || t === null ? undefined : new Date(t as string | Date).getTime());
  return {
    holderIdentity: spec.holderIdentity ?? "",
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTimeMs: ms(spec.acquireTime),
    renewTimeMs: ms(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

export function leaseSpec(record: LeaseRecord): NonNullable<V1Lease["spec"]> {
  // The wire form: MicroTime strings (client-node's serializer would write a Date with milliseconds only).
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    ...(record.acquireTimeMs !== undefined ? { acquireTime: microTime(record.acquireTimeMs) as unknown as Date } : {}),
    ...(record.renewTimeMs !== undefined ? { renewTime: microTime(record.renewTimeMs) as unknown as Date } : {}),
    leaseTransitions: record.leaseTransitions,
  };
}

/** Where the Lease lives; the elector's only I/O. */
export interface LeaseStore {
  /** The record and its resourceVersion, or undefined when there is no Lease. */
  get(): Promise<{ record: LeaseRecord; resourceVersion: string } | undefined>;
  /** Rejects with a conflict when it exists already. */
  create(record: LeaseRecord): Promise<void>;
  /** Rejects with a conflict when the resourceVersion is not the current one. */
  update(record: LeaseRecord, resourceVersion: string): Promise<void>;
  describe: string;
}

/** The Lease `name` in `namespace`, through the API server. */
export function kubeLeaseStore(kc: KubeConfig, namespace: string, name: string, labels: Record<string, string> = {}): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api);
  return {
    describe: `lease ${namespace}/${name}`,
    async get() {
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        return { record: recordFromLease(lease), resourceVersion: lease.metadata?.resourceVersion ?? "" };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async create(record) {
      await api.createNamespacedLease({ namespace, body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace, labels }, spec: leaseSpec(record) } });
    },
    async update(record, resourceVersion) {
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace, labels, resourceVersion }, spec: leaseSpec(record) },
      });
    },
  };
}

export interface ElectorCallbacks {
  /** Called once, when this candidate becomes the leader. */
  onStartedLeading(): void;
  /** Called once, when a leader stops being one without being asked to (it could not renew). */
  onStoppedLeading(why: string): void;
}

export interface ElectorOptions {
  identity: string;
  store: LeaseStore;
  log: Logger;
  timings?: LeaderElectionTimings;
  now?: () => number;
  random?: () => number;
}

/**
 * Runs the election: tries every retryPeriod (jittered up to 1.2×, as client-go) until it leads,
 * then renews every retryPeriod; stop() releases the Lease if held.
 */
export class LeaderElector {
  private readonly options: Required<Omit<ElectorOptions, "timings">> & { timings: LeaderElectionTimings };
  private observed: Observed | undefined;
  private leading = false;
  private lastRenewMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Leadership was lost: this elector never leads again (one term, as client-go's). */
  private lost = false;
  private running: Promise<void> | undefined;
  private callbacks: ElectorCallbacks | undefined;
  private lastHolder: string | undefined;

  constructor(options: ElectorOptions) {
    const timings = options.timings ?? DEFAULT_TIMINGS;
    const invalid = validateTimings(timings);
    if (invalid) throw new Error(`leader election: ${invalid}`);
    this.options = { now: Date.now, random: Math.random, ...options, timings };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get identity(): string {
    return this.options.identity;
  }

  /** The holder last seen (ourselves when leading), for health detail. */
  get holder(): string | undefined {
    return this.leading ? this.options.identity : this.lastHolder;
  }

  start(callbacks: ElectorCallbacks): void {
    this.callbacks = callbacks;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
  }

  private async tick(): Promise<void> {
    const { timings, now, random, log, store, identity } = this.options;
    const startedMs = now();
    try {
      // Bounded: a hung request must not outlive the renew deadline.
      const budget = this.leading ? Math.max(this.lastRenewMs + timings.renewDeadlineMs - startedMs, 1) : timings.renewDeadlineMs;
      await withTimeout(this.attempt(startedMs), `leader election (${store.describe})`, budget);
    } catch (error) {
      if (!isConflict(error)) log.debug("leader election attempt failed", { lease: store.describe, error: apiMessage(error) });
    }
    if (this.stopped) return;
    if (this.leading && renewalLost(this.lastRenewMs, now(), timings.renewDeadlineMs)) {
      this.leading = false;
      this.lost = true;
      this.stopped = true;
      const why = `could not renew ${store.describe} for ${timings.renewDeadlineMs / 1000}s`;
      log.error("lost leadership", { identity, lease: store.describe, why });
      this.callbacks?.onStoppedLeading(why);
      return;
    }
    this.schedule(this.leading ? timings.retryPeriodMs : timings.retryPeriodMs * (1 + 0.2 * random()));
  }

  private async attempt(startedMs: number): Promise<void> {
    const { store, identity, timings, log } = this.options;
    const read = await store.get();
    if (this.stopped) return;
    if (read !== undefined) this.observed = observe(this.observed, read.record, this.options.now());
    const attempt = decide({ identity, current: read?.record, observed: this.observed, nowMs: startedMs, leaseDurationMs: timings.leaseDurationMs });
    if (attempt.kind === "held") {
      if (this.lastHolder !== attempt.holder) log.info("another replica leads", { leader: attempt.holder, lease: store.describe });
      this.lastHolder = attempt.holder;
      if (this.leading) {
        // Someone else took it (we were too late to renew): we must stop now.
        this.lastRenewMs = -Infinity;
      }
      return;
    }
    if (attempt.kind === "create") await store.create(attempt.record);
    else await store.update(attempt.record, read!.resourceVersion);
    // A write that lands after its attempt timed out and leadership was given up counts for nothing.
    if (this.lost) return;
    this.observed = { record: attempt.record, atMs: this.options.now() };
    this.lastRenewMs = startedMs;
    this.lastHolder = identity;
    if (!this.leading) {
      // Held now, even if stop() came meanwhile: then stop() releases it, without a term starting.
      this.leading = true;
      if (this.stopped) return;
      log.info("became the leader", { identity, lease: store.describe, transitions: attempt.record.leaseTransitions });
      this.callbacks?.onStartedLeading();
    }
  }

  /** Stops trying; a leader releases the Lease so that another takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    if (!this.leading) return;
    this.leading = false;
    const { store, identity, log, now, timings } = this.options;
    try {
      await withTimeout(
        (async () => {
          const read = await store.get();
          const record = releaseRecord(read?.record, identity, now());
          if (record !== undefined && read !== undefined) await store.update(record, read.resourceVersion);
        })(),
        `releasing ${store.describe}`,
        timings.retryPeriodMs,
      );
      log.info("released the leadership", { identity, lease: store.describe });
    } catch (error) {
      log.warn("could not release the lease; another replica takes over once it expires", { lease: store.describe, error: apiMessage(error) });
    }
  }
}
