import { describe, expect, it } from "vitest";
import { BACKOFF, type Requeue, WAIT, WorkQueue, after, backoffAtMost } from "../../../controller/queue.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Records each run; `reached(n)` resolves once n runs have finished. */
function recorder() {
  const runs: string[] = [];
  const waiters: { n: number; done: () => void }[] = [];
  return {
    runs,
    record(key: string) {
      runs.push(key);
      for (const w of waiters.filter((w) => runs.length >= w.n)) w.done();
    },
    reached(n: number): Promise<void> {
      return runs.length >= n ? Promise.resolve() : new Promise((done) => waiters.push({ n, done }));
    },
  };
}

const quiet = { onError: () => undefined };

describe("WorkQueue", () => {
  it("never processes one key twice at once, and reruns a key added while it ran", async () => {
    const gate = deferred();
    const rec = recorder();
    let concurrent = 0;
    let maxConcurrent = 0;
    const queue = new WorkQueue(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      if (rec.runs.length === 0) await gate.promise;
      concurrent--;
      rec.record(key);
      return WAIT;
    }, { concurrency: 4, ...quiet });
    queue.add("a");
    queue.add("a");
    queue.add("a");
    gate.resolve();
    await rec.reached(2);
    queue.stop();
    expect(rec.runs).toEqual(["a", "a"]);
    expect(maxConcurrent).toBe(1);
  });

  it("runs different keys concurrently up to the limit", async () => {
    const gates = [deferred(), deferred(), deferred()];
    const rec = recorder();
    let concurrent = 0;
    let maxConcurrent = 0;
    const queue = new WorkQueue(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await gates[Number(key)]!.promise;
      concurrent--;
      rec.record(key);
      return WAIT;
    }, { concurrency: 2, ...quiet });
    for (const key of ["0", "1", "2"]) queue.add(key);
    expect(maxConcurrent).toBe(2);
    for (const g of gates) g.resolve();
    await rec.reached(3);
    expect(maxConcurrent).toBe(2);
  });

  it("keeps the earliest of two delayed adds, and forget cancels it", async () => {
    const rec = recorder();
    const queue = new WorkQueue(async (key) => (rec.record(key), WAIT), { concurrency: 1, ...quiet });
    queue.add("x", 60_000);
    queue.add("x", 10);
    queue.add("y", 10);
    queue.forget("y");
    await rec.reached(1);
    queue.stop();
    expect(rec.runs).toEqual(["x"]);
  });

  it("reports a thrown error, retries the key with backoff, and goes on with others", async () => {
    const rec = recorder();
    const errors: string[] = [];
    const backoffs: number[] = [];
    let failing = 2;
    const queue = new WorkQueue(
      async (key) => {
        rec.record(key);
        if (key === "bad" && failing-- > 0) throw new Error("boom");
        return WAIT;
      },
      {
        concurrency: 1,
        onError: (key, error) => errors.push(`${key}: ${(error as Error).message}`),
        backoff: (failures) => (backoffs.push(failures), 1),
      },
    );
    queue.add("bad");
    queue.add("good");
    await rec.reached(4);
    queue.stop();
    expect(errors).toEqual(["bad: boom", "bad: boom"]);
    expect(backoffs).toEqual([1, 2]);
    expect(rec.runs.filter((k) => k === "bad")).toHaveLength(3);
  });

  it("counts backoff results as failures, and forgets them after a success", async () => {
    const rec = recorder();
    const backoffs: number[] = [];
    const results: Requeue[] = [BACKOFF, BACKOFF, after(1), BACKOFF, WAIT];
    const queue = new WorkQueue(
      async (key) => {
        rec.record(key);
        return results.shift() ?? WAIT;
      },
      { concurrency: 1, ...quiet, backoff: (failures) => (backoffs.push(failures), 1) },
    );
    queue.add("k");
    await rec.reached(5);
    queue.stop();
    // Two failures in a row, a success after 1 ms that resets the count, then a first failure again.
    expect(backoffs).toEqual([1, 2, 1]);
  });

  it("a capped backoff retries no later than its cap, and still counts as a failure", async () => {
    const rec = recorder();
    const backoffs: number[] = [];
    // The key's backoff would be an hour: only the cap lets the second run happen within the test.
    const results: Requeue[] = [backoffAtMost(5), BACKOFF];
    const queue = new WorkQueue(
      async (key) => {
        rec.record(key);
        return results.shift() ?? WAIT;
      },
      { concurrency: 1, ...quiet, backoff: (failures) => (backoffs.push(failures), failures === 1 ? 3_600_000 : 1) },
    );
    queue.add("k");
    await rec.reached(3);
    queue.stop();
    expect(backoffs).toEqual([1, 2]);
  });
});
