import { describe, expect, it } from "vitest";
import { poll } from "../../../common/poll.ts";

/** A clock that only moves when poll sleeps: no real waiting. */
function fakeClock() {
  let t = 0;
  const slept: number[] = [];
  return { now: () => t, sleep: async (ms: number) => void (slept.push(ms), (t += ms)), slept };
}

describe("poll", () => {
  it("returns the first value that is not undefined or false", async () => {
    const clock = fakeClock();
    const answers = [undefined, false, 0, 7];
    expect(await poll(() => answers.shift(), { timeoutMs: 1_000, intervalMs: 100, ...clock })).toEqual({ done: true, value: 0 });
    expect(clock.slept).toEqual([100, 100]);
  });

  it("gives up once the time is over, having asked at least once after the deadline", async () => {
    const clock = fakeClock();
    let asked = 0;
    expect(await poll(() => (asked++, false), { timeoutMs: 250, intervalMs: 100, ...clock })).toEqual({ done: false, lastError: undefined });
    expect(asked).toBe(4); // at 0, 100, 200 and 300 ms
  });

  it("ends at an error unless told to retry, then keeps the last one", async () => {
    const clock = fakeClock();
    const boom = () => Promise.reject(new Error("no route to host"));
    await expect(poll(boom, { timeoutMs: 100, intervalMs: 50, ...clock })).rejects.toThrow("no route to host");
    const result = await poll(boom, { timeoutMs: 100, intervalMs: 50, retryErrors: true, ...clock });
    expect(result.done).toBe(false);
    expect(result.done === false && (result.lastError as Error).message).toBe("no route to host");
  });
});
