// One bounded wait for every test: polls until check gives a value (not undefined or false), and
// fails after timeoutMs saying what it waited for and the last error seen.
import { poll } from "../common/poll.ts";

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5_000,
  intervalMs = 20,
): Promise<T> {
  const result = await poll(check, { timeoutMs, intervalMs, retryErrors: true });
  if (result.done) return result.value;
  const last = result.lastError ? ` (last error: ${(result.lastError as Error).message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
}
