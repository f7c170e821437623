// The remote clusters this cluster imports from, as registered by `kubectl mcsa bootstrap`:
// watches their registration Secrets, keeps the importer identity's token fresh, and checks
// each cluster's health so that imports report RemoteUnreachable while it is down.
import { CoreV1Api, type KubeConfig, PatchStrategy, type V1Secret, makeInformer, setHeaderOptions } from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import { tokenClaims, tokenExpiry } from "../common/import-secret.ts";
import { apiMessage } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { CLUSTER_NAME_LABEL, type Registration, parseRegistration } from "../common/registration.ts";
import { SharedInformer } from "../common/informer.ts";
import { RemoteFailure, checkHealth, mintIdentityToken, remoteConfig } from "../common/remote.ts";
import { backoffMs, renewalDelayMs } from "../common/schedule.ts";
import { type Requeue, WAIT, WorkQueue } from "./queue.ts";

export interface RemoteCluster {
  registration: Registration;
  secretName: string;
  kc: KubeConfig;
  /** Undefined while healthy. */
  failure?: RemoteFailure;
  /** When its health was last checked (ms since the epoch). */
  checkedAt?: number;
  /** Its registration Secret was deleted: kept (imports stay Ready while their tokens live) until bootstrap restores it. */
  lost?: boolean;
}

/** How often a cluster whose last health check failed is checked again. */
const UNHEALTHY_RECHECK_MS = 5_000;

export class ClusterRegistry {
  private readonly clusters = new Map<string, RemoteCluster>();
  /** Renewals of each cluster's importer identity token, keyed by cluster name. */
  private readonly renewals: WorkQueue;
  private healthTimer: NodeJS.Timeout | undefined;
  private informer: SharedInformer<V1Secret> | undefined;
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly onChange: (clusterName: string) => void;
  private readonly healthIntervalMs: number;

  constructor(kc: KubeConfig, log: Logger, onChange: (clusterName: string) => void, healthIntervalMs: number) {
    this.kc = kc;
    this.log = log;
    this.onChange = onChange;
    this.healthIntervalMs = healthIntervalMs;
    this.renewals = new WorkQueue((name) => this.renewIdentity(name), {
      concurrency: 2,
      onError: (name, error) => log.warn("could not renew the importer identity's token", { cluster: name, error: apiMessage(error) }),
      backoff: (failures) => backoffMs(failures, 1000, 300_000),
    });
  }

  get(name: string): RemoteCluster | undefined {
    return this.clusters.get(name);
  }

  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const informer = new SharedInformer<V1Secret>(
      (track) =>
        makeInformer<V1Secret>(
          this.kc,
          `/api/v1/namespaces/${SYSTEM_NAMESPACE}/secrets`,
          track(() => core.listNamespacedSecret({ namespace: SYSTEM_NAMESPACE, labelSelector: CLUSTER_NAME_LABEL })),
          CLUSTER_NAME_LABEL,
        ),
      "cluster registrations",
      this.log,
    );
    informer.on("add", (s) => this.upsert(s));
    informer.on("update", (s) => this.upsert(s));
    informer.on("delete", (s) => this.remove(s));
    this.informer = informer;
    await informer.start();
    // Healthy clusters are checked every interval; an unhealthy one every few seconds, so that an
    // outage's end is noticed quickly (its imports are only degraded while it lasts).
    this.healthTimer = setInterval(() => void this.checkAll(), Math.min(UNHEALTHY_RECHECK_MS, this.healthIntervalMs));
    this.healthTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.healthTimer);
    this.renewals.stop();
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
      // A new token may fix an Unauthorized; a new address may fix anything; a restored registration too: check again.
      failure: changed || previous?.lost || previous?.registration.token !== registration.token ? undefined : previous?.failure,
    };
    this.clusters.set(name, cluster);
    this.scheduleRenewal(name, registration.token);
    if (changed || previous?.lost) {
      this.log.info(previous?.lost ? "cluster registration restored" : "cluster registered", { cluster: name, server: registration.server });
      this.onChange(name);
    } else if (previous?.failure && !cluster.failure) {
      // A new token (bootstrap run again) may have fixed what the imports report.
      this.onChange(name);
    }
  }

  /**
   * A deleted registration is a cluster failure like any other: its imports keep their tokens (and
   * stay Ready while those live) with a reason that says how to restore it, instead of all turning
   * not-Ready at once. Its identity token is not renewed any more; bootstrap brings it back.
   */
  private remove(secret: V1Secret): void {
    const name = secret.metadata?.labels?.[CLUSTER_NAME_LABEL];
    const cluster = name === undefined ? undefined : this.clusters.get(name);
    if (!name || !cluster || cluster.secretName !== secret.metadata?.name) return;
    this.renewals.forget(name);
    cluster.lost = true;
    cluster.failure = new RemoteFailure(
      "RegistrationMissing",
      `the registration of cluster "${name}" (Secret ${SYSTEM_NAMESPACE}/${cluster.secretName}) was deleted: ` +
        `restore it with kubectl mcsa bootstrap --from <its context> --to <this cluster's context> --name ${name}`,
    );
    this.log.warn("cluster registration deleted; its imports keep their tokens until they expire", { cluster: name });
    this.onChange(name);
  }

  /** Renew at ~80% of the token's lifetime; a token that changed (bootstrap again, our renewal) sets the next time. */
  private scheduleRenewal(name: string, token: string): void {
    const expiresAt = tokenExpiry(token);
    const issuedAt = issuedAtOf(token);
    this.renewals.forget(name);
    this.renewals.add(name, expiresAt && issuedAt ? renewalDelayMs(issuedAt, expiresAt, new Date()) : 0);
  }

  /** Mints the importer identity a new token (bound to its anchor) and stores it locally; its watch event schedules the next. */
  private async renewIdentity(name: string): Promise<Requeue> {
    const cluster = this.clusters.get(name);
    if (!cluster) return WAIT;
    const minted = await mintIdentityToken(cluster.kc, name, cluster.registration.importer);
    await this.kc.makeApiClient(CoreV1Api).patchNamespacedSecret(
      {
        name: cluster.secretName,
        namespace: SYSTEM_NAMESPACE,
        body: { data: { token: Buffer.from(minted.token).toString("base64") } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    this.log.info("renewed the importer identity's token", { cluster: name, expires: minted.expiresAt.toISOString() });
    return WAIT;
  }

  private checkDue(cluster: RemoteCluster): boolean {
    return healthCheckDue(cluster, Date.now(), this.healthIntervalMs);
  }

  /** Checks every cluster whose check is due; reports those whose health changed. */
  private async checkAll(): Promise<void> {
    await Promise.all(
      [...this.clusters.values()].filter((cluster) => !cluster.lost && this.checkDue(cluster)).map(async (cluster) => {
        cluster.checkedAt = Date.now();
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

/** Exported for tests: whether a cluster's health check is due at `now`. */
export function healthCheckDue(cluster: Pick<RemoteCluster, "failure" | "checkedAt">, now: number, intervalMs: number): boolean {
  if (cluster.checkedAt === undefined) return true;
  const every = cluster.failure ? Math.min(UNHEALTHY_RECHECK_MS, intervalMs) : intervalMs;
  // A tick's own jitter must not skip a check: due a little early counts.
  return now - cluster.checkedAt >= every - 1000;
}

function issuedAtOf(token: string): Date | undefined {
  const iat = tokenClaims(token)?.iat;
  return typeof iat === "number" ? new Date(iat * 1000) : undefined;
}
