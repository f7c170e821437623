// Runs a client-node informer for as long as the process lives: client-node stops an informer on
// errors other than timeouts and expired versions, so restart it with backoff.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Informer } from "@kubernetes/client-node";
import { apiMessage } from "./kube.ts";
import type { Logger } from "./log.ts";
import { backoffMs } from "./schedule.ts";

export function keepRunning<T extends KubernetesObject>(informer: Informer<T>, what: string, log: Logger): { stop(): Promise<void> } {
  let failures = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  informer.on("connect", () => {
    failures = 0;
  });
  informer.on("error", (error: unknown) => {
    if (stopped) return;
    failures++;
    const delay = backoffMs(failures, 500, 30_000);
    log.warn(`watch of ${what} failed; retrying`, { error: apiMessage(error), retryInMs: delay });
    timer = setTimeout(() => {
      if (!stopped) informer.start().catch(() => undefined);
    }, delay);
  });
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}
