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
  SECRET_KEYS,
  type ServiceAccountImport,
  type ServiceAccountImportStatus,
  readyCondition,
} from "../common/api.ts";
import { formatDuration } from "../common/duration.ts";
import { type GrantLimits, type Importer, importGrantName } from "../common/grant.ts";
import { buildImportSecretData, importSecretName, tokenExpiry } from "../common/import-secret.ts";
import type { FailureReason, MintRequest } from "../common/remote.ts";
import { renewalDelayMs } from "../common/schedule.ts";
import { isoSeconds as iso, setCondition } from "./conditions.ts";
import { BACKOFF, type Requeue, WAIT, after, backoffAtMost } from "./queue.ts";

/** The import's own Secret, decoded. */
export interface SecretView {
  name: string;
  token?: string;
  server?: string;
  caPem?: string;
  /** Every key is what the controller would write with this token (not deleted, garbled or edited). */
  intact: boolean;
}

/** A registered remote cluster, as far as decisions go. */
export interface ClusterView {
  server: string;
  caPem: string;
  importer: Importer;
  /** Its last health check's failure; undefined while healthy. */
  failure?: { reason: FailureReason; message: string };
}

export type MintOutcome =
  /** grant: what the import's grant allows, read from its anchor after minting (undefined: unreadable). */
  | { ok: true; issuedAt: Date; expiresAt: Date; grant?: GrantLimits }
  | { ok: false; reason: FailureReason; message: string };

/** Refusals of the grant itself: what the import asks is not (or no longer) granted. */
const GRANT_REFUSALS: readonly FailureReason[] = ["Forbidden", "NotGranted", "GrantExceeded", "NotFound"];

/**
 * What the remote said of the token in the Secret when it was used (a SelfSubjectReview made with
 * the token itself): it works, it is refused (revoked, forged, another identity's), or the remote
 * could not be asked.
 */
export type VerifyOutcome =
  | { kind: "works" }
  | { kind: "rejected"; message: string }
  | { kind: "failed"; reason: FailureReason; message: string };

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
  /** How often a working token is tried again at the remote (damage is noticed within this). */
  verifyIntervalMs: number;
  mint?: MintOutcome;
  revoke?: RevokeOutcome;
  verify?: VerifyOutcome;
}

export type Action =
  | { type: "addFinalizer" }
  | { type: "mint"; request: MintRequest }
  /** Use the Secret's token at the remote: is it accepted as this identity? */
  | { type: "verify"; username: string }
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

  const verify = input.verify;
  const rejected = verify?.kind === "rejected";
  if (input.mint === undefined) {
    const issuedAt = sai.status?.issuedAt ? new Date(sai.status.issuedAt) : undefined;
    const due = expiresAt && issuedAt ? renewalDelayMs(issuedAt, expiresAt, now, input.random) : 0;
    const damaged = secret !== undefined && !secret.intact;
    const needsToken =
      !expiresAt ||
      due <= 0 ||
      damaged ||
      rejected ||
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
        readGrant: true,
      };
      const repair = repairNote(sai, secret, damaged, verify);
      if (repair) actions.push({ type: "log", level: "warn", message: repair });
      return { actions: [...actions, { type: "mint", request }], requeue: WAIT };
    }
    const next = after(Math.min(due, verifyDelayMs(input)));
    // Only a token for the API server's own audience can be tried there, and not while the health check finds it down.
    if (verify === undefined && !sai.spec.audiences?.length && cluster.failure?.reason !== "RemoteUnreachable") {
      return { actions: [...actions, { type: "verify", username: serviceAccountUser(sai) }], requeue: WAIT };
    }
    if (cluster.failure) {
      const ready = { ready: usable(expiresAt, now), reason: cluster.failure.reason, message: stillValid(cluster.failure.message, expiresAt, now) };
      return withStatus(input, actions, ready, {}, next);
    }
    if (verify?.kind === "failed") {
      const ready = { ready: usable(expiresAt, now), reason: verify.reason, message: stillValid(verify.message, expiresAt, now) };
      return withStatus(input, actions, ready, {}, retryBeforeUnusable(ready.ready, expiresAt, now));
    }
    return withStatus(input, actions, { ready: true, reason: "TokenIssued", message: validUntil(sai, expiresAt!) }, {}, next);
  }

  const mint = input.mint;
  if (!mint.ok) {
    const refused = GRANT_REFUSALS.includes(mint.reason);
    const message = refused ? withGrantHint(mint.message, mint.reason, sai) : mint.message;
    // The spec changed since the token in the Secret was minted and the grant refuses what it now
    // asks: that token is not what the import names (another account, audience or lifetime).
    const outdated = refused && sai.status?.observedGeneration !== sai.metadata.generation;
    // A token the remote refuses is no token, however long its claims say it lives.
    const ready = rejected
      ? { ready: false, reason: mint.reason, message: `${message}; the token in the Secret is refused by the remote` }
      : outdated
        ? { ready: false, reason: mint.reason, message }
        : { ready: usable(expiresAt, now), reason: mint.reason, message: stillValid(message, expiresAt, now) };
    return withStatus(input, actions, ready, {}, retryBeforeUnusable(ready.ready, expiresAt, now));
  }

  const secretName = secret?.name ?? importSecretName(sai.metadata.name!, sai.metadata.uid!);
  actions.push({ type: "writeSecret", name: secretName });
  const wasIssued = readyCondition(sai)?.status === "True" && readyCondition(sai)?.reason === "TokenIssued";
  if (wasIssued && rotation !== sai.status?.rotationRequest) {
    actions.push({
      type: "event",
      eventType: "Normal",
      reason: "TokenRotated",
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
      grant: mint.grant && grantStatus(mint.grant),
    },
    after(Math.min(renewalDelayMs(mint.issuedAt, mint.expiresAt, now, input.random), verifyDelayMs(input))),
  );
}

/** Revoke remotely what was minted (delete the grant's anchor), remove the Secret, lift the finalizer. */
function planDeletion(input: PlanInput): ImportPlan {
  const { sai, cluster, secret, now, revoke } = input;
  if (!sai.metadata.finalizers?.includes(FINALIZER)) return { actions: [], requeue: WAIT };
  const actions: Action[] = [];
  // Revoked even if no token was recorded: one may have been minted just before a crash lost it.
  // A grant that never existed answers 404 (nothing to revoke) or 403 (no right left to revoke).
  if (cluster) {
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
      // Unauthorized once the registration is deleted: the remote no longer knows our identity
      // (unbootstrap removes the grants, revoking their tokens, then the identity, then the
      // registration), and no retry can bring it back; only bootstrap could, and it re-plans.
      const orphaned = revoke.reason === "Unauthorized" && cluster.failure?.reason === "RegistrationMissing";
      if (orphaned) {
        actions.push({
          type: "event",
          eventType: "Warning",
          reason: "RevokeFailed",
          message:
            `could not revoke remotely: the registration of cluster "${sai.spec.clusterName}" was deleted and the remote refuses its identity ` +
            `(kubectl mcsa unbootstrap revokes every grant first; otherwise its tokens stay valid until ${sai.status?.expirationTimestamp ?? "their expiry"})`,
        });
        if (secret) actions.push({ type: "deleteSecret", name: secret.name });
        actions.push({ type: "removeFinalizer" });
        return { actions, requeue: WAIT };
      }
      if (!final && now.getTime() - revoke.failingSince.getTime() < input.revokeTimeoutMs) {
        const log: Action = { type: "log", level: "warn", message: "cannot revoke the import's tokens yet; retrying", fields: { error: revoke.message } };
        return { actions: [log], requeue: BACKOFF };
      }
      const expires = sai.status?.expirationTimestamp ?? "their expiry";
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
  // Every change of Ready or of its reason is told twice, in the log and as an Event, so that no
  // reason hides another's (a health check's RemoteUnreachable, then a mint's, are one transition).
  const before = readyCondition(sai);
  const nowStatus = ready.ready ? "True" : "False";
  if (before?.status !== nowStatus || before.reason !== ready.reason) {
    const healthy = ready.ready && ready.reason === "TokenIssued";
    const fields = { ready: nowStatus, reason: ready.reason, message: ready.message, ...(before && { was: `${before.status}/${before.reason}` }) };
    actions.push(
      { type: "log", level: healthy ? "info" : "warn", message: ready.ready ? "import ready" : "import not ready", fields },
      { type: "event", eventType: healthy ? "Normal" : "Warning", reason: ready.reason, message: ready.message },
    );
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
/**
 * Backoff while failing; but while Ready is still True on the strength of the current token, look
 * again no later than the moment it stops being usable, so Ready turns False then, not up to one
 * backoff period (60 s) later.
 */
function retryBeforeUnusable(ready: boolean, expiresAt: Date | undefined, now: Date): Requeue {
  if (!ready || expiresAt === undefined) return BACKOFF;
  return backoffAtMost(expiresAt.getTime() - USABLE_MARGIN_MS - now.getTime() + 1);
}

function usable(expiresAt: Date | undefined, now: Date): boolean {
  return expiresAt !== undefined && expiresAt.getTime() > now.getTime() + USABLE_MARGIN_MS;
}

function stillValid(message: string, expiresAt: Date | undefined, now: Date): string {
  return expiresAt && expiresAt > now ? `${message}; the current token stays valid until ${iso(expiresAt)}` : message;
}

/** The message of a refused grant, with what to do: the command that grants exactly what the import asks. */
function withGrantHint(message: string, reason: FailureReason, sai: ServiceAccountImport): string {
  const { spec } = sai;
  const command = [
    `kubectl mcsa import ${sai.metadata.name} -n ${sai.metadata.namespace} --cluster ${spec.clusterName}`,
    `--remote-namespace ${spec.namespace} --service-account ${spec.name}`,
    ...(spec.expirationSeconds ? [`--ttl ${formatDuration(spec.expirationSeconds)}`] : []),
    ...(spec.audiences ?? []).map((a) => `--audience ${a}`),
    `--remote-context <context of ${spec.clusterName}>`,
  ].join(" ");
  if (reason === "GrantExceeded") return `${message}; lower spec.expirationSeconds or spec.audiences to what the grant allows, or have its admin widen it: ${command}`;
  return `${message}; grant it with: ${command}`;
}

/** What the grant allows, as the import's status records it. */
function grantStatus(grant: GrantLimits): NonNullable<ServiceAccountImportStatus["grant"]> {
  return {
    serviceAccount: grant.serviceAccount,
    ...(grant.audiences.length ? { audiences: grant.audiences } : {}),
    maxExpirationSeconds: grant.maxExpirationSeconds,
  };
}

/** The import's Secret as decisions see it: only one the import owns counts (never overwrite someone else's). */
export function secretView(secret: V1Secret | undefined, sai: ServiceAccountImport): SecretView | undefined {
  if (!secret?.metadata?.name || !secret.metadata.ownerReferences?.some((o) => o.uid === sai.metadata.uid)) return undefined;
  const decoded = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], "base64").toString("utf8") : undefined);
  const view = { name: secret.metadata.name, token: decoded("token"), server: decoded("server"), caPem: decoded("ca.crt") };
  return { ...view, intact: intact(secret.data ?? {}, view, sai) };
}

/** Whether the Secret holds exactly what the controller writes for its own token, server and CA. */
function intact(data: Record<string, string>, view: Omit<SecretView, "intact">, sai: ServiceAccountImport): boolean {
  if (!view.token || !view.server || !view.caPem) return false;
  let expected: Record<string, string>;
  try {
    expected = buildImportSecretData({ importName: sai.metadata.name!, token: view.token, caPem: view.caPem, namespace: sai.spec.namespace, server: view.server });
  } catch {
    return false;
  }
  return SECRET_KEYS.every((k) => data[k] === expected[k]);
}

/** The user name a token of the imported service account authenticates as. */
export function serviceAccountUser(sai: ServiceAccountImport): string {
  return `system:serviceaccount:${sai.spec.namespace}:${sai.spec.name}`;
}

/** The verification interval, spread by ±10% so that imports do not all call at once. */
function verifyDelayMs(input: PlanInput): number {
  return Math.round(input.verifyIntervalMs * (0.9 + 0.2 * input.random));
}

/** Why a token is minted out of turn, for the log: the Secret was lost, damaged, or its token refused. */
function repairNote(sai: ServiceAccountImport, secret: SecretView | undefined, damaged: boolean, verify: VerifyOutcome | undefined): string | undefined {
  if (verify?.kind === "rejected") return `the remote refuses the token in the Secret (${verify.message}); minting a new one`;
  if (damaged) return `the import's Secret ${secret!.name} was altered; writing a new token`;
  if (secret === undefined && sai.status?.issuedAt) return `the import's Secret is gone; writing a new token`;
  return undefined;
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
