// Least privilege at home (issue 11, deliverable 4), on the real clusters: the manager's and the
// webhook's effective rights as `kubectl auth can-i --list` shows them, then the API server itself
// refusing what those rights must not reach. RBAC cannot name Secrets by label or owner, nor
// Secrets that do not exist yet, so the manager's create/update/patch/delete are cluster-wide in
// RBAC and confined by a ValidatingAdmissionPolicy (mcsa-secrets) to the import Secrets it owns;
// it has no get, so it reads its Secrets with a no-op patch that the policy sees. The webhook's
// API calls are made as mcsa-webhook (impersonated), whose only Secret verb, delete, is refused
// by the same policy and serves only to ask whether a Secret exists.
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  type V1Secret,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, IMPORT_ANNOTATION, IMPORT_LABEL, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, PLURAL, SYSTEM_NAMESPACE, type ServiceAccountImport, VERSION } from "../../common/api.ts";
import { importSecretSkeleton } from "../../common/import-secret.ts";
import { CONTROLLER_SERVICE_ACCOUNT, SECRETS_POLICY, WEBHOOK_SECRET, WEBHOOK_SERVICE_ACCOUNT, serviceAccountUser } from "../../common/manifests.ts";
import { registrationSecretName } from "../../common/registration.ts";
import { controllerKubeconfig, installController, serviceAccountKubeconfig, startLocalManager } from "../../harness/install.ts";
import { type AuditEvent, auditEvents } from "../../harness/audit.ts";
import { adminConfig, cluster, createPodReader, kubectl, statusOf, uniqueName } from "../../harness/kube.ts";
import { type Background, type RunResult, eventually, runNode } from "../../harness/run.ts";
import { NO_SUCH_UID } from "../../webhook/lookup.ts";

const state = inject("clusters");
const admin1 = adminConfig(state, "cluster1");
const core1 = admin1.makeApiClient(CoreV1Api);
const custom1 = admin1.makeApiClient(CustomObjectsApi);
const tmp = mkdtempSync(join(tmpdir(), "mcsa-home-rights-"));
const namespace = uniqueName("mcsa-home");
const other = uniqueName("mcsa-home-other");
const remoteSA = uniqueName("home-reader");
const IMPORT = "cluster2-home-reader";
const MANAGER = serviceAccountUser(CONTROLLER_SERVICE_ACCOUNT);
const WEBHOOK = serviceAccountUser(WEBHOOK_SERVICE_ACCOUNT);
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
let manager: Background | undefined;
let webhookUrl: string;
let webhookCa: string;
let asManager: CoreV1Api;
let asWebhook: CoreV1Api;
let bootstrapped = false;
const started = new Date(Date.now() - 1000);

const mcsa = (...args: string[]): Promise<RunResult> => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);
const fromFile = (file: string) => {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
};

/** The API server's status and message of a call, or 200 and "" if it succeeded. */
async function answer(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
    return { code: 200, message: "" };
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body = (typeof error.body === "string" ? JSON.parse(error.body) : error.body) as { message?: string };
    return { code: error.code, message: body.message ?? "" };
  }
}

const refusedByPolicy = (message: string) => `ValidatingAdmissionPolicy '${SECRETS_POLICY}' with binding '${SECRETS_POLICY}' denied request: ${message}`;
const MANAGER_IMPORT_ONLY = "the manager may only create, change or delete import Secrets";

interface Rule {
  resource: string;
  names: string[];
  verbs: string[];
}

/** `kubectl auth can-i --list` as `user` in `ns`, its table parsed into rows. */
async function rightsOf(user: string, ns: string): Promise<Rule[]> {
  const result = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "auth", "can-i", "--list", "--as", user, "-n", ns]);
  expect(result.code, result.stderr).toBe(0);
  const rows: Rule[] = [];
  for (const line of result.stdout.split("\n").slice(1)) {
    const m = /^(\S+)?\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s*$/.exec(line);
    if (m === null || m[1] === undefined) continue; // non-resource URLs
    const words = (s: string) => s.split(/\s+/).filter((w) => w !== "");
    rows.push({ resource: m[1], names: words(m[3]!), verbs: words(m[4]!) });
  }
  expect(rows.length, result.stdout).toBeGreaterThan(0);
  return rows;
}

const verbsOn = (rows: Rule[], resource: string) => [...new Set(rows.filter((r) => r.resource === resource).flatMap((r) => r.verbs))].sort();

/** The webhook's answer to an AdmissionReview of a pod that names `imports`, posted as the API server would. */
function review(imports: string): Promise<{ allowed: boolean; status?: { code: number; message: string }; patch?: string }> {
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: uniqueName("uid"),
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace,
      operation: "CREATE",
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "app", namespace, annotations: { [IMPORT_ANNOTATION]: imports } },
        spec: { containers: [{ name: "app", image: "app:1" }] },
      },
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(webhookUrl, { method: "POST", ca: webhookCa, headers: { "content-type": "application/json" }, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        try {
          resolve((JSON.parse(text) as { response: { allowed: boolean; status?: { code: number; message: string }; patch?: string } }).response);
        } catch {
          reject(new Error(`the webhook answered ${res.statusCode}: ${text}`));
        }
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("the webhook did not answer within 10 s")));
    req.end(body);
  });
}

async function getImport(): Promise<ServiceAccountImport> {
  return (await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: IMPORT })) as ServiceAccountImport;
}

beforeAll(async () => {
  await installController(state, "cluster1");
  const caFile = join(tmp, "webhook-ca.pem");
  ({ manager, webhookUrl } = await startLocalManager(state, "cluster1", caFile));
  webhookCa = readFileSync(caFile, "utf8");
  asManager = fromFile(await controllerKubeconfig(state, "cluster1")).makeApiClient(CoreV1Api);
  asWebhook = fromFile(await serviceAccountKubeconfig(state, "cluster1", SYSTEM_NAMESPACE, WEBHOOK_SERVICE_ACCOUNT)).makeApiClient(CoreV1Api);
  await core1.createNamespace({ body: { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
  await core1.createNamespace({ body: { metadata: { name: other } } });
  await core1.createNamespacedSecret({ namespace: other, body: { metadata: { name: "foreign" }, stringData: { password: "hunter2" } } });

  // A real import, made ready by the controller under the policy: proof that it reads and writes its own Secret.
  const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  bootstrapped = true;
  await createPodReader(state, "cluster2", "default", remoteSA);
  const imported = await mcsa(
    "import", IMPORT, "--context", "cluster1", "-n", namespace, "--cluster", "cluster2",
    "--remote-namespace", "default", "--service-account", remoteSA, "--remote-context", "cluster2", "--wait", "--timeout", "45s",
  ); // prettier-ignore
  expect(imported.code, `${imported.stdout}${imported.stderr}\n${manager.text.slice(-3000)}`).toBe(0);

  // The policy is loaded by the API server through an informer: wait until it refuses.
  await eventually(
    "the admission policy to confine the manager",
    async () => ((await answer(asManager.patchNamespacedSecret({ name: "foreign", namespace: other, body: {} }, MERGE))).code === 403 ? true : undefined),
    30_000,
    250,
  );
}, 240_000);

afterAll(async () => {
  // The controller revokes and releases the import before it stops.
  await custom1.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: IMPORT }).catch(() => undefined);
  await eventually("the import to be gone", async () => ((await statusOf(getImport())) === 404 ? true : undefined), 30_000).catch(() => undefined);
  if (bootstrapped) await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force");
  await manager?.stop();
  for (const ns of [namespace, other]) await core1.deleteNamespace({ name: ns }).catch(() => undefined);
  const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
  await core2.deleteNamespacedServiceAccount({ name: remoteSA, namespace: "default" }).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe("the manager's and the webhook's effective rights (kubectl auth can-i --list)", () => {
  it("the manager: no get, list or watch of Secrets outside its namespace; its create/update/patch/delete are confined by admission", async () => {
    for (const ns of [namespace, other, "default", "kube-system"]) {
      const rows = await rightsOf(MANAGER, ns);
      expect(rows.some((r) => r.resource === "*" || r.verbs.includes("*")), ns).toBe(false);
      // RBAC cannot name Secrets by owner or label, nor the ones it is about to create: these verbs
      // are cluster-wide in RBAC and the policy mcsa-secrets lets them through for import Secrets
      // only (shown below). No read verb: reading goes through a no-op patch that the policy sees.
      expect(verbsOn(rows, "secrets"), ns).toEqual(["create", "delete", "patch", "update"]);
      expect(rows.filter((r) => r.resource === "secrets").every((r) => r.names.length === 0)).toBe(true);
    }
    // In its own namespace: its cluster registrations (list, watch; patch to renew their tokens).
    const home = await rightsOf(MANAGER, SYSTEM_NAMESPACE);
    expect(verbsOn(home, "secrets")).toEqual(["create", "delete", "list", "patch", "update", "watch"]);
    expect(home).toContainEqual({ resource: "serviceaccounts", names: [WEBHOOK_SERVICE_ACCOUNT], verbs: ["impersonate"] });
  });

  it("the webhook: no Secret verb but delete, which admission refuses; nothing else but reads", async () => {
    for (const ns of [namespace, other, SYSTEM_NAMESPACE]) {
      const rows = await rightsOf(WEBHOOK, ns);
      expect(verbsOn(rows, "secrets"), ns).toEqual(["delete"]);
      const writes = rows
        .filter((r) => !/^self\w+reviews\./.test(r.resource)) // what every authenticated user may ask about itself
        .filter((r) => r.verbs.some((v) => !["get", "list", "watch"].includes(v)));
      expect(writes.map((r) => `${r.resource} ${r.verbs.join(",")}`), ns).toEqual(["secrets delete"]);
    }
  });
});

describe("the API server refuses the manager what is not its own", () => {
  it("cannot read a foreign Secret in another namespace: get and list by RBAC, the no-op patch by the policy", async () => {
    expect((await answer(asManager.readNamespacedSecret({ name: "foreign", namespace: other }))).code).toBe(403);
    expect((await answer(asManager.listNamespacedSecret({ namespace: other }))).code).toBe(403);
    expect((await answer(asManager.listSecretForAllNamespaces())).code).toBe(403);
    const read = await answer(asManager.patchNamespacedSecret({ name: "foreign", namespace: other, body: {} }, MERGE));
    expect(read.code).toBe(403);
    expect(read.message).toContain(refusedByPolicy(MANAGER_IMPORT_ONLY));
  });

  it("cannot change or delete a foreign Secret", async () => {
    const before = await core1.readNamespacedSecret({ name: "foreign", namespace: other });
    const patched = await answer(asManager.patchNamespacedSecret({ name: "foreign", namespace: other, body: { data: { password: Buffer.from("x").toString("base64") } } }, MERGE));
    expect(patched.code).toBe(403);
    expect(patched.message).toContain(MANAGER_IMPORT_ONLY);
    const replaced = await answer(asManager.replaceNamespacedSecret({ name: "foreign", namespace: other, body: { ...before, stringData: { password: "x" } } }));
    expect(replaced.code).toBe(403);
    // Dressing it up as an import Secret in the same write does not help: the old object must qualify too.
    const disguised = await answer(
      asManager.patchNamespacedSecret(
        { name: "foreign", namespace: other, body: { metadata: { labels: { [IMPORT_LABEL]: "x" }, ownerReferences: [{ apiVersion: `${GROUP}/${VERSION}`, kind: "ServiceAccountImport", name: "x", uid: NO_SUCH_UID, controller: true }] } } },
        MERGE,
      ),
    );
    expect(disguised.code).toBe(403);
    const deleted = await answer(asManager.deleteNamespacedSecret({ name: "foreign", namespace: other }));
    expect(deleted.code).toBe(403);
    expect(deleted.message).toContain(MANAGER_IMPORT_ONLY);
    const after = await core1.readNamespacedSecret({ name: "foreign", namespace: other });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  });

  it("cannot create a Secret that is not an import Secret: no owner, no label, or a type the token controller would fill", async () => {
    const sai = await getImport();
    const skeleton = importSecretSkeleton(sai);
    const attempts: [string, V1Secret][] = [
      ["no owner", { ...skeleton, metadata: { ...skeleton.metadata, name: uniqueName("no-owner"), ownerReferences: undefined } }],
      ["no label", { ...skeleton, metadata: { ...skeleton.metadata, name: uniqueName("no-label"), labels: undefined } }],
      ["owned by something else", { ...skeleton, metadata: { ...skeleton.metadata, name: uniqueName("other-owner"), ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: IMPORT, uid: sai.metadata.uid! }] } }],
      [
        "a service-account token Secret",
        { ...skeleton, type: "kubernetes.io/service-account-token", metadata: { ...skeleton.metadata, name: uniqueName("sa-token"), annotations: { "kubernetes.io/service-account.name": "default" } } },
      ],
    ];
    for (const [what, body] of attempts) {
      const created = await answer(asManager.createNamespacedSecret({ namespace, body }));
      expect(created.code, what).toBe(403);
      expect(created.message, what).toContain(MANAGER_IMPORT_ONLY);
    }
    // Nor anything in its own namespace: there it may only update cluster registrations.
    const home = await answer(asManager.createNamespacedSecret({ namespace: SYSTEM_NAMESPACE, body: { ...skeleton, metadata: { ...skeleton.metadata, namespace: SYSTEM_NAMESPACE } } }));
    expect(home.code).toBe(403);
    expect(home.message).toContain(`in ${SYSTEM_NAMESPACE}, the manager may only update cluster registrations`);
    // Such as the webhook's serving Secret (a stand-in: this file runs the webhook out of cluster).
    const tlsName = uniqueName(WEBHOOK_SECRET);
    await core1.createNamespacedSecret({ namespace: SYSTEM_NAMESPACE, body: { metadata: { name: tlsName }, stringData: { "ca.key": "key" } } });
    try {
      const tls = await answer(asManager.patchNamespacedSecret({ name: tlsName, namespace: SYSTEM_NAMESPACE, body: { data: { "ca.key": "" } } }, MERGE));
      expect(tls.code).toBe(403);
      expect(tls.message).toContain(`in ${SYSTEM_NAMESPACE}, the manager may only update cluster registrations`);
      expect((await answer(asManager.deleteNamespacedSecret({ name: tlsName, namespace: SYSTEM_NAMESPACE }))).code).toBe(403);
    } finally {
      await core1.deleteNamespacedSecret({ name: tlsName, namespace: SYSTEM_NAMESPACE });
    }
    const unregister = await answer(asManager.deleteNamespacedSecret({ name: registrationSecretName("cluster2"), namespace: SYSTEM_NAMESPACE }));
    expect(unregister.code).toBe(403);
  });

  it("reads, changes and deletes its own import Secret; the no-op patch that reads it writes nothing", async () => {
    const sai = await getImport();
    const name = sai.status!.secrets![0]!.name;
    const before = await core1.readNamespacedSecret({ name, namespace });
    const read = await asManager.patchNamespacedSecret({ name, namespace, body: {} }, MERGE);
    expect(read.data?.token).toBe(before.data?.token);
    expect(read.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    const after = await core1.readNamespacedSecret({ name, namespace });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.metadata?.managedFields).toEqual(before.metadata?.managedFields);

    // An update of its own Secret goes through (the same data back: nothing changes for the app).
    expect((await answer(asManager.replaceNamespacedSecret({ name, namespace, body: read }))).code).toBe(200);

    // Deleting it works; the read-only webhook then refuses pods that would mount it, until the controller restores it.
    expect((await answer(asManager.deleteNamespacedSecret({ name, namespace }))).code).toBe(200);
    const refused = await review(IMPORT);
    expect(refused.allowed).toBe(false);
    expect(refused.status?.message).toContain(`its Secret "${name}" is missing`);
    await eventually("the controller to restore its Secret", async () => ((await statusOf(core1.readNamespacedSecret({ name, namespace }))) === 200 ? true : undefined), 45_000, 500);
    const admitted = await review(IMPORT);
    expect(admitted.allowed, JSON.stringify(admitted.status)).toBe(true);
    expect(admitted.patch).toBeDefined();
  });
});

describe("the API server refuses the webhook any Secret write", () => {
  it("cannot read, change or delete any Secret, its import's included; it can only learn whether one exists", async () => {
    const name = (await getImport()).status!.secrets![0]!.name;
    expect((await answer(asWebhook.readNamespacedSecret({ name, namespace }))).code).toBe(403);
    expect((await answer(asWebhook.patchNamespacedSecret({ name, namespace, body: {} }, MERGE))).code).toBe(403);
    expect((await answer(asWebhook.createNamespacedSecret({ namespace, body: { metadata: { name: "webhook-was-here" } } }))).code).toBe(403);
    const deleted = await answer(asWebhook.deleteNamespacedSecret({ name, namespace }));
    expect(deleted.code).toBe(403);
    expect(deleted.message).toContain(refusedByPolicy("the webhook's identity is read-only: it may not write Secrets"));
    // The existence question (webhook/lookup.ts): a uid precondition no object meets is checked before admission.
    const probe = (secret: string, ns: string) => answer(asWebhook.deleteNamespacedSecret({ name: secret, namespace: ns, dryRun: "All", body: { preconditions: { uid: NO_SUCH_UID } } }));
    expect((await probe(name, namespace)).code).toBe(409);
    expect((await probe("no-such-secret", namespace)).code).toBe(404);
    expect((await statusOf(core1.readNamespacedSecret({ name, namespace })))).toBe(200);
  });

  it("the running webhook's calls really are made as mcsa-webhook (the API server's audit log), and it logged no failure", async () => {
    const name = (await getImport()).status!.secrets![0]!.name;
    const events = (await auditEvents(cluster(state, "cluster1"), started)) as (AuditEvent & { impersonatedUser?: { username?: string } })[];
    // The existence checks of the reviews above: the manager's credential, impersonating the webhook; answered before admission.
    // (The test's own calls above authenticate as the webhook directly; the process's carry the manager's credential.)
    const probes = events.filter(
      (e) => e.verb === "delete" && e.requestURI.startsWith(`/api/v1/namespaces/${namespace}/secrets/${name}?`) && e.requestURI.includes("dryRun=All") && e.user.username === MANAGER,
    );
    expect(probes.length).toBeGreaterThanOrEqual(2);
    for (const e of probes) {
      expect(e.impersonatedUser?.username).toBe(WEBHOOK);
      expect([404, 409]).toContain(e.responseStatus?.code);
    }
    // Every read of a Secret outside its namespace with the manager's credential (the test's own tries above) was refused.
    const reads = events.filter(
      (e) => e.user.username === MANAGER && ["get", "list", "watch"].includes(e.verb) && /\/secrets(\/|\?|$)/.test(e.requestURI) && !e.requestURI.startsWith(`/api/v1/namespaces/${SYSTEM_NAMESPACE}/`),
    );
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.filter((e) => e.responseStatus?.code !== 403).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`)).toEqual([]);
    // (Other files may leave imports whose status names Secrets that are not import Secrets: the controller may not read those.)
    expect(manager!.text.split("\n").filter((l) => /"level":"(warn|error)"/.test(l) && l.includes('"component":"mcsa-webhook"'))).toEqual([]);
    expect(manager!.running).toBe(true);
  });
});
