import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../../controller/queue.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("WorkQueue", () => {
  it("never processes one key twice at once, and reruns a key added while it ran", async () => {
    const gate = deferred();
    const runs: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const queue = new WorkQueue(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      runs.push(key);
      if (runs.length === 1) await gate.promise;
      concurrent--;
    }, 4, () => undefined);
    queue.add("a");
    queue.add("a");
    queue.add("a");
    gate.resolve();
    await queue.idle();
    expect(runs).toEqual(["a", "a"]);
    expect(maxConcurrent).toBe(1);
  });

  it("runs different keys concurrently up to the limit", async () => {
    const gates = [deferred(), deferred(), deferred()];
    let concurrent = 0;
    let maxConcurrent = 0;
    const queue = new WorkQueue(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await gates[Number(key)]!.promise;
      concurrent--;
    }, 2, () => undefined);
    for (const key of ["0", "1", "2"]) queue.add(key);
    expect(maxConcurrent).toBe(2);
    for (const g of gates) g.resolve();
    await queue.idle();
    expect(maxConcurrent).toBe(2);
  });

  it("keeps the earliest of two delayed adds, and forget cancels it", async () => {
    const runs: string[] = [];
    const queue = new WorkQueue(async (key) => void runs.push(key), 1, () => undefined);
    queue.add("x", 60_000);
    queue.add("x", 10);
    queue.add("y", 10);
    queue.forget("y");
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (runs.length > 0) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    await queue.idle();
    queue.stop();
    expect(runs).toEqual(["x"]);
  });

  it("reports a failing handler's error and goes on", async () => {
    const errors: string[] = [];
    const queue = new WorkQueue(async (key) => {
      if (key === "bad") throw new Error("boom");
    }, 1, (key, error) => errors.push(`${key}: ${(error as Error).message}`));
    queue.add("bad");
    queue.add("good");
    await queue.idle();
    expect(errors).toEqual(["bad: boom"]);
  });
});
