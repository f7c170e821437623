// The import controller: for each ServiceAccountImport, keeps a short-lived token of the remote
// service account in the import's Secret, renews it at ~80% of its lifetime, reports status,
// and on deletion revokes what it minted (finalizer) before removing the Secret.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Secret,
  makeInformer,
} from "@kubernetes/client-node";
import {
  DEFAULT_EXPIRATION_SECONDS,
  FINALIZER,
  GROUP,
  PLURAL,
  ROTATE_ANNOTATION,
  type ServiceAccountImport,
  VERSION,
  readyCondition,
} from "../common/api.ts";
import { importGrantName } from "../common/grant.ts";
import { patchImportMetadata } from "../common/import-api.ts";
import { buildImportSecretData, importSecretName, importSecretSkeleton, tokenExpiry } from "../common/import-secret.ts";
import { apiMessage, isConflict, isNotFound } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { isoSeconds as iso, setCondition } from "./conditions.ts";
import { EventRecorder } from "./events.ts";
import { keepRunning } from "../common/informer.ts";
import { WorkQueue } from "./queue.ts";
import { ClusterRegistry } from "./registry.ts";
import { type FailureReason, RemoteFailure, revokeGrant, mintToken } from "../common/remote.ts";
import { backoffMs, renewalDelayMs } from "../common/schedule.ts";


export interface ControllerOptions {
  concurrency: number;
  clusterCheckIntervalMs: number;
  /** How long deletion keeps trying to revoke remotely before giving up (tokens then expire on their own). */
  revokeTimeoutMs: number;
}

interface ImportStatus {
  reason: string;
  message: string;
  ready: boolean;
}

const keyOf = (sai: ServiceAccountImport) => `${sai.metadata.namespace}/${sai.metadata.name}`;

export class ImportController {
  readonly clusters: ClusterRegistry;
  private readonly queue: WorkQueue;
  private readonly known = new Map<string, ServiceAccountImport>();
  private readonly failures = new Map<string, number>();
  private readonly revokeStarted = new Map<string, number>();
  private informer: { stop(): Promise<void> } | undefined;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly options: ControllerOptions;

  constructor(kc: KubeConfig, log: Logger, options: ControllerOptions) {
    this.kc = kc;
    this.log = log;
    this.options = options;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(kc, log);
    this.queue = new WorkQueue((key) => this.reconcile(key), options.concurrency, (key, error) => {
      // Someone wrote the import since we read it: not a failure, just read it again.
      if (isConflict(error)) {
        log.debug("conflict; retrying with a fresh read", { import: key });
        this.queue.add(key);
        return;
      }
      log.error("reconcile failed", { import: key, error: apiMessage(error) });
      this.retry(key);
    });
    this.clusters = new ClusterRegistry(kc, log, (name) => this.enqueueCluster(name), options.clusterCheckIntervalMs);
  }

  async start(): Promise<void> {
    await this.clusters.start();
    const informer = makeInformer<KubernetesObject>(
      this.kc,
      `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      () => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as never,
    );
    const seen = (obj: KubernetesObject) => {
      const sai = obj as unknown as ServiceAccountImport;
      const previous = this.known.get(keyOf(sai));
      this.known.set(keyOf(sai), sai);
      // Our own status writes come back as updates: only what the user changed needs work.
      if (!previous || wantsWork(previous, sai)) this.queue.add(keyOf(sai));
    };
    informer.on("add", seen);
    informer.on("update", seen);
    informer.on("delete", (obj) => {
      const key = keyOf(obj as unknown as ServiceAccountImport);
      this.known.delete(key);
      this.failures.delete(key);
      this.revokeStarted.delete(key);
      this.queue.forget(key);
    });
    this.informer = keepRunning(informer, "service account imports", this.log);
    await informer.start();
  }

  async stop(): Promise<void> {
    this.queue.stop();
    await this.informer?.stop();
    await this.clusters.stop();
  }

  private enqueueCluster(clusterName: string): void {
    for (const [key, sai] of this.known) if (sai.spec?.clusterName === clusterName) this.queue.add(key);
  }

  private retry(key: string): void {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    this.queue.add(key, backoffMs(failures));
  }

  private async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split("/") as [string, string];
    let sai: ServiceAccountImport;
    try {
      sai = (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as ServiceAccountImport;
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (sai.metadata.deletionTimestamp) return this.finalize(key, sai);
    if (!sai.metadata.finalizers?.includes(FINALIZER)) {
      sai.metadata.finalizers = [...(sai.metadata.finalizers ?? []), FINALIZER];
      sai = await this.replace(sai);
    }

    const cluster = this.clusters.get(sai.spec.clusterName);
    if (!cluster) {
      await this.setStatus(sai, {
        ready: false,
        reason: "ClusterNotFound",
        message:
          `cluster "${sai.spec.clusterName}" is not registered here: ` +
          `run kubectl mcsa bootstrap --from <its context> --to <this cluster's context> --name ${sai.spec.clusterName}`,
      });
      return;
    }

    const secret = await this.currentSecret(sai);
    const token = secret?.data?.token ? Buffer.from(secret.data.token, "base64").toString("utf8") : undefined;
    const expiresAt = token ? tokenExpiry(token) : undefined;
    const issuedAt = sai.status?.issuedAt ? new Date(sai.status.issuedAt) : undefined;
    const registration = cluster.registration;
    const decoded = (k: string) => (secret?.data?.[k] ? Buffer.from(secret.data[k]!, "base64").toString("utf8") : undefined);
    const rotation = sai.metadata.annotations?.[ROTATE_ANNOTATION];
    const now = new Date();
    const due = expiresAt && issuedAt ? renewalDelayMs(issuedAt, expiresAt, now) : 0;
    const needsToken =
      !token ||
      !expiresAt ||
      due <= 0 ||
      sai.status?.observedGeneration !== sai.metadata.generation ||
      (rotation !== undefined && rotation !== sai.status?.rotationRequest) ||
      decoded("server") !== registration.server ||
      decoded("ca.crt") !== registration.caPem;

    if (!needsToken) {
      if (cluster.failure) {
        await this.setStatus(sai, { ready: usable(expiresAt), reason: cluster.failure.reason, message: stillValid(cluster.failure.message, expiresAt) });
      } else {
        await this.setStatus(sai, { ready: true, reason: "TokenIssued", message: validUntil(sai, expiresAt!) });
      }
      this.failures.delete(key);
      this.queue.add(key, due);
      return;
    }

    let minted;
    try {
      minted = await mintToken(cluster.kc, sai.spec.clusterName, {
        namespace: sai.spec.namespace,
        serviceAccount: sai.spec.name,
        expirationSeconds: sai.spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS,
        audiences: sai.spec.audiences,
        anchor: importGrantName(registration.importer, namespace, name),
      });
    } catch (error) {
      if (!(error instanceof RemoteFailure)) throw error;
      const message = error.reason === "Forbidden" || error.reason === "NotFound" ? withGrantHint(error, sai) : error.message;
      if (readyCondition(sai)?.reason !== error.reason) this.events.warn(sai, error.reason, message);
      await this.setStatus(sai, { ready: usable(expiresAt), reason: error.reason, message: stillValid(message, expiresAt) });
      this.retry(key);
      return;
    }

    const data = buildImportSecretData({
      importName: name,
      token: minted.token,
      caPem: registration.caPem,
      namespace: sai.spec.namespace,
      server: registration.server,
    });
    const secretName = await this.writeSecret(sai, secret, data);
    const wasReady = readyCondition(sai)?.status === "True";
    await this.setStatus(
      sai,
      { ready: true, reason: "TokenIssued", message: validUntil(sai, minted.expiresAt) },
      {
        secrets: [{ name: secretName }],
        expirationTimestamp: iso(minted.expiresAt),
        issuedAt: iso(minted.issuedAt),
        rotationRequest: rotation,
      },
    );
    if (!wasReady || rotation !== sai.status?.rotationRequest) {
      this.events.normal(sai, "TokenIssued", `new token in Secret ${secretName}, valid until ${iso(minted.expiresAt)}`);
    }
    this.log.info("token issued", { import: key, secret: secretName, expires: iso(minted.expiresAt) });
    this.failures.delete(key);
    this.queue.add(key, renewalDelayMs(minted.issuedAt, minted.expiresAt, new Date()));
  }

  private async currentSecret(sai: ServiceAccountImport): Promise<V1Secret | undefined> {
    const name = sai.status?.secrets?.[0]?.name ?? importSecretName(sai.metadata.name!, sai.metadata.uid!);
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace: sai.metadata.namespace! });
      // Only a Secret this import owns counts: never overwrite someone else's.
      return secret.metadata?.ownerReferences?.some((o) => o.uid === sai.metadata.uid) ? secret : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Updates the Secret in place (pods' volumes follow it), or creates it. Returns its name. */
  private async writeSecret(sai: ServiceAccountImport, existing: V1Secret | undefined, data: Record<string, string>): Promise<string> {
    const namespace = sai.metadata.namespace!;
    if (existing) {
      existing.data = data;
      const updated = await this.core.replaceNamespacedSecret({ name: existing.metadata!.name!, namespace, body: existing });
      return updated.metadata!.name!;
    }
    const body = { ...importSecretSkeleton(sai), data };
    try {
      return (await this.core.createNamespacedSecret({ namespace, body })).metadata!.name!;
    } catch (error) {
      if (!isConflict(error)) throw error;
      // Created by an earlier attempt whose status write failed: ours by its name; take it over.
      const current = await this.core.readNamespacedSecret({ name: body.metadata!.name!, namespace });
      if (!current.metadata?.ownerReferences?.some((o) => o.uid === sai.metadata.uid)) {
        throw new Error(`Secret ${namespace}/${body.metadata!.name} exists and is not owned by this import`, { cause: error });
      }
      current.data = data;
      return (await this.core.replaceNamespacedSecret({ name: current.metadata!.name!, namespace, body: current })).metadata!.name!;
    }
  }

  private async setStatus(
    sai: ServiceAccountImport,
    condition: ImportStatus,
    fields: Partial<NonNullable<ServiceAccountImport["status"]>> = {},
  ): Promise<void> {
    const now = new Date();
    const status = { ...sai.status, ...fields };
    for (const [k, v] of Object.entries(fields)) if (v === undefined) delete (status as Record<string, unknown>)[k];
    status.conditions = setCondition(
      sai.status?.conditions,
      {
        type: "Ready",
        status: condition.ready ? "True" : "False",
        reason: condition.reason,
        message: condition.message,
        observedGeneration: sai.metadata.generation,
      },
      now,
    );
    status.observedGeneration = condition.ready ? sai.metadata.generation : sai.status?.observedGeneration;
    if (JSON.stringify(status) === JSON.stringify(sai.status)) return;
    const previous = readyCondition(sai);
    if (!condition.ready && previous?.reason !== condition.reason) {
      this.log.warn("import not ready", { import: keyOf(sai), reason: condition.reason, message: condition.message });
    }
    await this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: sai.metadata.namespace!,
      name: sai.metadata.name!,
      body: { ...sai, status },
    });
  }

  private async replace(sai: ServiceAccountImport): Promise<ServiceAccountImport> {
    return (await this.custom.replaceNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: sai.metadata.namespace!,
      name: sai.metadata.name!,
      body: sai,
    })) as ServiceAccountImport;
  }

  /** Revokes remotely (deletes the grant's anchor), removes the Secret, then lets deletion finish. */
  private async finalize(key: string, sai: ServiceAccountImport): Promise<void> {
    if (!sai.metadata.finalizers?.includes(FINALIZER)) return;
    const cluster = this.clusters.get(sai.spec.clusterName);
    // Nothing to revoke if no token was ever minted (the grant may never have existed).
    if (cluster && sai.status?.issuedAt) {
      const anchor = importGrantName(cluster.registration.importer, sai.metadata.namespace!, sai.metadata.name!);
      try {
        await revokeGrant(cluster.kc, sai.spec.clusterName, sai.spec.namespace, anchor);
        this.log.info("revoked the import's tokens", { import: key, cluster: sai.spec.clusterName });
      } catch (error) {
        const started = this.revokeStarted.get(key) ?? Date.now();
        // Forbidden: our grant is gone (someone deleted it, which already revoked its anchor's
        // tokens, or `remove --remote-context` did): nothing left that retrying could do.
        const final = error instanceof RemoteFailure && error.reason === "Forbidden";
        this.revokeStarted.set(key, started);
        const message = apiMessage(error);
        if (!final && Date.now() - started < this.options.revokeTimeoutMs) {
          this.log.warn("cannot revoke the import's tokens yet; retrying", { import: key, error: message });
          this.retry(key);
          return;
        }
        const expires = sai.status?.expirationTimestamp ?? "their expiry";
        if (final) this.log.info("the import's grant is already gone remotely", { import: key, error: message });
        else this.events.warn(sai, "RevokeFailed", `could not revoke remotely (${message}); its tokens stay valid until ${expires}`);
      }
    }
    // Only Secrets this import owns (status could name any Secret): the garbage collector would
    // remove them too, but tokens should not outlive the import by a collection cycle.
    const owned = await this.currentSecret(sai);
    if (owned) {
      try {
        await this.core.deleteNamespacedSecret({ name: owned.metadata!.name!, namespace: sai.metadata.namespace! });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    try {
      await patchImportMetadata(this.custom, sai.metadata.namespace!, sai.metadata.name!, {
        resourceVersion: sai.metadata.resourceVersion,
        finalizers: sai.metadata.finalizers.filter((f) => f !== FINALIZER),
      });
    } catch (error) {
      if (isNotFound(error)) return;
      if (isConflict(error)) return this.queue.add(key);
      throw error;
    }
    this.revokeStarted.delete(key);
    this.failures.delete(key);
  }
}

/** Whether an update changed what the controller acts on (spec, rotation, deletion, finalizers). */
function wantsWork(before: ServiceAccountImport, after: ServiceAccountImport): boolean {
  return (
    before.metadata.generation !== after.metadata.generation ||
    before.metadata.annotations?.[ROTATE_ANNOTATION] !== after.metadata.annotations?.[ROTATE_ANNOTATION] ||
    before.metadata.deletionTimestamp !== after.metadata.deletionTimestamp ||
    JSON.stringify(before.metadata.finalizers) !== JSON.stringify(after.metadata.finalizers)
  );
}

function validUntil(sai: ServiceAccountImport, expiresAt: Date): string {
  return `token for ${sai.spec.clusterName}/${sai.spec.namespace}/${sai.spec.name} valid until ${iso(expiresAt)}`;
}

/** A token that still has a minute to live keeps the import usable while renewal fails. */
function usable(expiresAt: Date | undefined): boolean {
  return expiresAt !== undefined && expiresAt.getTime() > Date.now() + 60_000;
}

function stillValid(message: string, expiresAt: Date | undefined): string {
  return expiresAt && expiresAt > new Date() ? `${message}; the current token stays valid until ${iso(expiresAt)}` : message;
}

function withGrantHint(error: RemoteFailure, sai: ServiceAccountImport): string {
  const reason: FailureReason = error.reason;
  const hint =
    `grant it with: kubectl mcsa import ${sai.metadata.name} -n ${sai.metadata.namespace} --cluster ${sai.spec.clusterName} ` +
    `--remote-namespace ${sai.spec.namespace} --service-account ${sai.spec.name} --remote-context <context of ${sai.spec.clusterName}>`;
  return reason === "Forbidden" || reason === "NotFound" ? `${error.message}; ${hint}` : error.message;
}
