// Leader election's decisions (common/leader-election.ts), as client-go makes them, by tables;
// and the elector's loop against an in-memory Lease with two candidates.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_TIMINGS,
  type LeaseRecord,
  type LeaseStore,
  LeaderElector,
  decide,
  leaseSpec,
  observe,
  recordFromLease,
  releaseRecord,
  renewalLost,
  validateTimings,
} from "../../../common/leader-election.ts";
import { createLogger } from "../../../common/log.ts";

const rec = (holder: string, over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTimeMs: 1_000,
  renewTimeMs: 2_000,
  leaseTransitions: 3,
  ...over,
});

describe("decide", () => {
  const cases: { name: string; current?: LeaseRecord; seenAt?: number; now: number; want: ReturnType<typeof decide> }[] = [
    { name: "no Lease: create it", now: 5_000, want: { kind: "create", record: rec("me", { acquireTimeMs: 5_000, renewTimeMs: 5_000, leaseTransitions: 0 }) } },
    {
      name: "ours: renew, keeping acquire time and transitions",
      current: rec("me"),
      seenAt: 2_000,
      now: 4_000,
      want: { kind: "update", acquired: false, record: rec("me", { renewTimeMs: 4_000 }) },
    },
    { name: "another's, seen 5 s ago: held 10 s more", current: rec("other"), seenAt: 10_000, now: 15_000, want: { kind: "held", holder: "other", expiresInMs: 10_000 } },
    {
      name: "another's, unchanged for 15 s: take it",
      current: rec("other"),
      seenAt: 10_000,
      now: 25_000,
      want: { kind: "update", acquired: true, record: rec("me", { acquireTimeMs: 25_000, renewTimeMs: 25_000, leaseTransitions: 4 }) },
    },
    {
      name: "another's, first seen now (its renewTime long past does not count: clocks differ)",
      current: rec("other", { renewTimeMs: 0 }),
      now: 100_000,
      want: { kind: "held", holder: "other", expiresInMs: 15_000 },
    },
    {
      name: "another's with a longer lease of its own: its duration counts",
      current: rec("other", { leaseDurationSeconds: 60 }),
      seenAt: 0,
      now: 30_000,
      want: { kind: "held", holder: "other", expiresInMs: 30_000 },
    },
    {
      name: "released (no holder): take it at once",
      current: rec("", { leaseDurationSeconds: 1 }),
      seenAt: 10_000,
      now: 10_000,
      want: { kind: "update", acquired: true, record: rec("me", { acquireTimeMs: 10_000, renewTimeMs: 10_000, leaseTransitions: 4 }) },
    },
  ];
  it.each(cases)("$name", ({ current, seenAt, now, want }) => {
    const observed = current && seenAt !== undefined ? { record: current, atMs: seenAt } : undefined;
    expect(decide({ identity: "me", current, observed, nowMs: now, leaseDurationMs: 15_000 })).toEqual(want);
  });
});

describe("observe", () => {
  it.each([
    { name: "first sight", previous: undefined, record: rec("a"), now: 5, wantAt: 5 },
    { name: "unchanged: the time it was first seen stays", previous: { record: rec("a"), atMs: 1 }, record: rec("a"), now: 5, wantAt: 1 },
    { name: "renewed: seen now", previous: { record: rec("a"), atMs: 1 }, record: rec("a", { renewTimeMs: 9 }), now: 5, wantAt: 5 },
    { name: "new holder: seen now", previous: { record: rec("a"), atMs: 1 }, record: rec("b"), now: 5, wantAt: 5 },
  ])("$name", ({ previous, record, now, wantAt }) => {
    expect(observe(previous, record, now)).toEqual({ record, atMs: wantAt });
  });
});

describe("renewalLost, releaseRecord, validateTimings", () => {
  it.each([
    { last: 0, now: 9_999, lost: false },
    { last: 0, now: 10_000, lost: true },
    { last: -Infinity, now: 0, lost: true },
  ])("renewed at $last, now $now: lost $lost", ({ last, now, lost }) => {
    expect(renewalLost(last, now, 10_000)).toBe(lost);
  });
  it.each([
    { name: "ours: released, transitions kept", current: rec("me"), want: { holderIdentity: "", leaseDurationSeconds: 1, acquireTimeMs: 7, renewTimeMs: 7, leaseTransitions: 3 } },
    { name: "another's: not ours to release", current: rec("other"), want: undefined },
    { name: "none", current: undefined, want: undefined },
  ])("release, $name", ({ current, want }) => {
    expect(releaseRecord(current, "me", 7)).toEqual(want);
  });
  it.each([
    { t: DEFAULT_TIMINGS, want: undefined },
    { t: { leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, want: /lease duration/ },
    { t: { leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }, want: /renew deadline/ },
    { t: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }, want: /retry period/ },
  ])("timings %#", ({ t, want }) => {
    const got = validateTimings(t);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });
  it("round-trips a record through the Lease's wire form (MicroTime)", () => {
    const record = rec("me", { acquireTimeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678), renewTimeMs: Date.UTC(2026, 0, 2, 3, 4, 6, 1) });
    const spec = leaseSpec(record);
    expect(spec.renewTime as unknown as string).toBe("2026-01-02T03:04:06.001000Z");
    expect(recordFromLease({ spec })).toEqual(record);
  });
});

/** One Lease in memory, with resourceVersions as the API server keeps them; `down` makes every call fail. */
function memoryLease() {
  const lease: { record?: LeaseRecord; version: number; down: boolean } = { version: 0, down: false };
  const conflict = () => Object.assign(new Error("conflict"), { code: 409 });
  const store: LeaseStore = {
    describe: "lease test/mcsa",
    async get() {
      if (lease.down) throw new Error("unreachable");
      return lease.record && { record: lease.record, resourceVersion: String(lease.version) };
    },
    async create(record) {
      if (lease.down) throw new Error("unreachable");
      if (lease.record) throw conflict();
      lease.record = record;
      lease.version++;
    },
    async update(record, rv) {
      if (lease.down) throw new Error("unreachable");
      if (rv !== String(lease.version)) throw conflict();
      lease.record = record;
      lease.version++;
    },
  };
  return { lease, store };
}

describe("LeaderElector", () => {
  afterEach(() => void vi.useRealTimers());
  const log = createLogger("test", { level: "error", write: () => undefined });
  /** Who leads, in order: "+a" a started, "-a" a stopped (lost). */
  const history: string[] = [];

  /** A candidate with its own connection to the Lease, which `cut` breaks (a killed or partitioned replica). */
  function candidate(identity: string, shared: LeaseStore) {
    const events: string[] = [];
    const link = { cut: false };
    const check = () => {
      if (link.cut) throw new Error("unreachable");
    };
    const store: LeaseStore = {
      describe: shared.describe,
      get: async () => (check(), shared.get()),
      create: async (r) => (check(), shared.create(r)),
      update: async (r, v) => (check(), shared.update(r, v)),
    };
    const elector = new LeaderElector({ identity, store, log, now: () => Date.now(), random: () => 0 });
    elector.start({
      onStartedLeading: () => (events.push("started"), history.push(`+${identity}`)),
      onStoppedLeading: () => (events.push("stopped"), history.push(`-${identity}`)),
    });
    return { elector, events, link };
  }

  it("one leads; the other takes over 15 s after the leader stops renewing, at once when it releases", async () => {
    vi.useFakeTimers({ now: 0 });
    const { lease, store } = memoryLease();
    const a = candidate("a", store);
    await vi.advanceTimersByTimeAsync(100);
    const b = candidate("b", store);
    await vi.advanceTimersByTimeAsync(30_000);
    expect([a.elector.isLeader, b.elector.isLeader]).toEqual([true, false]);
    expect(lease.record?.holderIdentity).toBe("a");
    // a can no longer reach the Lease: it stops leading after the renew deadline, and b waits out the lease, never less.
    a.link.cut = true;
    const killedAt = Date.now();
    let tookOver: number | undefined;
    while (tookOver === undefined) {
      await vi.advanceTimersByTimeAsync(500);
      if (b.elector.isLeader) tookOver = Date.now() - killedAt;
    }
    expect(tookOver).toBeGreaterThanOrEqual(13_000);
    expect(tookOver).toBeLessThanOrEqual(15_000 + 2_500);
    expect(lease.record?.leaseTransitions).toBe(1);
    // Never two leaders: a gave up before b started.
    expect(history).toEqual(["+a", "-a", "+b"]);
    // c arrives; b releases on stop: c leads within a retry period.
    const c = candidate("c", store);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(c.elector.isLeader).toBe(false);
    await b.elector.stop();
    expect(lease.record?.holderIdentity).toBe("");
    await vi.advanceTimersByTimeAsync(2_500);
    expect(c.elector.isLeader).toBe(true);
    expect(b.events).toEqual(["started"]);
    await c.elector.stop();
    await a.elector.stop();
  });

  it("a leader that cannot renew for the renew deadline stops leading, before the lease could expire for others", async () => {
    vi.useFakeTimers({ now: 0 });
    const { lease, store } = memoryLease();
    const a = candidate("a", store);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(a.events).toEqual(["started"]);
    lease.down = true;
    const downAt = Date.now();
    let lostAfter: number | undefined;
    while (lostAfter === undefined) {
      await vi.advanceTimersByTimeAsync(250);
      if (a.events.includes("stopped")) lostAfter = Date.now() - downAt;
    }
    expect(a.elector.isLeader).toBe(false);
    expect(lostAfter).toBeGreaterThanOrEqual(8_000);
    expect(lostAfter).toBeLessThan(DEFAULT_TIMINGS.leaseDurationMs);
    await a.elector.stop();
  });

  it("a renewal that hangs past the renew deadline ends the term; its late success does not start another", async () => {
    vi.useFakeTimers({ now: 0 });
    const { store } = memoryLease();
    let hang = false;
    const slow: LeaseStore = {
      ...store,
      update: async (r, v) => {
        if (hang) await new Promise((resolve) => setTimeout(resolve, 20_000));
        return store.update(r, v);
      },
    };
    const a = candidate("a", slow);
    await vi.advanceTimersByTimeAsync(5_000);
    hang = true;
    await vi.advanceTimersByTimeAsync(12_000);
    expect(a.events).toEqual(["started", "stopped"]);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(a.events).toEqual(["started", "stopped"]);
    expect(a.elector.isLeader).toBe(false);
    await a.elector.stop();
  });

  it("stop() while acquiring: the Lease it just took is released, and no term starts", async () => {
    vi.useFakeTimers({ now: 0 });
    const { lease, store } = memoryLease();
    let release: () => void = () => undefined;
    const gated: LeaseStore = { ...store, create: async (r) => (await new Promise<void>((resolve) => (release = resolve)), store.create(r)) };
    const a = candidate("a", gated);
    await vi.advanceTimersByTimeAsync(10);
    const stopping = a.elector.stop();
    release();
    await stopping;
    expect(a.events).toEqual([]);
    expect(lease.record?.holderIdentity).toBe("");
  });
});
