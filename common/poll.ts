// The one polling loop: ask until the answer is there or the time is up. Callers say what a
// timeout means (a test failure, a one-line user error, "not yet"); clock and sleep can be
// injected so that unit tests run it without waiting.
import { setTimeout as delay } from "node:timers/promises";

export interface PollOptions {
  timeoutMs: number;
  intervalMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
  /** Whether an error thrown by check ends the poll (default) or is kept as the last one and polling goes on. */
  retryErrors?: boolean;
}

export type PollResult<T> = { done: true; value: T } | { done: false; lastError?: unknown };

/** Calls check until it gives a value other than undefined or false, at most until timeoutMs has passed. */
export async function poll<T>(check: () => T | undefined | false | Promise<T | undefined | false>, options: PollOptions): Promise<PollResult<T>> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const deadline = now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return { done: true, value };
    } catch (error) {
      if (!options.retryErrors) throw error;
      lastError = error;
    }
    if (now() > deadline) return { done: false, lastError };
    await sleep(options.intervalMs);
  }
}
