// One watched cache of a kind of object, shared by every part of a process that needs it (as
// controller-runtime's manager shares one cache between controllers and webhooks). It runs a
// client-node informer for as long as the process lives: client-node stops an informer on errors
// other than timeouts and expired versions, so it is restarted with backoff.
import type { Informer, KubernetesObject, ObjectCache } from "@kubernetes/client-node";
import { apiMessage } from "./kube.ts";
import type { Logger } from "./log.ts";
import { backoffMs } from "./schedule.ts";

export type ObjectHandler<T> = (obj: T) => void;

/** Wraps the informer's list call so that its success is seen. */
export type TrackList = <L>(list: () => Promise<L>) => () => Promise<L>;

/** Makes the client-node informer, passing its list call through track. */
export type MakeInformer = (track: TrackList) => Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

/** T: the type the cache hands out (client-node types metadata times as Date; the API sends strings). */
export class SharedInformer<T> {
  private readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  private readonly what: string;
  private readonly log: Logger;
  private started: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  /** what: the objects, as log lines name them ("service account imports"). */
  constructor(make: MakeInformer, what: string, log: Logger) {
    const informer = make((list) => async () => {
      const listed = await list();
      if (this.failures > 0) log.info(`watch of ${what} recovered`);
      this.failures = 0;
      return listed;
    });
    this.informer = informer;
    this.what = what;
    this.log = log;
    informer.on("error", (error: unknown) => {
      if (this.stopped) return;
      this.failures++;
      const delay = backoffMs(this.failures, 500, 30_000);
      log.warn(`watch of ${what} failed; retrying`, { error: apiMessage(error), retryInMs: delay });
      this.timer = setTimeout(() => {
        if (!this.stopped) informer.start().catch(() => undefined);
      }, delay);
    });
  }

  /** Lists, then watches. Every caller gets the same promise: the first list, once. */
  start(): Promise<void> {
    this.started ??= this.informer.start();
    return this.started;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace) as readonly T[];
  }

  /** Objects added before this call are replayed to a late add handler, so no part misses any. */
  on(event: "add" | "update" | "delete", handler: ObjectHandler<T>): void {
    this.informer.on(event, handler as unknown as ObjectHandler<KubernetesObject>);
    if (event === "add" && this.started !== undefined) for (const obj of this.list()) handler(obj);
  }
}
