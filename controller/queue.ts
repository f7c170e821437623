// A work queue keyed by object, after client-go's rate-limited workqueue as controller-runtime
// drives it: each key is processed by one worker at a time, a key added while it is processed runs
// again afterwards, a delayed add keeps the earliest due time, and the queue alone owns retries:
// the handler says what it wants next and the queue schedules it (handlers set no timers).
import { backoffMs } from "../common/schedule.ts";

/** What a handler asks for next. */
export type Requeue =
  /** Nothing until an event adds the key again; its failures are forgotten. */
  | { kind: "wait" }
  /** Success: look again after ms; its failures are forgotten. */
  | { kind: "after"; ms: number }
  /**
   * A failure already reported (e.g. in a status): retry with the key's growing backoff, but no
   * later than atMostMs when set (a status that will turn false by then must be looked at then).
   */
  | { kind: "backoff"; atMostMs?: number };

export const WAIT: Requeue = { kind: "wait" };
export const BACKOFF: Requeue = { kind: "backoff" };
export const backoffAtMost = (ms: number): Requeue => ({ kind: "backoff", atMostMs: Math.max(0, ms) });
export const after = (ms: number): Requeue => ({ kind: "after", ms });

/** A thrown error counts as a failure too: reported to onError, then retried with backoff. */
export type Handler = (key: string) => Promise<Requeue>;

/** setTimeout fires at once past 2^31-1 ms (24.8 days): wake earlier and let the handler reschedule. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkQueueOptions {
  concurrency: number;
  onError: (key: string, error: unknown) => void;
  /** Delay before the nth consecutive failed run of a key is retried (default 1 s doubling to 60 s). */
  backoff?: (failures: number) => number;
}

export class WorkQueue {
  private readonly due = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private running = 0;
  private stopped = false;

  private readonly handler: Handler;
  private readonly options: Required<WorkQueueOptions>;

  constructor(handler: Handler, options: WorkQueueOptions) {
    this.handler = handler;
    this.options = { backoff: (failures) => backoffMs(failures), ...options };
  }

  /** Process key after delayMs (0: now). An earlier pending time wins. */
  add(key: string, requestedDelayMs = 0): void {
    if (this.stopped) return;
    const delayMs = Math.min(requestedDelayMs, MAX_TIMER_MS);
    const at = Date.now() + Math.max(0, delayMs);
    const pending = this.due.get(key);
    if (pending !== undefined && pending <= at) return;
    clearTimeout(this.timers.get(key));
    if (delayMs <= 0) {
      this.due.delete(key);
      this.timers.delete(key);
      this.enqueue(key);
      return;
    }
    this.due.set(key, at);
    const timer = setTimeout(() => {
      this.due.delete(key);
      this.timers.delete(key);
      this.enqueue(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Forget key: its scheduled run and its failures (the object is gone). */
  forget(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.due.delete(key);
    this.failures.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.due.clear();
  }

  private enqueue(key: string): void {
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.pump();
  }

  private settle(key: string, next: Requeue): void {
    if (next.kind === "backoff") {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      this.add(key, Math.min(this.options.backoff(failures), next.atMostMs ?? Infinity));
      return;
    }
    this.failures.delete(key);
    if (next.kind === "after") this.add(key, next.ms);
  }

  private pump(): void {
    while (!this.stopped && this.running < this.options.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      this.handler(key)
        .catch((error: unknown) => {
          this.options.onError(key, error);
          return BACKOFF;
        })
        .then((next) => this.settle(key, next))
        .finally(() => {
          this.running--;
          this.active.delete(key);
          if (this.dirty.delete(key)) this.enqueue(key);
          this.pump();
        });
    }
  }
}
