// The import controller's decisions, case by case: planImport is pure, so each row is an input
// (the import, its Secret, the cluster, the time, a remote call's outcome) and what must follow.
import { describe, expect, it } from "vitest";
import type { V1Secret } from "@kubernetes/client-node";
import { API_VERSION, FINALIZER, KIND, ROTATE_ANNOTATION, type ServiceAccountImport, readyCondition } from "../../../common/api.ts";
import { buildImportSecretData, importSecretName } from "../../../common/import-secret.ts";
import { type Action, type ClusterView, type ImportPlan, type PlanInput, fresher, planImport, secretView, wantsWork } from "../../../controller/plan.ts";
import { BACKOFF, type Requeue, WAIT, after, backoffAtMost } from "../../../controller/queue.ts";

const T = (hhmmss: string) => new Date(`2026-01-01T${hhmmss}Z`);
const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";
const ANCHOR = "mcsa-importer-cluster1.default.pods";
const SECRET_NAME = importSecretName("pods", "uid-1");

/** A JWT-shaped token whose claims say when it was issued and when it expires (never sent anywhere). */
function token(issued: string, expires: string): string {
  const claims = { iat: T(issued).getTime() / 1000, exp: T(expires).getTime() / 1000 };
  return `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
}

const CLUSTER: ClusterView = {
  server: "https://cluster2.example:6443",
  caPem: "CA-2",
  importer: { serviceAccount: "mcsa-importer-cluster1", namespace: "multicluster-service-account" },
};

/** A Ready import whose token was issued at 00:00 and expires at 01:00. */
function ready(change: (sai: ServiceAccountImport) => void = () => undefined): ServiceAccountImport {
  const sai: ServiceAccountImport = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "pods", namespace: "default", uid: "uid-1", generation: 1, resourceVersion: "10", finalizers: [FINALIZER] },
    spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister" },
    status: {
      secrets: [{ name: SECRET_NAME }],
      expirationTimestamp: "2026-01-01T01:00:00Z",
      issuedAt: "2026-01-01T00:00:00Z",
      observedGeneration: 1,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "TokenIssued",
          message: "token for cluster2/default/pod-lister valid until 2026-01-01T01:00:00Z",
          lastTransitionTime: "2026-01-01T00:00:00Z",
          observedGeneration: 1,
        },
      ],
    },
  };
  change(sai);
  return sai;
}

/** An import just created: no finalizer, no status. */
function fresh(): ServiceAccountImport {
  return ready((s) => {
    s.metadata.finalizers = undefined;
    s.status = undefined;
  });
}

const withReason = (reason: string, status: "True" | "False" = "False") =>
  ready((s) => {
    s.status!.conditions![0] = { ...s.status!.conditions![0]!, status, reason, message: "earlier" };
  });

const deleting = (change: (sai: ServiceAccountImport) => void = () => undefined) =>
  ready((s) => {
    s.metadata.deletionTimestamp = "2026-01-01T00:30:00Z";
    change(s);
  });

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    sai: ready(),
    secret: { name: SECRET_NAME, token: token("00:00:00", "01:00:00"), server: CLUSTER.server, caPem: CLUSTER.caPem, intact: true },
    cluster: CLUSTER,
    now: T("00:30:00"),
    random: 0.5,
    revokeTimeoutMs: 5 * MIN,
    verifyIntervalMs: 20_000,
    verify: { kind: "works" },
    ...over,
  };
}

const MINT: Action = {
  type: "mint",
  request: { namespace: "default", serviceAccount: "pod-lister", expirationSeconds: 3600, audiences: undefined, anchor: ANCHOR, readGrant: true },
};

interface Row {
  name: string;
  input: PlanInput;
  /** The actions, in order (events and logs compared by their type and reason only). */
  actions: string[];
  requeue: Requeue;
  /** The Ready condition written; undefined: no status write. */
  ready?: { status: "True" | "False"; reason: string; message?: RegExp };
  check?: (plan: ImportPlan) => void;
}

/** "mint", "event:Warning:Forbidden", "log:warn" … : enough to read a row at a glance. */
function summary(a: Action): string {
  if (a.type === "event") return `event:${a.eventType}:${a.reason}`;
  if (a.type === "log") return `log:${a.level}`;
  return a.type;
}

const rows: Row[] = [
  // --- a new import
  {
    name: "a new import gets the finalizer first, then a token is minted for it",
    input: input({ sai: fresh(), secret: undefined }),
    actions: ["addFinalizer", "mint"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[1]).toEqual(MINT),
  },
  {
    name: "the mint request carries the spec's lifetime and audiences, bound to the grant's anchor",
    input: input({
      sai: ready((s) => {
        s.spec.expirationSeconds = 7200;
        s.spec.audiences = ["vault"];
        s.metadata.generation = 2;
      }),
    }),
    actions: ["mint"],
    requeue: WAIT,
    check: (plan) =>
      expect(plan.actions[0]).toEqual({
        type: "mint",
        request: { namespace: "default", serviceAccount: "pod-lister", expirationSeconds: 7200, audiences: ["vault"], anchor: ANCHOR, readGrant: true },
      }),
  },
  {
    name: "the first token goes into a Secret named after the import's uid; status names it; a TokenIssued event",
    input: input({ sai: fresh(), secret: undefined, verifyIntervalMs: DAY, mint: { ok: true, issuedAt: T("00:30:00"), expiresAt: T("01:30:00") } }),
    actions: ["addFinalizer", "writeSecret", "log:info", "log:info", "event:Normal:TokenIssued"],
    requeue: after(48 * MIN),
    ready: { status: "True", reason: "TokenIssued", message: /^token for cluster2\/default\/pod-lister valid until 2026-01-01T01:30:00Z$/ },
    check: (plan) => {
      expect(plan.actions[1]).toEqual({ type: "writeSecret", name: SECRET_NAME });
      expect(plan.status).toMatchObject({
        secrets: [{ name: SECRET_NAME }],
        issuedAt: "2026-01-01T00:30:00Z",
        expirationTimestamp: "2026-01-01T01:30:00Z",
        observedGeneration: 1,
      });
      expect(plan.status?.grant).toBeUndefined();
    },
  },
  {
    name: "what the grant allows, read from its anchor when minting, is recorded in status",
    input: input({
      sai: ready((s) => (s.status!.grant = { serviceAccount: "old", maxExpirationSeconds: 1 })),
      now: T("00:49:00"),
      verifyIntervalMs: DAY,
      mint: { ok: true, issuedAt: T("00:49:00"), expiresAt: T("01:49:00"), grant: { serviceAccount: "pod-lister", audiences: [], maxExpirationSeconds: 86400 } },
    }),
    actions: ["writeSecret", "log:info"],
    requeue: after(48 * MIN),
    ready: { status: "True", reason: "TokenIssued" },
    check: (plan) => expect(plan.status?.grant).toEqual({ serviceAccount: "pod-lister", maxExpirationSeconds: 86400 }),
  },
  // --- renewal timing
  {
    name: "a fresh token is kept: no write, look again at 80% of its lifetime (random 0.5 → 48 min after issue)",
    input: input({ verifyIntervalMs: DAY }),
    actions: [],
    requeue: after(18 * MIN),
  },
  {
    name: "jitter, low end: random 0 renews at 75% (45 min after issue)",
    input: input({ random: 0, verifyIntervalMs: DAY }),
    actions: [],
    requeue: after(15 * MIN),
  },
  {
    name: "jitter, high end: random 1 renews at 85% (51 min after issue)",
    input: input({ random: 1, verifyIntervalMs: DAY }),
    actions: [],
    requeue: after(21 * MIN),
  },
  {
    name: "a token past its renewal time is renewed",
    input: input({ now: T("00:49:00") }),
    actions: ["mint"],
    requeue: WAIT,
  },
  {
    name: "a renewal of a Ready import records no event; the next renewal comes from the new lifetime",
    input: input({ now: T("00:49:00"), verifyIntervalMs: DAY, mint: { ok: true, issuedAt: T("00:49:00"), expiresAt: T("01:49:00") } }),
    actions: ["writeSecret", "log:info"],
    requeue: after(48 * MIN),
    ready: { status: "True", reason: "TokenIssued", message: /valid until 2026-01-01T01:49:00Z/ },
  },
  {
    name: "a server-shortened lifetime (10 min for 1 h asked): renewal at 80% of what was granted",
    input: input({ now: T("00:49:00"), verifyIntervalMs: DAY, mint: { ok: true, issuedAt: T("00:49:00"), expiresAt: T("00:59:00") } }),
    actions: ["writeSecret", "log:info"],
    requeue: after(8 * MIN),
    ready: { status: "True", reason: "TokenIssued" },
    check: (plan) => expect(plan.status?.expirationTimestamp).toBe("2026-01-01T00:59:00Z"),
  },
  {
    name: "a Secret without a readable token is refilled",
    input: input({ secret: { name: SECRET_NAME, token: "not-a-jwt", server: CLUSTER.server, caPem: CLUSTER.caPem, intact: true } }),
    actions: ["mint"],
    requeue: WAIT,
  },
  // --- expiry and failures
  {
    name: "an expired token whose renewal fails: Ready turns False, without a 'stays valid' promise",
    input: input({
      secret: { name: SECRET_NAME, token: token("00:00:00", "00:20:00"), server: CLUSTER.server, caPem: CLUSTER.caPem, intact: true },
      mint: { ok: false, reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' },
    }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "RemoteUnreachable", message: /^cannot reach cluster "cluster2": ECONNREFUSED$/ },
  },
  {
    name: "a failing renewal with under a minute of token left: Ready False, saying until when it is valid",
    input: input({
      now: T("00:59:30"),
      mint: { ok: false, reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' },
    }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "RemoteUnreachable", message: /stays valid until 2026-01-01T01:00:00Z$/ },
  },
  {
    name: "remote unreachable with a token still valid: Ready stays True, the reason says what is wrong and until when",
    input: input({ cluster: { ...CLUSTER, failure: { reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ETIMEDOUT' } } }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: after(20_000),
    ready: {
      status: "True",
      reason: "RemoteUnreachable",
      message: /^cannot reach cluster "cluster2": ETIMEDOUT; the current token stays valid until 2026-01-01T01:00:00Z$/,
    },
  },
  {
    name: "the remote healthy again: back to TokenIssued without a new token",
    input: input({ sai: withReason("RemoteUnreachable", "True") }),
    actions: ["log:info", "event:Normal:TokenIssued"],
    requeue: after(20_000),
    ready: { status: "True", reason: "TokenIssued", message: /valid until 2026-01-01T01:00:00Z/ },
  },
  {
    name: "Forbidden: the message carries the command that grants access, recorded once as a Warning event",
    input: input({
      sai: fresh(),
      secret: undefined,
      mint: { ok: false, reason: "Forbidden", message: 'cluster "cluster2" forbids creating a token for service account default/pod-lister' },
    }),
    actions: ["addFinalizer", "log:warn", "event:Warning:Forbidden"],
    requeue: BACKOFF,
    ready: {
      status: "False",
      reason: "Forbidden",
      message:
        /forbids creating a token .*; grant it with: kubectl mcsa import pods -n default --cluster cluster2 --remote-namespace default --service-account pod-lister --remote-context <context of cluster2>$/,
    },
  },
  {
    name: "NotFound: the grant hint too",
    input: input({ sai: fresh(), secret: undefined, mint: { ok: false, reason: "NotFound", message: 'cluster "cluster2": serviceaccounts "pod-lister" not found' } }),
    actions: ["addFinalizer", "log:warn", "event:Warning:NotFound"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "NotFound", message: /not found; grant it with: kubectl mcsa import pods/ },
  },
  {
    name: "the same failure again: no second event, no second log line",
    input: input({
      sai: withReason("Forbidden"),
      secret: undefined,
      mint: { ok: false, reason: "Forbidden", message: 'cluster "cluster2" forbids creating a token' },
    }),
    actions: [],
    requeue: BACKOFF,
    ready: { status: "False", reason: "Forbidden", message: /grant it with/ },
  },
  {
    name: "the spec edited to what the grant does not allow (NotGranted): Ready False at once, the Secret's token is the old spec's",
    input: input({
      sai: ready((s) => {
        s.spec.name = "team-b";
        s.metadata.generation = 2;
      }),
      mint: { ok: false, reason: "NotGranted", message: 'cluster "cluster2" refuses creating a token for service account default/team-b: grant g allows tokens of service account pod-lister only, not team-b' },
    }),
    actions: ["log:warn", "event:Warning:NotGranted"],
    requeue: BACKOFF,
    ready: {
      status: "False",
      reason: "NotGranted",
      message: /allows tokens of service account pod-lister only, not team-b; grant it with: kubectl mcsa import pods -n default --cluster cluster2 --remote-namespace default --service-account team-b --remote-context <context of cluster2>$/,
    },
    check: (plan) => expect(plan.status?.observedGeneration).toBe(1),
  },
  {
    name: "a lifetime beyond the grant (GrantExceeded): Ready False, lower it or have the grant widened (the command asks exactly the spec)",
    input: input({
      sai: ready((s) => {
        s.spec.expirationSeconds = 172800;
        s.spec.audiences = ["vault"];
        s.metadata.generation = 2;
      }),
      mint: { ok: false, reason: "GrantExceeded", message: "grant g allows tokens of at most 86400s, not 172800s" },
    }),
    actions: ["log:warn", "event:Warning:GrantExceeded"],
    requeue: BACKOFF,
    ready: {
      status: "False",
      reason: "GrantExceeded",
      message:
        /not 172800s; lower spec.expirationSeconds or spec.audiences to what the grant allows, or have its admin widen it: kubectl mcsa import pods .* --service-account pod-lister --ttl 48h --audience vault --remote-context <context of cluster2>$/,
    },
  },
  {
    name: "the same spec, a renewal refused by a narrowed grant: Ready stays True while the token lives (as Forbidden)",
    input: input({ now: T("00:50:00"), mint: { ok: false, reason: "GrantExceeded", message: "grant g allows tokens of at most 600s, not 3600s" } }),
    actions: ["log:warn", "event:Warning:GrantExceeded"],
    // Backoff, but looked at again by 00:59, when the token stops being usable and Ready turns False.
    requeue: backoffAtMost(9 * MIN + 1),
    ready: { status: "True", reason: "GrantExceeded", message: /the current token stays valid until 2026-01-01T01:00:00Z$/ },
  },
  {
    name: "Unauthorized: no grant hint (bootstrap is what fixes it), the valid token still promised",
    input: input({
      now: T("00:50:00"),
      mint: { ok: false, reason: "Unauthorized", message: 'cluster "cluster2" no longer accepts this cluster\'s importer identity (401): run kubectl mcsa bootstrap again' },
    }),
    actions: ["log:warn", "event:Warning:Unauthorized"],
    requeue: backoffAtMost(9 * MIN + 1),
    ready: { status: "True", reason: "Unauthorized", message: /bootstrap again; the current token stays valid until 2026-01-01T01:00:00Z$/ },
  },
  // --- changes that ask for a new token
  {
    name: "spec changed (generation moved past the observed one): a new token at once",
    input: input({ sai: ready((s) => (s.metadata.generation = 2)) }),
    actions: ["mint"],
    requeue: WAIT,
  },
  {
    name: "a rotation request not yet handled: a new token",
    input: input({ sai: ready((s) => (s.metadata.annotations = { [ROTATE_ANNOTATION]: "2026-01-01T00:29:00Z" })) }),
    actions: ["mint"],
    requeue: WAIT,
  },
  {
    name: "a rotation's new token is announced by a TokenRotated event and echoed in status",
    input: input({
      sai: ready((s) => (s.metadata.annotations = { [ROTATE_ANNOTATION]: "2026-01-01T00:29:00Z" })),
      mint: { ok: true, issuedAt: T("00:30:00"), expiresAt: T("01:30:00") },
    }),
    actions: ["writeSecret", "event:Normal:TokenRotated", "log:info"],
    requeue: after(20_000),
    ready: { status: "True", reason: "TokenIssued" },
    check: (plan) => expect(plan.status?.rotationRequest).toBe("2026-01-01T00:29:00Z"),
  },
  {
    name: "a rotation already handled mints nothing",
    input: input({
      sai: ready((s) => {
        s.metadata.annotations = { [ROTATE_ANNOTATION]: "2026-01-01T00:29:00Z" };
        s.status!.rotationRequest = "2026-01-01T00:29:00Z";
      }),
    }),
    actions: [],
    requeue: after(20_000),
  },
  {
    name: "the registration's server moved: a new token (the Secret must name the new address)",
    input: input({ cluster: { ...CLUSTER, server: "https://cluster2-new.example:6443" } }),
    actions: ["mint"],
    requeue: WAIT,
  },
  {
    name: "the registration's CA changed: a new token",
    input: input({ cluster: { ...CLUSTER, caPem: "CA-3" } }),
    actions: ["mint"],
    requeue: WAIT,
  },
  {
    name: "cluster not registered: Ready False with the bootstrap command; the registry's change brings it back",
    input: input({ cluster: undefined }),
    actions: ["log:warn", "event:Warning:ClusterNotFound"],
    requeue: WAIT,
    ready: {
      status: "False",
      reason: "ClusterNotFound",
      message: /^cluster "cluster2" is not registered here: run kubectl mcsa bootstrap --from <its context> --to <this cluster's context> --name cluster2$/,
    },
  },
  // --- the token is tried at the remote (Ready means it works now)
  {
    name: "a kept token is tried at the remote with itself, as the imported service account",
    input: input({ verify: undefined }),
    actions: ["verify"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[0]).toEqual({ type: "verify", username: "system:serviceaccount:default:pod-lister" }),
  },
  {
    name: "a new token too is tried within the check interval, not only at its renewal (the Secret may be damaged meanwhile)",
    input: input({ now: T("00:49:00"), mint: { ok: true, issuedAt: T("00:49:00"), expiresAt: T("01:49:00") } }),
    actions: ["writeSecret", "log:info"],
    requeue: after(20_000),
    ready: { status: "True", reason: "TokenIssued" },
  },
  {
    name: "a token that works is looked at again within the check interval (±10%), long before its renewal",
    input: input({ random: 1 }),
    actions: [],
    requeue: after(22_000),
  },
  {
    name: "a token for other audiences cannot be tried at the API server: kept without a check",
    input: input({ verify: undefined, verifyIntervalMs: DAY, sai: ready((s) => (s.spec.audiences = ["vault"])) }),
    actions: [],
    requeue: after(18 * MIN),
  },
  {
    name: "a token the remote refuses (revoked, forged, re-bootstrapped identity) is replaced at once",
    input: input({ verify: { kind: "rejected", message: 'cluster "cluster2" answered 401 Unauthorized' } }),
    actions: ["log:warn", "mint"],
    requeue: WAIT,
  },
  {
    name: "a refused token whose replacement fails: Ready False at once, whatever the claims' expiry (no 'stays valid')",
    input: input({
      verify: { kind: "rejected", message: "401" },
      mint: { ok: false, reason: "NotFound", message: 'cluster "cluster2": serviceaccounts "pod-lister" not found' },
    }),
    actions: ["log:warn", "event:Warning:NotFound"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "NotFound", message: /not found; grant it with: .*; the token in the Secret is refused by the remote$/ },
  },
  {
    name: "a check the remote cannot answer: Ready stays True while the token lives, the reason says why; retried with backoff",
    input: input({ verify: { kind: "failed", reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' } }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: backoffAtMost(29 * MIN + 1),
    ready: { status: "True", reason: "RemoteUnreachable", message: /stays valid until 2026-01-01T01:00:00Z$/ },
  },
  {
    name: "a renewal failing 30 s before the token stops being usable: retried by then, so Ready turns False on time, not a backoff period late",
    input: input({ now: T("00:58:30"), mint: { ok: false, reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' } }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: backoffAtMost(30_000 + 1),
    ready: { status: "True", reason: "RemoteUnreachable", message: /stays valid until 2026-01-01T01:00:00Z$/ },
  },
  {
    name: "the same failure once the token's last minute has begun: Ready False, plain backoff",
    input: input({ now: T("00:59:00"), mint: { ok: false, reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' } }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "RemoteUnreachable" },
  },
  {
    name: "an altered Secret (a key edited or dropped) is rewritten with a new token",
    input: input({ secret: { name: SECRET_NAME, token: token("00:00:00", "01:00:00"), server: CLUSTER.server, caPem: CLUSTER.caPem, intact: false } }),
    actions: ["log:warn", "mint"],
    requeue: WAIT,
  },
  {
    name: "a deleted Secret of an import that had a token is recreated",
    input: input({ secret: undefined }),
    actions: ["log:warn", "mint"],
    requeue: WAIT,
  },
  {
    name: "a health check's reason does not hide the renewal's failure: turning False is logged and recorded",
    input: input({
      sai: withReason("RemoteUnreachable", "True"),
      now: T("00:59:30"),
      cluster: { ...CLUSTER, failure: { reason: "RemoteUnreachable", message: "down" } },
      mint: { ok: false, reason: "RemoteUnreachable", message: 'cannot reach cluster "cluster2": ECONNREFUSED' },
    }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "RemoteUnreachable" },
  },
  {
    name: "the registration Secret deleted: like any cluster failure, Ready stays True while the token lives, saying how to restore it",
    input: input({
      cluster: { ...CLUSTER, failure: { reason: "RegistrationMissing", message: 'the registration of cluster "cluster2" was deleted: restore it with kubectl mcsa bootstrap' } },
    }),
    actions: ["log:warn", "event:Warning:RegistrationMissing"],
    requeue: after(20_000),
    ready: { status: "True", reason: "RegistrationMissing", message: /restore it with kubectl mcsa bootstrap; the current token stays valid until 2026-01-01T01:00:00Z$/ },
  },
  {
    name: "the registration deleted: the token is still tried at the remote (unbootstrap revokes it), with the server the registration named",
    input: input({ verify: undefined, cluster: { ...CLUSTER, failure: { reason: "RegistrationMissing", message: "deleted" } } }),
    actions: ["verify"],
    requeue: WAIT,
  },
  {
    name: "no check while the health check finds the remote down: the health check's reason stands",
    input: input({ verify: undefined, cluster: { ...CLUSTER, failure: { reason: "RemoteUnreachable", message: "down" } } }),
    actions: ["log:warn", "event:Warning:RemoteUnreachable"],
    requeue: after(20_000),
    ready: { status: "True", reason: "RemoteUnreachable" },
  },
  {
    name: "the registration still missing when the token nears its end: Ready False",
    input: input({
      sai: withReason("RegistrationMissing", "True"),
      now: T("00:59:30"),
      cluster: { ...CLUSTER, failure: { reason: "RegistrationMissing", message: "deleted" } },
      mint: { ok: false, reason: "Unauthorized", message: "401" },
    }),
    actions: ["log:warn", "event:Warning:Unauthorized"],
    requeue: BACKOFF,
    ready: { status: "False", reason: "Unauthorized" },
  },
  // --- deletion
  {
    name: "deletion with a minted token: revoke the grant's anchor remotely first",
    input: input({ sai: deleting() }),
    actions: ["revoke"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[0]).toEqual({ type: "revoke", namespace: "default", anchor: ANCHOR }),
  },
  {
    name: "deletion, revoked: the Secret goes, then the finalizer",
    input: input({ sai: deleting(), revoke: { ok: true } }),
    actions: ["log:info", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[1]).toEqual({ type: "deleteSecret", name: SECRET_NAME }),
  },
  {
    name: "deletion without a recorded token: revoked all the same (a crash may have lost one minted)",
    input: input({ sai: deleting((s) => (s.status = undefined)) }),
    actions: ["revoke"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[0]).toEqual({ type: "revoke", namespace: "default", anchor: ANCHOR }),
  },
  {
    name: "deletion without a recorded token, its grant never existed (404 is revoked; 403 no right left): Secret and finalizer go",
    input: input({ sai: deleting((s) => (s.status = undefined)), revoke: { ok: false, reason: "Forbidden", message: "forbidden", failingSince: T("00:30:00") } }),
    actions: ["log:info", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
  },
  {
    name: "deletion without a Secret and without a recorded token, revoked: only the finalizer goes",
    input: input({ sai: deleting((s) => (s.status = undefined)), secret: undefined, revoke: { ok: true } }),
    actions: ["log:info", "removeFinalizer"],
    requeue: WAIT,
  },
  {
    name: "deletion without a recorded token, the remote down past the timeout: RevokeFailed names no expiry it does not know",
    input: input({
      sai: deleting((s) => (s.status = undefined)),
      now: T("00:40:00"),
      revoke: { ok: false, reason: "RemoteUnreachable", message: "ECONNREFUSED", failingSince: T("00:30:00") },
    }),
    actions: ["event:Warning:RevokeFailed", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[0]).toMatchObject({ message: "could not revoke remotely (ECONNREFUSED); its tokens stay valid until their expiry" }),
  },
  {
    name: "deletion of an import whose cluster is no longer registered: no remote call",
    input: input({ sai: deleting(), cluster: undefined }),
    actions: ["deleteSecret", "removeFinalizer"],
    requeue: WAIT,
  },
  {
    name: "deletion once our finalizer is gone: nothing to do",
    input: input({ sai: deleting((s) => (s.metadata.finalizers = ["other"])) }),
    actions: [],
    requeue: WAIT,
  },
  {
    name: "revoke failing within --revoke-timeout: retry with backoff, the finalizer stays",
    input: input({ sai: deleting(), revoke: { ok: false, reason: "RemoteUnreachable", message: "ECONNREFUSED", failingSince: T("00:27:00") } }),
    actions: ["log:warn"],
    requeue: BACKOFF,
  },
  {
    name: "revoke failing past --revoke-timeout: a RevokeFailed event says until when the tokens live; deletion goes on",
    input: input({ sai: deleting(), revoke: { ok: false, reason: "RemoteUnreachable", message: "ECONNREFUSED", failingSince: T("00:24:00") } }),
    actions: ["event:Warning:RevokeFailed", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
    check: (plan) =>
      expect(plan.actions[0]).toMatchObject({ message: "could not revoke remotely (ECONNREFUSED); its tokens stay valid until 2026-01-01T01:00:00Z" }),
  },
  {
    name: "revoke Unauthorized after the registration was deleted (unbootstrap): no retry can succeed, deletion goes on at once",
    input: input({
      sai: deleting(),
      cluster: { ...CLUSTER, failure: { reason: "RegistrationMissing", message: "deleted" } },
      revoke: { ok: false, reason: "Unauthorized", message: "401", failingSince: T("00:30:00") },
    }),
    actions: ["event:Warning:RevokeFailed", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
    check: (plan) => expect(plan.actions[0]).toMatchObject({ message: /registration of cluster "cluster2" was deleted.*valid until 2026-01-01T01:00:00Z\)$/ }),
  },
  {
    name: "revoke Unauthorized while the registration exists (its token may be renewed by bootstrap): retried within --revoke-timeout",
    input: input({ sai: deleting(), revoke: { ok: false, reason: "Unauthorized", message: "401", failingSince: T("00:29:00") } }),
    actions: ["log:warn"],
    requeue: BACKOFF,
  },
  {
    name: "revoke Forbidden: the grant is already gone remotely, deletion goes on at once",
    input: input({ sai: deleting(), revoke: { ok: false, reason: "Forbidden", message: "forbidden", failingSince: T("00:30:00") } }),
    actions: ["log:info", "deleteSecret", "removeFinalizer"],
    requeue: WAIT,
  },
];

describe("planImport", () => {
  it("has a row for each case the controller decides", () => {
    expect(rows.length).toBeGreaterThanOrEqual(20);
  });

  it.each(rows)("$name", (row) => {
    const plan = planImport(row.input);
    expect(plan.actions.map(summary)).toEqual(row.actions);
    expect(plan.requeue).toEqual(row.requeue);
    if (row.ready === undefined) {
      expect(plan.status).toBeUndefined();
    } else {
      const condition = readyCondition({ status: plan.status });
      expect(condition).toMatchObject({ type: "Ready", status: row.ready.status, reason: row.ready.reason });
      if (row.ready.message) expect(condition?.message).toMatch(row.ready.message);
    }
    row.check?.(plan);
  });

  it("keeps the Ready condition's transition time while Ready stays the same, and moves it when it flips", () => {
    const stays = planImport(input({ cluster: { ...CLUSTER, failure: { reason: "RemoteUnreachable", message: "down" } } }));
    expect(readyCondition({ status: stays.status })?.lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    const flips = planImport(input({ cluster: undefined }));
    expect(readyCondition({ status: flips.status })?.lastTransitionTime).toBe("2026-01-01T00:30:00Z");
  });
});

describe("secretView", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const secret = (ownerUid: string): V1Secret => ({
    metadata: { name: SECRET_NAME, ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: "pods", uid: ownerUid }] },
    data: { token: b64("t"), server: b64("https://s"), "ca.crt": b64("CA") },
  });
  const whole = (ownerUid: string): V1Secret => ({
    ...secret(ownerUid),
    data: buildImportSecretData({ importName: "pods", token: "e30.e30.sig", caPem: CA, namespace: "default", server: "https://s.example" }),
  });
  it.each([
    { name: "a Secret the import owns is decoded", secret: secret("uid-1"), want: { name: SECRET_NAME, token: "t", server: "https://s", caPem: "CA", intact: false } },
    {
      name: "a Secret as the controller writes it is intact",
      secret: whole("uid-1"),
      want: { name: SECRET_NAME, token: "e30.e30.sig", server: "https://s.example", caPem: CA, intact: true },
    },
    {
      name: "a Secret with its config edited is not",
      secret: { ...whole("uid-1"), data: { ...whole("uid-1").data, config: b64("apiVersion: v1") } },
      want: { name: SECRET_NAME, token: "e30.e30.sig", server: "https://s.example", caPem: CA, intact: false },
    },
    { name: "someone else's Secret does not count", secret: secret("uid-2"), want: undefined },
    { name: "no Secret", secret: undefined, want: undefined },
  ])("$name", ({ secret, want }) => {
    expect(secretView(secret, ready())).toEqual(want);
  });
});

describe("wantsWork", () => {
  it.each([
    { name: "our own status write", change: (s: ServiceAccountImport) => (s.status!.issuedAt = "2026-01-01T00:40:00Z"), want: false },
    { name: "a label", change: (s: ServiceAccountImport) => (s.metadata.labels = { a: "b" }), want: false },
    { name: "the spec (generation)", change: (s: ServiceAccountImport) => (s.metadata.generation = 2), want: true },
    { name: "a rotation request", change: (s: ServiceAccountImport) => (s.metadata.annotations = { [ROTATE_ANNOTATION]: "x" }), want: true },
    { name: "deletion", change: (s: ServiceAccountImport) => (s.metadata.deletionTimestamp = "2026-01-01T00:40:00Z"), want: true },
    { name: "finalizers", change: (s: ServiceAccountImport) => (s.metadata.finalizers = []), want: true },
  ])("$name → $want", ({ change, want }) => {
    expect(wantsWork(ready(), ready(change))).toBe(want);
  });
});

describe("fresher", () => {
  const at = (rv: string) => ready((s) => (s.metadata.resourceVersion = rv));
  it.each([
    { name: "the cache has not seen our write yet: ours", cached: "10", written: "11", want: "11" },
    { name: "the cache caught up: the cache", cached: "11", written: "11", want: "11" },
    { name: "someone wrote after us: the cache", cached: "12", written: "11", want: "12" },
    { name: "nothing written: the cache", cached: "10", written: undefined, want: "10" },
    { name: "versions that are not integers: the cache", cached: "a", written: "b", want: "a" },
  ])("$name", ({ cached, written, want }) => {
    expect(fresher(at(cached), written === undefined ? undefined : at(written)).metadata.resourceVersion).toBe(want);
  });
});
