// The import controller: for each ServiceAccountImport, keeps a short-lived token of the remote
// service account in the import's Secret, renews it at ~80% of its lifetime, reports status,
// and on deletion revokes what it minted (finalizer) before removing the Secret.
//
// As controller-runtime splits it: reconcile reads (the shared cache, the Secret, the registry),
// asks planImport (plan.ts, pure) what to do, does it, and returns when to look again; the work
// queue alone owns retries and their backoff.
import type { KubeConfig, V1Secret } from "@kubernetes/client-node";
import { FINALIZER, type ServiceAccountImport } from "../common/api.ts";
import { type ImportCache, ImportClient } from "../common/import-client.ts";
import { buildImportSecretData } from "../common/import-secret.ts";
import { apiMessage, isConflict, isNotFound } from "../common/kube.ts";
import { ImportSecrets } from "./import-secrets.ts";
import type { Logger } from "../common/log.ts";
import { type MintRequest, type MintedToken, RemoteFailure, checkToken, mintToken, revokeGrant } from "../common/remote.ts";
import { EventRecorder } from "./events.ts";
import {
  type Action,
  type ClusterView,
  type MintOutcome,
  type PlanInput,
  type RevokeOutcome,
  type VerifyOutcome,
  fresher,
  planImport,
  secretView,
  wantsWork,
} from "./plan.ts";
import { type Requeue, WAIT, WorkQueue } from "./queue.ts";
import { ClusterRegistry, type RemoteCluster } from "./registry.ts";

export interface ControllerOptions {
  concurrency: number;
  clusterCheckIntervalMs: number;
  /** How long deletion keeps trying to revoke remotely before giving up (tokens then expire on their own). */
  revokeTimeoutMs: number;
  /** How often each import's token is used at the remote to prove it still works. */
  tokenCheckIntervalMs: number;
}

const keyOf = (sai: ServiceAccountImport) => `${sai.metadata.namespace}/${sai.metadata.name}`;

export class ImportController {
  readonly clusters: ClusterRegistry;
  private readonly queue: WorkQueue;
  private readonly imports: ImportCache;
  /** The version of each import the event handlers saw last, to tell the user's changes from our status writes. */
  private readonly seen = new Map<string, ServiceAccountImport>();
  /** What our last write of each import returned, until the cache has caught up with it. */
  private readonly written = new Map<string, ServiceAccountImport>();
  private readonly revokeFailingSince = new Map<string, Date>();
  /**
   * Tokens minted whose Secret write has not succeeded yet, by import: the next attempt writes the
   * same token instead of minting another, so a failing write does not leave a trail of live tokens.
   */
  private readonly unwritten = new Map<string, { request: string; minted: MintedToken }>();
  private readonly client: ImportClient;
  private readonly secrets: ImportSecrets;
  private readonly events: EventRecorder;
  private readonly log: Logger;
  private readonly options: ControllerOptions;

  /** imports: the process's one cache of imports (the webhook reads the same). */
  constructor(kc: KubeConfig, log: Logger, imports: ImportCache, options: ControllerOptions) {
    this.log = log;
    this.options = options;
    this.imports = imports;
    this.client = new ImportClient(kc);
    this.secrets = new ImportSecrets(kc);
    this.events = new EventRecorder(kc, log);
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      concurrency: options.concurrency,
      onError: (key, error) => {
        // Someone wrote the import since we read it: not a failure, just read it again.
        if (isConflict(error)) log.debug("conflict; retrying with a fresh read", { import: key });
        else log.error("reconcile failed", { import: key, error: apiMessage(error) });
      },
    });
    this.clusters = new ClusterRegistry(kc, log, (name) => this.enqueueCluster(name), options.clusterCheckIntervalMs);
  }

  async start(): Promise<void> {
    await this.clusters.start();
    const changed = (sai: ServiceAccountImport) => {
      const key = keyOf(sai);
      const previous = this.seen.get(key);
      this.seen.set(key, sai);
      if (!previous || wantsWork(previous, sai)) this.queue.add(key);
    };
    this.imports.on("add", changed);
    this.imports.on("update", changed);
    this.imports.on("delete", (sai) => {
      const key = keyOf(sai);
      this.seen.delete(key);
      this.written.delete(key);
      this.revokeFailingSince.delete(key);
      this.unwritten.delete(key);
      this.queue.forget(key);
    });
    await this.imports.start();
  }

  async stop(): Promise<void> {
    this.queue.stop();
    await this.clusters.stop();
  }

  private enqueueCluster(clusterName: string): void {
    for (const sai of this.imports.list()) if (sai.spec?.clusterName === clusterName) this.queue.add(keyOf(sai));
  }

  /** Read, plan, act; the returned requeue is the queue's to carry out. */
  private async reconcile(key: string): Promise<Requeue> {
    const [namespace, name] = key.split("/") as [string, string];
    const cached = this.imports.get(name, namespace);
    if (cached === undefined) return WAIT;
    let sai = fresher(cached, this.written.get(key));
    if (sai === cached) this.written.delete(key);
    const remote = this.clusters.get(sai.spec.clusterName);
    const secret = await this.secrets.readFor(sai);
    const input: PlanInput = {
      sai,
      secret: secretView(secret, sai),
      cluster: remote && clusterView(remote),
      now: new Date(),
      random: Math.random(),
      revokeTimeoutMs: this.options.revokeTimeoutMs,
      verifyIntervalMs: this.options.tokenCheckIntervalMs,
    };
    const local = { secret: input.secret && secret, token: undefined as string | undefined, remote };
    let plan = planImport(input);
    for (;;) {
      for (const action of plan.actions) {
        if (action.type !== "mint" && action.type !== "revoke" && action.type !== "verify") sai = await this.act(key, sai, action, local);
      }
      // A remote call ends a plan: its outcome decides what comes next, so plan again with it.
      const last = plan.actions.at(-1);
      if (last?.type === "mint") {
        const { outcome, token } = await this.mint(key, sai, remote!, last.request);
        local.token = token;
        plan = planImport({ ...input, sai, now: new Date(), mint: outcome });
        if (outcome.ok) delete input.verify;
      } else if (last?.type === "verify") {
        input.verify = await this.verify(remote!, input.secret!.token!, last.username);
        plan = planImport({ ...input, sai, now: new Date() });
      } else if (last?.type === "revoke") {
        plan = planImport({ ...input, sai, now: new Date(), revoke: await this.revoke(key, sai, remote!, last) });
      } else {
        break;
      }
    }
    if (plan.status !== undefined) this.remember(key, await this.client.replaceStatus({ ...sai, status: plan.status }));
    return plan.requeue;
  }

  private async mint(key: string, sai: ServiceAccountImport, remote: RemoteCluster, request: MintRequest): Promise<{ outcome: MintOutcome; token?: string }> {
    const asked = JSON.stringify([remote.registration.server, request]);
    const kept = this.unwritten.get(key);
    // Reused only while fresh (under a tenth of its life gone), so the schedule it sets stays true.
    if (kept?.request === asked && Date.now() < kept.minted.issuedAt.getTime() + (kept.minted.expiresAt.getTime() - kept.minted.issuedAt.getTime()) / 10) {
      return { outcome: { ok: true, issuedAt: kept.minted.issuedAt, expiresAt: kept.minted.expiresAt, grant: kept.minted.grant }, token: kept.minted.token };
    }
    try {
      const minted = await mintToken(remote.kc, sai.spec.clusterName, request);
      this.unwritten.set(key, { request: asked, minted });
      return { outcome: { ok: true, issuedAt: minted.issuedAt, expiresAt: minted.expiresAt, grant: minted.grant }, token: minted.token };
    } catch (error) {
      if (!(error instanceof RemoteFailure)) throw error;
      return { outcome: { ok: false, reason: error.reason, message: error.message } };
    }
  }

  /** Uses the Secret's token at the remote; another identity's token counts as refused. */
  private async verify(remote: RemoteCluster, token: string, username: string): Promise<VerifyOutcome> {
    const check = await checkToken(remote.registration, token);
    if (check.kind === "failed") return { kind: "failed", reason: check.failure.reason, message: check.failure.message };
    if (check.kind === "rejected") return check;
    if (check.username !== undefined && check.username !== username) return { kind: "rejected", message: `it authenticates as ${JSON.stringify(check.username)}, not ${username}` };
    return { kind: "works" };
  }

  private async revoke(key: string, sai: ServiceAccountImport, remote: RemoteCluster, action: { namespace: string; anchor: string }): Promise<RevokeOutcome> {
    try {
      await revokeGrant(remote.kc, sai.spec.clusterName, action.namespace, action.anchor);
      return { ok: true };
    } catch (error) {
      const failingSince = this.revokeFailingSince.get(key) ?? new Date();
      this.revokeFailingSince.set(key, failingSince);
      return { ok: false, reason: error instanceof RemoteFailure ? error.reason : undefined, message: apiMessage(error), failingSince };
    }
  }

  /** Does one local action; returns the import as it now is. */
  private async act(
    key: string,
    sai: ServiceAccountImport,
    action: Exclude<Action, { type: "mint" | "revoke" | "verify" }>,
    local: { secret?: V1Secret; token?: string; remote?: RemoteCluster },
  ): Promise<ServiceAccountImport> {
    switch (action.type) {
      case "addFinalizer": {
        const finalizers = [...(sai.metadata.finalizers ?? []), FINALIZER];
        return this.remember(key, await this.client.replace({ ...sai, metadata: { ...sai.metadata, finalizers } }));
      }
      case "writeSecret": {
        const { token, remote } = local;
        if (token === undefined || remote === undefined) throw new Error("writing an import Secret needs a minted token");
        const data = buildImportSecretData({
          importName: sai.metadata.name!,
          token,
          caPem: remote.registration.caPem,
          namespace: sai.spec.namespace,
          server: remote.registration.server,
        });
        await this.secrets.write(sai, local.secret, data);
        this.unwritten.delete(key);
        return sai;
      }
      case "deleteSecret":
        await this.secrets.delete(sai.metadata.namespace!, action.name);
        return sai;
      case "removeFinalizer":
        try {
          await this.client.patchMetadata(sai.metadata.namespace!, sai.metadata.name!, {
            resourceVersion: sai.metadata.resourceVersion,
            finalizers: (sai.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
          });
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
        this.revokeFailingSince.delete(key);
        return sai;
      case "event":
        if (action.eventType === "Normal") this.events.normal(sai, action.reason, action.message);
        else this.events.warn(sai, action.reason, action.message);
        return sai;
      case "log":
        this.log[action.level](action.message, { import: key, ...action.fields });
        return sai;
    }
  }

  private remember(key: string, sai: ServiceAccountImport): ServiceAccountImport {
    this.written.set(key, sai);
    return sai;
  }
}

function clusterView(remote: RemoteCluster): ClusterView {
  const { server, caPem, importer } = remote.registration;
  return { server, caPem, importer, failure: remote.failure && { reason: remote.failure.reason, message: remote.failure.message } };
}
