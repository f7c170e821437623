// What the import controller decides, as one pure function: given an import, its Secret, the
// cluster's registration and health, and the time, planImport says which status to write, which
// actions to take and when to look again. The reconcile (imports.ts) only reads, runs the plan
// and returns its requeue; tests pin every decision down with tables (test/unit/controller/plan.test.ts).
//
// A remote call's outcome changes what comes next, so a plan ending in `mint` or `revoke` is
// provisional: the reconcile runs it, then plans again with the outcome in the input.
import { isDeepStrictEqual } from "node:util";
import type { V1Secret } from "@kubernetes/client-node";
import {
  DEFAULT_EXPIRATION_SECONDS,
  FINALIZER,
  ROTATE_ANNOTATION,
  type ServiceAccountImport,
  type ServiceAccountImportStatus,
  readyCondition,
} from "../common/api.ts";
import { type Importer, importGrantName } from "../common/grant.ts";
import { importSecretName, tokenExpiry } from "../common/import-secret.ts";
import type { FailureReason, MintRequest } from "../common/remote.ts";
import { renewalDelayMs } from "../common/schedule.ts";
import { isoSeconds as iso, setCondition } from "./conditions.ts";
import { BACKOFF, type Requeue, WAIT, after } from "./queue.ts";

/** The import's own Secret, decoded. */
export interface SecretView {
  name: string;
  token?: string;
  server?: string;
  caPem?: string;
}

/** A registered remote cluster, as far as decisions go. */
export interface ClusterView {
  server: string;
  caPem: string;
  importer: Importer;
  /** Its last health check's failure; undefined while healthy. */
  failure?: { reason: FailureReason; message: string };
}

export type MintOutcome = { ok: true; issuedAt: Date; expiresAt: Date } | { ok: false; reason: FailureReason; message: string };

export type RevokeOutcome =
  | { ok: true }
  /** failingSince: when the first of the failed attempts in a row was made. */
  | { ok: false; reason?: FailureReason; message: string; failingSince: Date };

export interface PlanInput {
  sai: ServiceAccountImport;
  secret?: SecretView;
  /** Undefined: spec.clusterName is not registered here. */
  cluster?: ClusterView;
  now: Date;
  /** In [0, 1): where in the renewal window (±5%) this import renews. */
  random: number;
  /** How long deletion keeps trying to revoke remotely before giving up. */
  revokeTimeoutMs: number;
  mint?: MintOutcome;
  revoke?: RevokeOutcome;
}

export type Action =
  | { type: "addFinalizer" }
  | { type: "mint"; request: MintRequest }
  /** The minted token, the registration's server and CA, into the Secret of this name (created if need be). */
  | { type: "writeSecret"; name: string }
  | { type: "revoke"; namespace: string; anchor: string }
  | { type: "deleteSecret"; name: string }
  | { type: "removeFinalizer" }
  | { type: "event"; eventType: "Normal" | "Warning"; reason: string; message: string }
  | { type: "log"; level: "info" | "warn"; message: string; fields?: Record<string, string> };

export interface ImportPlan {
  actions: Action[];
  /** The status to write; undefined when it stays as it is. */
  status?: ServiceAccountImportStatus;
  requeue: Requeue;
}

/** A token with less than this left is no longer worth keeping an import Ready for. */
const USABLE_MARGIN_MS = 60_000;

export function planImport(input: PlanInput): ImportPlan {
  if (input.sai.metadata.deletionTimestamp) return planDeletion(input);
  const { sai, cluster, secret, now } = input;
  const actions: Action[] = [];
  if (!sai.metadata.finalizers?.includes(FINALIZER)) actions.push({ type: "addFinalizer" });

  if (!cluster) {
    const message =
      `cluster "${sai.spec.clusterName}" is not registered here: ` +
      `run kubectl mcsa bootstrap --from <its context> --to <this cluster's context> --name ${sai.spec.clusterName}`;
    return withStatus(input, actions, { ready: false, reason: "ClusterNotFound", message }, {}, WAIT);
  }

  const expiresAt = secret?.token ? tokenExpiry(secret.token) : undefined;
  const rotation = sai.metadata.annotations?.[ROTATE_ANNOTATION];

  if (input.mint === undefined) {
    const issuedAt = sai.status?.issuedAt ? new Date(sai.status.issuedAt) : undefined;
    const due = expiresAt && issuedAt ? renewalDelayMs(issuedAt, expiresAt, now, input.random) : 0;
    const needsToken =
      !expiresAt ||
      due <= 0 ||
      sai.status?.observedGeneration !== sai.metadata.generation ||
      (rotation !== undefined && rotation !== sai.status?.rotationRequest) ||
      secret?.server !== cluster.server ||
      secret?.caPem !== cluster.caPem;
    if (needsToken) {
      const request: MintRequest = {
        namespace: sai.spec.namespace,
        serviceAccount: sai.spec.name,
        expirationSeconds: sai.spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS,
        audiences: sai.spec.audiences,
        anchor: importGrantName(cluster.importer, sai.metadata.namespace!, sai.metadata.name!),
      };
      return { actions: [...actions, { type: "mint", request }], requeue: WAIT };
    }
    const ready = cluster.failure
      ? { ready: usable(expiresAt, now), reason: cluster.failure.reason, message: stillValid(cluster.failure.message, expiresAt, now) }
      : { ready: true, reason: "TokenIssued", message: validUntil(sai, expiresAt!) };
    return withStatus(input, actions, ready, {}, after(due));
  }

  const mint = input.mint;
  if (!mint.ok) {
    const message = mint.reason === "Forbidden" || mint.reason === "NotFound" ? withGrantHint(mint.message, sai) : mint.message;
    if (readyCondition(sai)?.reason !== mint.reason) actions.push({ type: "event", eventType: "Warning", reason: mint.reason, message });
    return withStatus(input, actions, { ready: usable(expiresAt, now), reason: mint.reason, message: stillValid(message, expiresAt, now) }, {}, BACKOFF);
  }

  const secretName = secret?.name ?? importSecretName(sai.metadata.name!, sai.metadata.uid!);
  actions.push({ type: "writeSecret", name: secretName });
  const wasReady = readyCondition(sai)?.status === "True";
  if (!wasReady || rotation !== sai.status?.rotationRequest) {
    actions.push({
      type: "event",
      eventType: "Normal",
      reason: "TokenIssued",
      message: `new token in Secret ${secretName}, valid until ${iso(mint.expiresAt)}`,
    });
  }
  actions.push({ type: "log", level: "info", message: "token issued", fields: { secret: secretName, expires: iso(mint.expiresAt) } });
  return withStatus(
    input,
    actions,
    { ready: true, reason: "TokenIssued", message: validUntil(sai, mint.expiresAt) },
    {
      secrets: [{ name: secretName }],
      expirationTimestamp: iso(mint.expiresAt),
      issuedAt: iso(mint.issuedAt),
      rotationRequest: rotation,
    },
    after(renewalDelayMs(mint.issuedAt, mint.expiresAt, now, input.random)),
  );
}

/** Revoke remotely what was minted (delete the grant's anchor), remove the Secret, lift the finalizer. */
function planDeletion(input: PlanInput): ImportPlan {
  const { sai, cluster, secret, now, revoke } = input;
  if (!sai.metadata.finalizers?.includes(FINALIZER)) return { actions: [], requeue: WAIT };
  const actions: Action[] = [];
  // Nothing to revoke if no token was ever minted (the grant may never have existed).
  if (cluster && sai.status?.issuedAt) {
    if (revoke === undefined) {
      const anchor = importGrantName(cluster.importer, sai.metadata.namespace!, sai.metadata.name!);
      return { actions: [{ type: "revoke", namespace: sai.spec.namespace, anchor }], requeue: WAIT };
    }
    if (revoke.ok) {
      actions.push({ type: "log", level: "info", message: "revoked the import's tokens", fields: { cluster: sai.spec.clusterName } });
    } else {
      // Forbidden: our grant is gone (someone deleted it, which already revoked its anchor's
      // tokens, or `remove --remote-context` did): nothing left that retrying could do.
      const final = revoke.reason === "Forbidden";
      if (!final && now.getTime() - revoke.failingSince.getTime() < input.revokeTimeoutMs) {
        const log: Action = { type: "log", level: "warn", message: "cannot revoke the import's tokens yet; retrying", fields: { error: revoke.message } };
        return { actions: [log], requeue: BACKOFF };
      }
      const expires = sai.status.expirationTimestamp ?? "their expiry";
      actions.push(
        final
          ? { type: "log", level: "info", message: "the import's grant is already gone remotely", fields: { error: revoke.message } }
          : {
              type: "event",
              eventType: "Warning",
              reason: "RevokeFailed",
              message: `could not revoke remotely (${revoke.message}); its tokens stay valid until ${expires}`,
            },
      );
    }
  }
  // The garbage collector would remove the Secret too, but tokens should not outlive the import by a collection cycle.
  if (secret) actions.push({ type: "deleteSecret", name: secret.name });
  actions.push({ type: "removeFinalizer" });
  return { actions, requeue: WAIT };
}

interface Ready {
  ready: boolean;
  reason: string;
  message: string;
}

/** The plan with the status these facts make (undefined if it is the current one). */
function withStatus(
  input: PlanInput,
  actions: Action[],
  ready: Ready,
  fields: Partial<ServiceAccountImportStatus>,
  requeue: Requeue,
): ImportPlan {
  const { sai } = input;
  const status: ServiceAccountImportStatus = { ...sai.status, ...fields };
  for (const [k, v] of Object.entries(fields)) if (v === undefined) delete (status as Record<string, unknown>)[k];
  status.conditions = setCondition(
    sai.status?.conditions,
    { type: "Ready", status: ready.ready ? "True" : "False", reason: ready.reason, message: ready.message, observedGeneration: sai.metadata.generation },
    input.now,
  );
  status.observedGeneration = ready.ready ? sai.metadata.generation : sai.status?.observedGeneration;
  if (sameJson(status, sai.status)) return { actions, requeue };
  if (!ready.ready && readyCondition(sai)?.reason !== ready.reason) {
    actions.push({ type: "log", level: "warn", message: "import not ready", fields: { reason: ready.reason, message: ready.message } });
  }
  return { actions, status, requeue };
}

/** Equal as JSON: key order (the API server sorts keys) and undefined fields do not count. */
function sameJson(a: unknown, b: unknown): boolean {
  const plain = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(plain(a), plain(b));
}

function validUntil(sai: ServiceAccountImport, expiresAt: Date): string {
  return `token for ${sai.spec.clusterName}/${sai.spec.namespace}/${sai.spec.name} valid until ${iso(expiresAt)}`;
}

/** A token that still has a minute to live keeps the import usable while renewal fails. */
function usable(expiresAt: Date | undefined, now: Date): boolean {
  return expiresAt !== undefined && expiresAt.getTime() > now.getTime() + USABLE_MARGIN_MS;
}

function stillValid(message: string, expiresAt: Date | undefined, now: Date): string {
  return expiresAt && expiresAt > now ? `${message}; the current token stays valid until ${iso(expiresAt)}` : message;
}

function withGrantHint(message: string, sai: ServiceAccountImport): string {
  const hint =
    `grant it with: kubectl mcsa import ${sai.metadata.name} -n ${sai.metadata.namespace} --cluster ${sai.spec.clusterName} ` +
    `--remote-namespace ${sai.spec.namespace} --service-account ${sai.spec.name} --remote-context <context of ${sai.spec.clusterName}>`;
  return `${message}; ${hint}`;
}

/** The import's Secret as decisions see it: only one the import owns counts (never overwrite someone else's). */
export function secretView(secret: V1Secret | undefined, importUid: string | undefined): SecretView | undefined {
  if (!secret?.metadata?.name || !secret.metadata.ownerReferences?.some((o) => o.uid === importUid)) return undefined;
  const decoded = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], "base64").toString("utf8") : undefined);
  return { name: secret.metadata.name, token: decoded("token"), server: decoded("server"), caPem: decoded("ca.crt") };
}

/** Whether an update changed what the controller acts on (spec, rotation, deletion, finalizers); its own status writes do not. */
export function wantsWork(before: ServiceAccountImport, after: ServiceAccountImport): boolean {
  return (
    before.metadata.generation !== after.metadata.generation ||
    before.metadata.annotations?.[ROTATE_ANNOTATION] !== after.metadata.annotations?.[ROTATE_ANNOTATION] ||
    before.metadata.deletionTimestamp !== after.metadata.deletionTimestamp ||
    JSON.stringify(before.metadata.finalizers) !== JSON.stringify(after.metadata.finalizers)
  );
}

/**
 * The fresher of the cached import and the one our last write returned: the watch may not have
 * delivered our own write yet, and planning from the older copy would mint a token twice.
 * kube-apiserver's resource versions are increasing integers; anything else trusts the cache.
 */
export function fresher(cached: ServiceAccountImport, written: ServiceAccountImport | undefined): ServiceAccountImport {
  const a = cached.metadata.resourceVersion ?? "";
  const b = written?.metadata.resourceVersion ?? "";
  if (written === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return cached;
  return BigInt(b) > BigInt(a) ? written : cached;
}
