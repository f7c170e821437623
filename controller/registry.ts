// The remote clusters this cluster imports from, as registered by `kubectl mcsa bootstrap`:
// watches their registration Secrets, keeps the importer identity's token fresh, and checks
// each cluster's health so that imports report RemoteUnreachable while it is down.
import { CoreV1Api, type KubeConfig, PatchStrategy, type V1Secret, makeInformer, setHeaderOptions } from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import { tokenClaims, tokenExpiry } from "../common/import-secret.ts";
import { apiMessage } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { CLUSTER_NAME_LABEL, type Registration, parseRegistration } from "../common/registration.ts";
import { keepRunning } from "../common/informer.ts";
import { type RemoteFailure, checkHealth, mintIdentityToken, remoteConfig } from "../common/remote.ts";
import { backoffMs, renewalDelayMs } from "../common/schedule.ts";


export interface RemoteCluster {
  registration: Registration;
  secretName: string;
  kc: KubeConfig;
  /** Undefined while healthy. */
  failure?: RemoteFailure;
}

export class ClusterRegistry {
  private readonly clusters = new Map<string, RemoteCluster>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly renewFailures = new Map<string, number>();
  private healthTimer: NodeJS.Timeout | undefined;
  private informer: { stop(): Promise<void> } | undefined;
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly onChange: (clusterName: string) => void;
  private readonly healthIntervalMs: number;

  constructor(kc: KubeConfig, log: Logger, onChange: (clusterName: string) => void, healthIntervalMs: number) {
    this.kc = kc;
    this.log = log;
    this.onChange = onChange;
    this.healthIntervalMs = healthIntervalMs;
  }

  get(name: string): RemoteCluster | undefined {
    return this.clusters.get(name);
  }

  names(): string[] {
    return [...this.clusters.keys()];
  }

  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1Secret>(
      this.kc,
      `/api/v1/namespaces/${SYSTEM_NAMESPACE}/secrets`,
      () => core.listNamespacedSecret({ namespace: SYSTEM_NAMESPACE, labelSelector: CLUSTER_NAME_LABEL }),
      CLUSTER_NAME_LABEL,
    );
    informer.on("add", (s) => this.upsert(s));
    informer.on("update", (s) => this.upsert(s));
    informer.on("delete", (s) => this.remove(s));
    this.informer = keepRunning(informer, "cluster registrations", this.log);
    await informer.start();
    this.healthTimer = setInterval(() => void this.checkAll(), this.healthIntervalMs);
    this.healthTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.healthTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    await this.informer?.stop();
  }

  private upsert(secret: V1Secret): void {
    let registration: Registration;
    try {
      registration = parseRegistration(secret);
    } catch (error) {
      this.log.warn("ignoring an invalid cluster registration", { secret: secret.metadata?.name, error: (error as Error).message });
      return;
    }
    const name = registration.clusterName;
    const previous = this.clusters.get(name);
    const changed =
      !previous ||
      previous.registration.server !== registration.server ||
      previous.registration.caPem !== registration.caPem ||
      previous.registration.importer.serviceAccount !== registration.importer.serviceAccount;
    const cluster: RemoteCluster = {
      registration,
      secretName: secret.metadata!.name!,
      kc: remoteConfig(registration),
      // A new token may fix an Unauthorized; a new address may fix anything: check again.
      failure: changed || previous?.registration.token !== registration.token ? undefined : previous?.failure,
    };
    this.clusters.set(name, cluster);
    this.scheduleRenewal(name, registration.token);
    if (changed) {
      this.log.info("cluster registered", { cluster: name, server: registration.server });
      this.onChange(name);
    } else if (previous?.failure && !cluster.failure) {
      // A new token (bootstrap run again) may have fixed what the imports report.
      this.onChange(name);
    }
  }

  private remove(secret: V1Secret): void {
    const name = secret.metadata?.labels?.[CLUSTER_NAME_LABEL];
    if (!name || !this.clusters.has(name)) return;
    this.clusters.delete(name);
    clearTimeout(this.timers.get(name));
    this.log.info("cluster unregistered", { cluster: name });
    this.onChange(name);
  }

  private scheduleRenewal(name: string, token: string): void {
    clearTimeout(this.timers.get(name));
    const expiresAt = tokenExpiry(token);
    const issuedAt = issuedAtOf(token);
    const delay = expiresAt && issuedAt ? renewalDelayMs(issuedAt, expiresAt, new Date()) : 0;
    const timer = setTimeout(() => void this.renewIdentity(name), delay);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** Mints the importer identity a new token (bound to its anchor) and stores it locally. */
  private async renewIdentity(name: string): Promise<void> {
    const cluster = this.clusters.get(name);
    if (!cluster) return;
    const { importer } = cluster.registration;
    try {
      const minted = await mintIdentityToken(cluster.kc, name, importer);
      await this.kc.makeApiClient(CoreV1Api).patchNamespacedSecret(
        {
          name: cluster.secretName,
          namespace: SYSTEM_NAMESPACE,
          body: { data: { token: Buffer.from(minted.token).toString("base64") } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      this.renewFailures.delete(name);
      this.log.info("renewed the importer identity's token", { cluster: name, expires: minted.expiresAt.toISOString() });
    } catch (error) {
      const failures = (this.renewFailures.get(name) ?? 0) + 1;
      this.renewFailures.set(name, failures);
      const delay = backoffMs(failures, 1000, 300_000);
      this.log.warn("could not renew the importer identity's token", { cluster: name, error: apiMessage(error), retryInMs: delay });
      const timer = setTimeout(() => void this.renewIdentity(name), delay);
      timer.unref();
      this.timers.set(name, timer);
    }
  }

  /** Checks every cluster now; reports those whose health changed. */
  async checkAll(): Promise<void> {
    await Promise.all(
      [...this.clusters.values()].map(async (cluster) => {
        const failure = await checkHealth(cluster.kc, cluster.registration.clusterName);
        const name = cluster.registration.clusterName;
        if (this.clusters.get(name) !== cluster) return;
        const before = cluster.failure?.reason;
        cluster.failure = failure;
        if (before !== failure?.reason) {
          if (failure) this.log.warn("remote cluster unhealthy", { cluster: name, reason: failure.reason, error: failure.message });
          else this.log.info("remote cluster healthy again", { cluster: name });
          this.onChange(name);
        }
      }),
    );
  }
}

function issuedAtOf(token: string): Date | undefined {
  const iat = tokenClaims(token)?.iat;
  return typeof iat === "number" ? new Date(iat * 1000) : undefined;
}
