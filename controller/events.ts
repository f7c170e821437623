// Kubernetes Events on imports, so `kubectl describe` and `kubectl mcsa describe` show what happened.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { ServiceAccountImport } from "../common/api.ts";
import { apiMessage } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { redactTokens } from "../common/redact.ts";

const COMPONENT = "mcsa-controller";

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly log: Logger;

  constructor(kc: KubeConfig, log: Logger) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.log = log;
  }

  normal(sai: ServiceAccountImport, reason: string, message: string): void {
    this.record(sai, "Normal", reason, message);
  }

  warn(sai: ServiceAccountImport, reason: string, message: string): void {
    this.record(sai, "Warning", reason, message);
  }

  private record(sai: ServiceAccountImport, type: string, reason: string, message: string): void {
    const now = new Date();
    const namespace = sai.metadata.namespace!;
    this.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${sai.metadata.name}.`, namespace },
          involvedObject: {
            apiVersion: sai.apiVersion,
            kind: sai.kind,
            name: sai.metadata.name,
            namespace,
            uid: sai.metadata.uid,
            resourceVersion: sai.metadata.resourceVersion,
          },
          reason,
          message: redactTokens(message).slice(0, 1024),
          type,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: COMPONENT,
        },
      })
      // An event is best effort: never fail a reconcile over it.
      .catch((error: unknown) => this.log.debug("could not record an event", { reason, error: apiMessage(error) }));
  }
}
