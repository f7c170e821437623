// Tenancy on the real clusters: team-a and team-b (two namespaces of cluster1) each import a
// different service account of the same namespace of cluster2, each granted only its own. Every
// way team-a could reach what team-b was granted (editing its import's spec.name, spec.namespace,
// spec.audiences, spec.expirationSeconds, or a new import naming team-b's account) ends Ready
// False with a clear reason, and no Secret in team-a's namespace ever holds a token of team-b's
// accounts: a watch on the namespace decodes the `sub` of every token that appears in it.
// cluster2 enforces the grants itself (bootstrap's ValidatingAdmissionPolicy): the importer
// identity, used directly with kubectl, cannot get team-b's token bound to team-a's grant.
// Also the upgrade: a grant of the old shape keeps minting, and re-running bootstrap records it.
// No pods: runs with MCSA_NO_NODE=1.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type V1Secret, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, PLURAL, ROTATE_ANNOTATION, SYSTEM_NAMESPACE, type ServiceAccountImport, VERSION, readyCondition } from "../../common/api.ts";
import {
  GRANT_AUDIENCES_ANNOTATION,
  GRANT_FOR_ANNOTATION,
  GRANT_MAX_EXPIRATION_ANNOTATION,
  GRANT_POLICY_NAME,
  GRANT_SERVICE_ACCOUNT_ANNOTATION,
  importGrant,
  importGrantName,
  importerFor,
} from "../../common/grant.ts";
import { tokenClaims } from "../../common/import-secret.ts";
import { registrationSecretName } from "../../common/registration.ts";
import { applyAsAdmin, controllerKubeconfig, installController } from "../../harness/install.ts";
import { adminConfig, cluster, createPodReader, kubectl, statusOf, tokenConfig } from "../../harness/kube.ts";
import { Background, type RunResult, eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");
const admin1 = adminConfig(state, "cluster1");
const admin2 = adminConfig(state, "cluster2");
const core1 = admin1.makeApiClient(CoreV1Api);
const core2 = admin2.makeApiClient(CoreV1Api);
const rbac2 = admin2.makeApiClient(RbacAuthorizationV1Api);
const vap2 = admin2.makeApiClient(AdmissionregistrationV1Api);
const custom1 = admin1.makeApiClient(CustomObjectsApi);
const importer = importerFor("cluster1");

/** The remote namespaces, and whose service accounts live there. */
const SHARED = "tenancy";
const OTHER = "tenancy-other";
const A_SA = "team-a-sa";
const B_SA = "team-b-sa";
const B_SA_OTHER = "team-b-other";
/** The usernames of team-b's accounts: a token of either in team-a's namespace is the failure this file exists for. */
const TEAM_B_SUBS = [`system:serviceaccount:${SHARED}:${B_SA}`, `system:serviceaccount:${OTHER}:${B_SA_OTHER}`];
/** How long an edit may take to end not Ready (a reconcile, a remote call, backoff of at most a few seconds). */
const BOUND_MS = 30_000;

const outputs: RunResult[] = [];
let manager: Background | undefined;
let watchAbort: AbortController | undefined;
let watchStopping = false;
let watchRestarts = 0;
/** The last resourceVersion the watch saw: a watch that ends (client-node's inactivity timeout) resumes from it, missing nothing. */
let watchedVersion: string | undefined;
/** What the watch on team-a's namespace saw: every token (by its sub) that any Secret there held. */
const subsSeenInTeamA = new Set<string>();
let secretsSeenInTeamA = 0;
let watchError: unknown;

async function mcsa(...args: string[]): Promise<RunResult> {
  const result = await runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);
  outputs.push(result);
  return result;
}

async function getImport(namespace: string, name: string): Promise<ServiceAccountImport> {
  return (await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as ServiceAccountImport;
}

async function editSpec(namespace: string, name: string, change: (spec: ServiceAccountImport["spec"]) => void): Promise<void> {
  const sai = await getImport(namespace, name);
  change(sai.spec);
  await custom1.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: sai });
}

/** Waits until the import's Ready condition has this status and reason for its current spec. */
function until(namespace: string, name: string, status: "True" | "False", reason: string, timeoutMs = BOUND_MS): Promise<ServiceAccountImport> {
  return eventually(`import ${namespace}/${name} to be Ready=${status} (${reason})`, async () => {
    const sai = await getImport(namespace, name);
    const ready = readyCondition(sai);
    const current = ready?.observedGeneration === sai.metadata.generation;
    return current && ready?.status === status && ready.reason === reason ? sai : undefined;
  }, timeoutMs, 250);
}

/** The `sub` of every JWT a Secret holds (its token, and the one inside its kubeconfig). */
function subsOf(secret: V1Secret): string[] {
  const subs: string[] = [];
  for (const value of Object.values(secret.data ?? {})) {
    const text = Buffer.from(value, "base64").toString("utf8");
    for (const jwt of text.match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) ?? []) {
      const sub = tokenClaims(jwt)?.sub;
      if (typeof sub === "string") subs.push(sub);
    }
  }
  return subs;
}

function inspectTeamA(secret: V1Secret): void {
  secretsSeenInTeamA++;
  for (const sub of subsOf(secret)) subsSeenInTeamA.add(sub);
}

/** What the import's Secret holds now: the sub of its token. */
async function subInSecret(namespace: string, name: string): Promise<string | undefined> {
  const sai = await getImport(namespace, name);
  const secretName = sai.status?.secrets?.[0]?.name;
  if (!secretName) return undefined;
  return subsOf(await core1.readNamespacedSecret({ name: secretName, namespace }))[0];
}

/** A kubeconfig for cluster2 that authenticates as cluster1's importer identity (its registration's token). */
async function importerKubeconfig(): Promise<string> {
  const registration = await core1.readNamespacedSecret({ name: registrationSecretName("cluster2"), namespace: SYSTEM_NAMESPACE });
  const token = Buffer.from(registration.data!.token!, "base64").toString("utf8");
  const info = cluster(state, "cluster2");
  const dir = join(state.dir, "kubeconfigs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `tenancy-importer-${Date.now().toString(36)}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "cluster2", cluster: { server: info.server, "certificate-authority-data": Buffer.from(info.caPem).toString("base64") } }],
      users: [{ name: "importer", user: { token } }],
      contexts: [{ name: "cluster2", context: { cluster: "cluster2", user: "importer" } }],
      "current-context": "cluster2",
    }),
    { mode: 0o600 },
  );
  return file;
}

async function watchTeamA(): Promise<void> {
  watchAbort = await new Watch(admin1).watch(
    "/api/v1/namespaces/team-a/secrets",
    { resourceVersion: watchedVersion, allowWatchBookmarks: true },
    (phase, object: V1Secret) => {
      if (phase === "ERROR") {
        watchError = object; // e.g. 410 Gone: versions were missed, the test cannot vouch for them
        return;
      }
      if (object.metadata?.resourceVersion) watchedVersion = object.metadata.resourceVersion;
      if (phase === "ADDED" || phase === "MODIFIED") inspectTeamA(object);
    },
    () => {
      if (watchStopping || watchError !== undefined) return;
      watchRestarts++;
      watchTeamA().catch((error: unknown) => (watchError = error));
    },
  );
}

async function ensureNamespace(core: CoreV1Api, name: string): Promise<void> {
  if ((await statusOf(core.readNamespace({ name }))) === 404) await core.createNamespace({ body: { metadata: { name } } });
}

const importArgs = (namespace: string, name: string, remoteNamespace: string, sa: string, ...extra: string[]) => [
  "import", name, "--context", "cluster1", "-n", namespace, "--cluster", "cluster2",
  "--remote-namespace", remoteNamespace, "--service-account", sa, "--remote-context", "cluster2", ...extra,
]; // prettier-ignore

beforeAll(async () => {
  await installController(state, "cluster1");
  for (const ns of ["team-a", "team-b"]) await ensureNamespace(core1, ns);
  for (const ns of [SHARED, OTHER]) await ensureNamespace(core2, ns);
  await createPodReader(state, "cluster2", SHARED, A_SA);
  await createPodReader(state, "cluster2", SHARED, B_SA);
  await createPodReader(state, "cluster2", OTHER, B_SA_OTHER);
  // Every version of every Secret in team-a's namespace, from before the first import on.
  watchedVersion = (await core1.listNamespacedSecret({ namespace: "team-a" })).metadata?.resourceVersion;
  await watchTeamA();
  manager = new Background("manager/main.ts", ["--kubeconfig", await controllerKubeconfig(state, "cluster1"), "--cluster-check-interval", "1s", "--revoke-timeout", "15s"]);
  await manager.waitFor(/import controller started/);
  const boot = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
  expect(boot.stderr).toBe("");
  expect(boot.code).toBe(0);
});

afterAll(async () => {
  watchStopping = true;
  watchAbort?.abort();
  // Leave the clusters as found: imports removed (their grants revoked), cluster2 unregistered.
  for (const [ns, name] of [["team-a", "a"], ["team-a", "legacy"], ["team-a", "steal"], ["team-a", "ghost"], ["team-b", "b"], ["team-b", "b-other"]] as const) {
    await mcsa("remove", name, "--context", "cluster1", "-n", ns, "--force", "--timeout", "30s");
  }
  await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force");
  await manager?.stop();
  for (const ns of ["team-a", "team-b"]) await core1.deleteNamespace({ name: ns }).catch(() => undefined);
  for (const ns of [SHARED, OTHER]) await core2.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe("two tenants, one remote namespace: each import reaches exactly its own grant", () => {
  it("team-a and team-b each import their own account; the grants record what they allow; describe and check show it", { timeout: 120_000 }, async () => {
    for (const [ns, name, remoteNs, sa] of [["team-a", "a", SHARED, A_SA], ["team-b", "b", SHARED, B_SA], ["team-b", "b-other", OTHER, B_SA_OTHER]] as const) {
      const result = await mcsa(...importArgs(ns, name, remoteNs, sa, "--wait", "--timeout", "30s"));
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(await subInSecret(ns, name)).toBe(`system:serviceaccount:${remoteNs}:${sa}`);
    }
    const anchor = await core2.readNamespacedSecret({ name: importGrantName(importer, "team-a", "a"), namespace: SHARED });
    expect(anchor.metadata?.annotations).toMatchObject({
      [GRANT_SERVICE_ACCOUNT_ANNOTATION]: A_SA,
      [GRANT_AUDIENCES_ANNOTATION]: "",
      [GRANT_MAX_EXPIRATION_ANNOTATION]: "86400",
    });
    const sai = await until("team-a", "a", "True", "TokenIssued");
    expect(sai.status?.grant).toEqual({ serviceAccount: A_SA, maxExpirationSeconds: 86400 });
    const described = await mcsa("describe", "a", "--context", "cluster1", "-n", "team-a");
    expect(described.stdout).toMatch(/^Grant Allows: +service account team-a-sa, audiences the remote API server's own, tokens of at most 24h$/m);
    const checked = await mcsa("check", "a", "--context", "cluster1", "-n", "team-a");
    expect(checked.stderr).toBe("");
    expect(checked.stdout).toContain(`authenticates "a" as system:serviceaccount:${SHARED}:${A_SA}`);
    expect(checked.stdout).toMatch(/^its grant allows: service account team-a-sa, audiences the remote API server's own, tokens of at most 24h$/m);
    // The policy is cluster2's, installed once.
    expect((await vap2.readValidatingAdmissionPolicy({ name: GRANT_POLICY_NAME })).spec?.paramKind).toEqual({ apiVersion: "v1", kind: "Secret" });
  });

  async function restoreA(): Promise<void> {
    await editSpec("team-a", "a", (spec) => {
      spec.namespace = SHARED;
      spec.name = A_SA;
      delete spec.audiences;
      delete spec.expirationSeconds;
    });
    await until("team-a", "a", "True", "TokenIssued");
    expect(await subInSecret("team-a", "a")).toBe(`system:serviceaccount:${SHARED}:${A_SA}`);
  }

  it("(a) team-a edits spec.name to team-b's account: NotGranted, the grant names its one account", async () => {
    await editSpec("team-a", "a", (spec) => (spec.name = B_SA));
    const sai = await until("team-a", "a", "False", "NotGranted");
    expect(readyCondition(sai)?.message).toMatch(
      new RegExp(`grant ${importGrantName(importer, "team-a", "a").replace(/\./g, "\\.")} allows tokens of service account ${A_SA} only, not ${B_SA}; grant it with: kubectl mcsa import a -n team-a .*--service-account ${B_SA} --remote-context`),
    );
    expect(await subInSecret("team-a", "a")).toBe(`system:serviceaccount:${SHARED}:${A_SA}`);
    await restoreA();
  });

  it("(b) team-a edits spec.namespace to where team-b has a grant: NotGranted, no grant of this import there", async () => {
    await editSpec("team-a", "a", (spec) => {
      spec.namespace = OTHER;
      spec.name = B_SA_OTHER;
    });
    const sai = await until("team-a", "a", "False", "NotGranted");
    expect(readyCondition(sai)?.message).toMatch(new RegExp(`the import has no grant in namespace ${OTHER}`));
    await restoreA();
  });

  it("(c) team-a edits spec.audiences to one not granted: GrantExceeded, the grant allows the API server's own", async () => {
    await editSpec("team-a", "a", (spec) => (spec.audiences = ["vault"]));
    const sai = await until("team-a", "a", "False", "GrantExceeded");
    expect(readyCondition(sai)?.message).toMatch(/allows the audiences \S+ \(the API server's own\) only, not vault; lower spec.expirationSeconds or spec.audiences .* --audience vault --remote-context/);
    await restoreA();
  });

  it("(d) a fresh import in team-a naming team-b's account: NotGranted, and deleting it lifts its finalizer at once", async () => {
    const yaml = JSON.stringify({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "ServiceAccountImport",
      metadata: { name: "steal", namespace: "team-a" },
      spec: { clusterName: "cluster2", namespace: SHARED, name: B_SA },
    });
    const file = join(state.dir, "steal.json");
    writeFileSync(file, yaml);
    const applied = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "apply", "-f", file]);
    expect(applied.stderr).toBe("");
    const sai = await until("team-a", "steal", "False", "NotGranted");
    expect(readyCondition(sai)?.message).toMatch(new RegExp(`the import has no grant in namespace ${SHARED}.*grant it with: kubectl mcsa import steal -n team-a`));
    expect(sai.status?.secrets).toBeUndefined();
    // Deleting it revokes (its grant never existed: 403/404) and goes on at once.
    await custom1.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: "team-a", name: "steal" });
    await eventually("the import without a grant to be deleted", async () => ((await statusOf(getImport("team-a", "steal"))) === 404 ? true : undefined), BOUND_MS);
  });

  it("(e) team-a asks for a longer lifetime than its grant: GrantExceeded; once the remote admin widens the grant, Ready", async () => {
    await editSpec("team-a", "a", (spec) => (spec.expirationSeconds = 48 * 3600));
    const sai = await until("team-a", "a", "False", "GrantExceeded");
    expect(readyCondition(sai)?.message).toMatch(/allows tokens of at most 86400s, not 172800s; lower spec.expirationSeconds .*--ttl 48h --remote-context/);
    // What the message says to run, as the remote admin: the grant now allows 48 h.
    const widened = await mcsa(...importArgs("team-a", "a", SHARED, A_SA, "--ttl", "48h"));
    expect(widened.stderr).toBe("");
    expect(widened.stdout).toContain("unchanged");
    const ready = await until("team-a", "a", "True", "TokenIssued");
    expect(ready.status?.grant).toEqual({ serviceAccount: A_SA, maxExpirationSeconds: 48 * 3600 });
    await restoreA();
    // And back to a day, as the next test expects.
    const narrowed = await mcsa(...importArgs("team-a", "a", SHARED, A_SA));
    expect(narrowed.code, narrowed.stderr).toBe(0);
    const anchor = await core2.readNamespacedSecret({ name: importGrantName(importer, "team-a", "a"), namespace: SHARED });
    expect(anchor.metadata?.annotations?.[GRANT_MAX_EXPIRATION_ANNOTATION]).toBe("86400");
  });

  it("cluster2 enforces it without our controller: the importer identity, with kubectl, cannot get team-b's token bound to team-a's grant", async () => {
    const kubeconfig = await importerKubeconfig();
    const anchorA = importGrantName(importer, "team-a", "a");
    const create = (sa: string, ...extra: string[]) => kubectl(state, ["--kubeconfig", kubeconfig, "create", "token", sa, "-n", SHARED, ...extra]);
    // RBAC alone would allow it (team-b's grant is this identity's too); the policy refuses it.
    const stolen = await create(B_SA, "--bound-object-kind", "Secret", "--bound-object-name", anchorA);
    expect(stolen.code).not.toBe(0);
    expect(stolen.stdout === "", "a token was printed").toBe(true);
    expect(stolen.stderr).toMatch(new RegExp(`ValidatingAdmissionPolicy '${GRANT_POLICY_NAME.replace(/\./g, "\\.")}'.*denied request: grant \\S+ allows tokens of service account ${A_SA} only, not ${B_SA}`));
    const unbound = await create(A_SA);
    expect(unbound.stdout === "", "a token was printed").toBe(true);
    expect(unbound.stderr).toMatch(/must be bound to the anchor Secret of one of its grants \(mcsa-importer-cluster1\.<namespace>\.<import>\), not to nothing/);
    const tooLong = await create(A_SA, "--bound-object-kind", "Secret", "--bound-object-name", anchorA, "--duration", "48h");
    expect(tooLong.stdout === "", "a token was printed").toBe(true);
    expect(tooLong.stderr).toMatch(/allows tokens of at most 86400s, not 172800s/);
    // What it is granted it still gets: its own renewal, team-a's account bound to team-a's grant.
    const own = await kubectl(state, ["--kubeconfig", kubeconfig, "create", "token", importer.serviceAccount, "-n", SYSTEM_NAMESPACE, "--bound-object-kind", "Secret", "--bound-object-name", importer.serviceAccount, "--duration", "24h"]);
    expect(own.stderr).toBe("");
    expect(own.code).toBe(0);
    const granted = await create(A_SA, "--bound-object-kind", "Secret", "--bound-object-name", anchorA);
    expect(granted.stderr).toBe("");
    expect(tokenClaims(granted.stdout.trim())?.sub).toBe(`system:serviceaccount:${SHARED}:${A_SA}`);
  });

  it("no Secret in team-a's namespace ever held a token of team-b's accounts", async () => {
    expect(watchError).toBeUndefined();
    console.error(`[tenancy] the watch on team-a's Secrets saw ${secretsSeenInTeamA} versions (resumed ${watchRestarts} times); subs: ${[...subsSeenInTeamA].join(", ")}`);
    // What the watch saw, and what is there now.
    for (const secret of (await core1.listNamespacedSecret({ namespace: "team-a" })).items) inspectTeamA(secret);
    expect(secretsSeenInTeamA).toBeGreaterThan(0);
    expect(subsSeenInTeamA).toContain(`system:serviceaccount:${SHARED}:${A_SA}`);
    for (const sub of TEAM_B_SUBS) expect([...subsSeenInTeamA]).not.toContain(sub);
  });
});

describe("revocation always happens", () => {
  it("deleting an import whose status never recorded a token still revokes its grant: a token minted then lost stops working", async () => {
    // A grant that exists, and an import that asks more than it allows: no token is ever recorded.
    const grant = importGrant({ importer, localNamespace: "team-a", importName: "ghost", remoteNamespace: SHARED, serviceAccount: A_SA });
    await applyAsAdmin(state, "cluster2", [grant.anchor, grant.role, grant.roleBinding]);
    await custom1.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: "team-a",
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ServiceAccountImport", metadata: { name: "ghost" }, spec: { clusterName: "cluster2", namespace: SHARED, name: A_SA, expirationSeconds: 48 * 3600 } },
    });
    const refused = await until("team-a", "ghost", "False", "GrantExceeded");
    expect(refused.status?.issuedAt).toBeUndefined();
    // The token a crash between minting and recording would lose: minted under the grant, recorded nowhere.
    const lost = await kubectl(state, ["--kubeconfig", await importerKubeconfig(), "create", "token", A_SA, "-n", SHARED, "--bound-object-kind", "Secret", "--bound-object-name", grant.anchor.metadata!.name!]);
    expect(lost.stderr).toBe("");
    const token = lost.stdout.trim();
    const asLost = () => statusOf(tokenConfig(cluster(state, "cluster2"), token).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: SHARED }));
    expect(await asLost()).toBe(200);
    await custom1.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: "team-a", name: "ghost" });
    await eventually("the import to be deleted", async () => ((await statusOf(getImport("team-a", "ghost"))) === 404 ? true : undefined), BOUND_MS);
    expect(await statusOf(core2.readNamespacedSecret({ name: grant.anchor.metadata!.name!, namespace: SHARED }))).toBe(404);
    await eventually("the lost token to be refused", async () => ((await asLost()) === 401 ? true : undefined), BOUND_MS);
  });
});

describe("upgrade: grants made before grants were enforced", () => {
  it("an old-shape grant keeps minting; re-running bootstrap records it before enforcing, and the import stays Ready", async () => {
    // cluster2 as an older kubectl mcsa left it: no policy, anchors that record nothing.
    await vap2.deleteValidatingAdmissionPolicyBinding({ name: GRANT_POLICY_NAME });
    await vap2.deleteValidatingAdmissionPolicy({ name: GRANT_POLICY_NAME });
    const old = importGrant({ importer, localNamespace: "team-a", importName: "legacy", remoteNamespace: SHARED, serviceAccount: A_SA });
    const annotations = old.anchor.metadata!.annotations!;
    old.anchor.metadata!.annotations = { [GRANT_FOR_ANNOTATION]: annotations[GRANT_FOR_ANNOTATION]! };
    old.role.rules = old.role.rules!.map((r) => (r.resources?.includes("secrets") ? { ...r, verbs: ["delete"] } : r));
    // And one of another importing cluster (the policy applies to every importer of cluster2).
    const elsewhere = importGrant({ importer: { serviceAccount: "mcsa-importer-elsewhere", namespace: SYSTEM_NAMESPACE }, localNamespace: "x", importName: "y", remoteNamespace: SHARED, serviceAccount: B_SA });
    elsewhere.anchor.metadata!.annotations = { [GRANT_FOR_ANNOTATION]: "x/y" };
    await applyAsAdmin(state, "cluster2", [old.anchor, old.role, old.roleBinding, elsewhere.anchor, elsewhere.role, elsewhere.roleBinding]);
    await custom1.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: "team-a",
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ServiceAccountImport", metadata: { name: "legacy" }, spec: { clusterName: "cluster2", namespace: SHARED, name: A_SA, expirationSeconds: 7200 } },
    });
    const before = await until("team-a", "legacy", "True", "TokenIssued");
    // The old Role may not read its anchor: nothing recorded to show.
    expect(before.status?.grant).toBeUndefined();

    const boot = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(boot.stderr).toBe("");
    expect(boot.code).toBe(0);
    expect(boot.stdout).toMatch(/Recorded what 1 existing grant\(s\) allow\. Recorded 1 existing grant\(s\) of other importing clusters with a plain import's limits/);
    const foreign = await core2.readNamespacedSecret({ name: elsewhere.anchor.metadata!.name!, namespace: SHARED });
    expect(foreign.metadata?.annotations).toMatchObject({ [GRANT_SERVICE_ACCOUNT_ANNOTATION]: B_SA, [GRANT_AUDIENCES_ANNOTATION]: "", [GRANT_MAX_EXPIRATION_ANNOTATION]: "86400" });
    await core2.deleteNamespacedSecret({ name: elsewhere.anchor.metadata!.name!, namespace: SHARED });
    const anchor = await core2.readNamespacedSecret({ name: old.anchor.metadata!.name!, namespace: SHARED });
    expect(anchor.metadata?.annotations).toMatchObject({ [GRANT_SERVICE_ACCOUNT_ANNOTATION]: A_SA, [GRANT_AUDIENCES_ANNOTATION]: "", [GRANT_MAX_EXPIRATION_ANNOTATION]: "86400" });
    const role = await rbac2.readNamespacedRole({ name: old.role.metadata!.name!, namespace: SHARED });
    expect(role.rules?.some((r) => r.resources?.includes("secrets") && r.verbs?.includes("get") && r.resourceNames?.[0] === old.anchor.metadata!.name)).toBe(true);
    expect(await statusOf(vap2.readValidatingAdmissionPolicyBinding({ name: GRANT_POLICY_NAME }))).toBe(200);

    // A new token under the policy: still minted, and now the grant shows.
    const rotated = await mcsa("rotate", "legacy", "--context", "cluster1", "-n", "team-a", "--timeout", "30s");
    expect(rotated.stderr).toBe("");
    const after = await getImport("team-a", "legacy");
    expect(after.metadata.annotations?.[ROTATE_ANNOTATION]).toBe(after.status?.rotationRequest);
    expect(readyCondition(after)).toMatchObject({ status: "True", reason: "TokenIssued" });
    expect(after.status?.grant).toEqual({ serviceAccount: A_SA, maxExpirationSeconds: 86400 });
    // The other imports were not disturbed by the policy's return.
    await until("team-b", "b", "True", "TokenIssued");
  });
});

describe("leaving", () => {
  it("never prints or logs a token", () => {
    const everything = [...outputs.map((o) => o.stdout + o.stderr), manager?.text ?? ""].join("\n");
    expect(everything).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });

  it("unbootstrap of the last importer removes cluster2's grant policy", { timeout: 120_000 }, async () => {
    for (const [ns, name] of [["team-a", "a"], ["team-a", "legacy"], ["team-b", "b"], ["team-b", "b-other"]] as const) {
      const removed = await mcsa("remove", name, "--context", "cluster1", "-n", ns, "--force", "--timeout", "30s");
      expect(removed.code, removed.stderr).toBe(0);
    }
    const result = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/the grant policy grants\.multicluster\.admiralty\.io( and the namespace multicluster-service-account)? removed too/);
    expect(await statusOf(vap2.readValidatingAdmissionPolicy({ name: GRANT_POLICY_NAME }))).toBe(404);
  });
});
