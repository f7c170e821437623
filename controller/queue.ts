// A work queue keyed by object: each key is processed by one worker at a time, a key added while
// it is processed runs again afterwards, and a delayed add keeps the earliest due time.
export type Handler = (key: string) => Promise<void>;

export const MAX_TIMER_MS = 2 ** 31 - 1;

export class WorkQueue {
  private readonly due = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  private readonly handler: Handler;
  private readonly concurrency: number;
  private readonly onError: (key: string, error: unknown) => void;

  constructor(handler: Handler, concurrency: number, onError: (key: string, error: unknown) => void) {
    this.handler = handler;
    this.concurrency = concurrency;
    this.onError = onError;
  }

  /** Process key after delayMs (0: now). An earlier pending time wins. */
  add(key: string, requestedDelayMs = 0): void {
    if (this.stopped) return;
    // setTimeout fires at once past 2^31-1 ms (24.8 days): wake earlier and let the handler reschedule.
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

  /** Forget any scheduled run of key. */
  forget(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.due.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.due.clear();
  }

  /** Resolves once no key is queued or being processed (scheduled ones may remain). */
  idle(): Promise<void> {
    if (this.running === 0 && this.ready.length === 0) return Promise.resolve();
    return new Promise((done) => this.idleWaiters.push(done));
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

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      this.handler(key)
        .catch((error: unknown) => this.onError(key, error))
        .finally(() => {
          this.running--;
          this.active.delete(key);
          if (this.dirty.delete(key)) this.enqueue(key);
          this.pump();
          if (this.running === 0 && this.ready.length === 0) {
            for (const done of this.idleWaiters.splice(0)) done();
          }
        });
    }
  }
}
