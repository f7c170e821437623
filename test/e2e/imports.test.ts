// Imports end to end: bootstrap cluster2 -> cluster1, import pod-lister, and the controller (run
// as the service account install creates) keeps a short-lived, bound, revocable token fresh.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, PLURAL, SYSTEM_NAMESPACE, type ServiceAccountImport, VERSION, readyCondition } from "../../common/api.ts";
import { IMPORTER_CLUSTER_LABEL, importGrant, importerFor } from "../../common/grant.ts";
import { parseImportSecret } from "../../common/import-secret.ts";
import { registrationSecretName } from "../../common/registration.ts";
import { restartApiserver, stopApiserver } from "../../harness/cluster.ts";
import { applyAsAdmin, controllerKubeconfig, installController, serviceAccountKubeconfig } from "../../harness/install.ts";
import { adminConfig, cluster, createPodReader, kubectl, statusOf, tokenConfig } from "../../harness/kube.ts";
import { Background, type RunResult, eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");
const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const rbac2 = adminConfig(state, "cluster2").makeApiClient(RbacAuthorizationV1Api);
const custom1 = adminConfig(state, "cluster1").makeApiClient(CustomObjectsApi);
const NAME = "cluster2-default-pod-lister";
const outputs: RunResult[] = [];
const tokensSeen = new Set<string>();
const tokensOf = new Map<string, Set<string>>();
let manager: Background;

async function mcsa(...args: string[]): Promise<RunResult> {
  const result = await runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);
  outputs.push(result);
  return result;
}

async function getImport(name: string, namespace = "default"): Promise<ServiceAccountImport> {
  return (await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as ServiceAccountImport;
}

async function importSecret(name: string) {
  const sai = await getImport(name);
  const secret = await core1.readNamespacedSecret({ name: sai.status!.secrets![0]!.name, namespace: "default" });
  const contents = parseImportSecret(secret.data, { encoding: "base64" });
  tokensSeen.add(contents.token);
  tokensOf.set(name, (tokensOf.get(name) ?? new Set()).add(contents.token));
  return { sai, secret, contents };
}

function readyReason(name: string, reason: string, timeoutMs = 30_000) {
  return eventually(`import ${name} to report ${reason}`, async () => {
    const sai = await getImport(name);
    return readyCondition(sai)?.reason === reason ? sai : undefined;
  }, timeoutMs);
}

const createPodLister = (name: string, verbs?: string[]) => createPodReader(state, "cluster2", "default", name, verbs);

const tmp = mkdtempSync(join(tmpdir(), "mcsa-imports-"));
function file(name: string, content: string): string {
  const path = join(tmp, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

beforeAll(async () => {
  await installController(state, "cluster1");
  const kubeconfig = await controllerKubeconfig(state, "cluster1");
  manager = new Background("manager/main.ts", ["--kubeconfig", kubeconfig, "--cluster-check-interval", "1s", "--revoke-timeout", "15s"]);
  await manager.waitFor(/import controller started/);
  await createPodLister("pod-lister");
  await core2.createNamespacedPod({
    namespace: "default",
    body: { metadata: { name: "nginx", labels: { app: "nginx" } }, spec: { containers: [{ name: "nginx", image: "nginx" }] } },
  });
});

afterAll(async () => {
  await manager?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("kubectl mcsa bootstrap and import", () => {
  it("bootstraps cluster2 -> cluster1, and a second run changes nothing", async () => {
    const first = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('cluster "cluster2"');
    const again = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(again.code).toBe(0);
    const registration = await core1.readNamespacedSecret({ name: registrationSecretName("cluster2"), namespace: SYSTEM_NAMESPACE });
    expect(Object.keys(registration.data ?? {}).sort()).toEqual(["ca.crt", "namespace", "server", "serviceaccount", "token"]);
    // The identity may renew its own token and nothing else.
    const importer = importerFor("cluster1");
    // It is cluster1's own: another cluster whose kubeconfig calls it "cluster1" too is refused.
    const sa = await core2.readNamespacedServiceAccount({ name: importer.serviceAccount, namespace: SYSTEM_NAMESPACE });
    const mine = sa.metadata!.labels![IMPORTER_CLUSTER_LABEL]!;
    expect(mine).toBe((await core1.readNamespace({ name: "kube-system" })).metadata!.uid);
    sa.metadata!.labels![IMPORTER_CLUSTER_LABEL] = "another-cluster";
    await core2.replaceNamespacedServiceAccount({ name: importer.serviceAccount, namespace: SYSTEM_NAMESPACE, body: sa });
    const impostor = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(impostor.code).toBe(1);
    expect(impostor.stderr).toMatch(/belongs to another cluster: pass --local-name/);
    const restored = await core2.readNamespacedServiceAccount({ name: importer.serviceAccount, namespace: SYSTEM_NAMESPACE });
    restored.metadata!.labels![IMPORTER_CLUSTER_LABEL] = mine;
    await core2.replaceNamespacedServiceAccount({ name: importer.serviceAccount, namespace: SYSTEM_NAMESPACE, body: restored });
    const role = await rbac2.readNamespacedRole({ name: importer.serviceAccount, namespace: SYSTEM_NAMESPACE });
    expect(role.rules?.map((r) => [r.resources, r.verbs, r.resourceNames])).toEqual([
      [["serviceaccounts/token"], ["create"], [importer.serviceAccount]],
      [["serviceaccounts"], ["get"], [importer.serviceAccount]],
    ]);
  });

  it("imports pod-lister: Ready within seconds, a Secret in the original format, a working least-privilege config", async () => {
    const started = Date.now();
    const result = await mcsa(
      "import", NAME, "--context", "cluster1", "-n", "default", "--cluster", "cluster2",
      "--remote-namespace", "default", "--service-account", "pod-lister", "--remote-context", "cluster2", "--wait", "--timeout", "30s",
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("is ready");
    expect(Date.now() - started).toBeLessThan(15_000);

    const again = await mcsa(
      "import", NAME, "--context", "cluster1", "-n", "default", "--cluster", "cluster2",
      "--remote-namespace", "default", "--service-account", "pod-lister", "--remote-context", "cluster2",
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("unchanged");
    const other = await mcsa(
      "import", NAME, "--context", "cluster1", "-n", "default", "--cluster", "cluster2",
      "--remote-namespace", "default", "--service-account", "someone-else", "--remote-context", "cluster2",
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/already exists .* for cluster2\/default\/pod-lister: choose another name/);

    const { sai, secret, contents } = await importSecret(NAME);
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(["ca.crt", "config", "namespace", "server", "token"]);
    expect(secret.type).toBe("Opaque");
    expect(secret.metadata?.name).toMatch(new RegExp(`^${NAME}-token-`));
    expect(secret.metadata?.ownerReferences?.[0]?.uid).toBe(sai.metadata.uid);
    expect(contents.server).toBe(cluster(state, "cluster2").server);
    expect(new Date(sai.status!.expirationTimestamp!).getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);

    // Least privilege in cluster2: one Role, named resources only.
    const grant = importGrant({ importer: importerFor("cluster1"), localNamespace: "default", importName: NAME, remoteNamespace: "default", serviceAccount: "pod-lister" });
    const role = await rbac2.readNamespacedRole({ name: grant.role.metadata!.name!, namespace: "default" });
    expect(role.rules?.every((r) => (r.resourceNames ?? []).length === 1)).toBe(true);
    // No Secret may be read but the grant's own (empty) anchor, which records what the grant allows.
    const readsSecrets = (r: NonNullable<typeof role.rules>[number]) => r.resources?.includes("secrets") && r.verbs?.some((v) => ["get", "list", "watch"].includes(v));
    expect(role.rules?.filter(readsSecrets).map((r) => [r.verbs, r.resourceNames])).toEqual([[["get", "delete"], [grant.role.metadata!.name!]]]);

    const config = file("import.kubeconfig", contents.config);
    const pods = await kubectl(state, ["--kubeconfig", config, "get", "pods", "-n", "default", "-o", "name"]);
    expect(pods.stderr).toBe("");
    expect(pods.stdout).toContain("pod/nginx");
    const secrets = await kubectl(state, ["--kubeconfig", config, "get", "secrets", "-n", "default"]);
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toMatch(/forbidden/i);
  });

  it("shows the import with get, describe, kubeconfig and check", async () => {
    const get = await mcsa("get", "--context", "cluster1");
    expect(get.code).toBe(0);
    expect(get.stdout.split("\n")[0]).toMatch(/^NAME\s+CLUSTER\s+REMOTE-NAMESPACE\s+SERVICE-ACCOUNT\s+READY\s+EXPIRES-IN\s+AGE$/);
    expect(get.stdout).toMatch(new RegExp(`${NAME}\\s+cluster2\\s+default\\s+pod-lister\\s+True`));
    const asName = await mcsa("list", "--context", "cluster1", "-A", "-o", "name");
    expect(asName.stdout.trim().split("\n")).toContain(`serviceaccountimport.multicluster.admiralty.io/${NAME}`);
    const yaml = await mcsa("get", NAME, "--context", "cluster1", "-o", "json");
    expect(JSON.parse(yaml.stdout).spec).toEqual({ clusterName: "cluster2", namespace: "default", name: "pod-lister" });

    const describe = await mcsa("describe", NAME, "--context", "cluster1");
    expect(describe.code).toBe(0);
    expect(describe.stdout).toMatch(/Ready\s+True\s+TokenIssued/);
    expect(describe.stdout).toMatch(/TokenIssued/);

    const kubeconfig = await mcsa("kubeconfig", NAME, "--context", "cluster1");
    expect(kubeconfig.code).toBe(0);
    const pods = await kubectl(state, ["--kubeconfig", file("printed.kubeconfig", kubeconfig.stdout), "get", "pods", "-n", "default", "-o", "name"]);
    expect(pods.stdout).toContain("pod/nginx");
    outputs.pop(); // the one output that holds a token on purpose

    const check = await mcsa("check", NAME, "--context", "cluster1");
    expect(check.stderr).toBe("");
    expect(check.stdout).toContain("system:serviceaccount:default:pod-lister");
    expect(check.stdout).toMatch(/^pods\s+\*\s+list,get,watch|^pods\s+\*\s+.*list/m);
  });

  it("applies the original README's YAML with kubectl: Forbidden until the remote grant exists, then Ready", async () => {
    await createPodLister("pod-lister-yaml", ["list"]);
    const yaml = [
      `apiVersion: ${GROUP}/${VERSION}`,
      "kind: ServiceAccountImport",
      "metadata:",
      "  name: cluster2-default-pod-lister-yaml",
      "spec:",
      "  clusterName: cluster2",
      "  namespace: default",
      "  name: pod-lister-yaml",
    ].join("\n");
    const applied = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "apply", "-f", file("sai.yaml", yaml)]);
    expect(applied.stderr).toBe("");
    const forbidden = await readyReason("cluster2-default-pod-lister-yaml", "Forbidden");
    expect(readyCondition(forbidden)?.status).toBe("False");
    expect(readyCondition(forbidden)?.message).toMatch(/forbids creating a token for service account default\/pod-lister-yaml.*kubectl mcsa import/);

    // What a remote admin applies (kubectl mcsa import prints it when it has no --remote-context).
    const grantObjects = importGrant({ importer: importerFor("cluster1"), localNamespace: "default", importName: "cluster2-default-pod-lister-yaml", remoteNamespace: "default", serviceAccount: "pod-lister-yaml" });
    await applyAsAdmin(state, "cluster2", [grantObjects.anchor, grantObjects.role, grantObjects.roleBinding]);
    const ready = await readyReason("cluster2-default-pod-lister-yaml", "TokenIssued");
    expect(ready.status?.secrets).toHaveLength(1);
  });

  it("rotates: a new token, and the old one keeps working", async () => {
    const before = (await importSecret(NAME)).contents.token;
    const rotated = await mcsa("rotate", NAME, "--context", "cluster1", "--timeout", "20s");
    expect(rotated.stderr).toBe("");
    expect(rotated.code).toBe(0);
    const after = (await importSecret(NAME)).contents.token;
    expect(after).not.toBe(before);
    const info = cluster(state, "cluster2");
    expect(await statusOf(tokenConfig(info, before).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }))).toBe(200);
    expect(await statusOf(tokenConfig(info, after).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }))).toBe(200);
  });

  it("reports RemoteUnreachable while cluster2 is down, keeps the last token, and recovers by itself", async () => {
    const info = cluster(state, "cluster2");
    const { contents } = await importSecret(NAME);
    await stopApiserver(info);
    try {
      const down = await readyReason(NAME, "RemoteUnreachable", 20_000);
      expect(readyCondition(down)?.message).toMatch(/cannot reach cluster "cluster2".*stays valid until/);
      expect((await importSecret(NAME)).contents.token).toBe(contents.token);
    } finally {
      await restartApiserver(info);
    }
    await readyReason(NAME, "TokenIssued", 30_000);
  });

  it("removes: the import's tokens are rejected by cluster2 within seconds, and its grant is gone", async () => {
    const { secret } = await importSecret(NAME);
    const tokens = [...tokensOf.get(NAME)!];
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    const removed = await mcsa("remove", NAME, "--context", "cluster1", "--timeout", "30s");
    expect(removed.stderr).toBe("");
    expect(removed.code).toBe(0);
    const info = cluster(state, "cluster2");
    const started = Date.now();
    for (const token of tokens) {
      await eventually("a removed import's token to be rejected", async () =>
        (await statusOf(tokenConfig(info, token).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }))) === 401 ? true : undefined,
      20_000);
    }
    expect(Date.now() - started).toBeLessThan(20_000);
    const grant = importGrant({ importer: importerFor("cluster1"), localNamespace: "default", importName: NAME, remoteNamespace: "default", serviceAccount: "pod-lister" });
    await eventually("the remote Role to be garbage-collected", async () =>
      (await statusOf(rbac2.readNamespacedRole({ name: grant.role.metadata!.name!, namespace: "default" }))) === 404 ? true : undefined,
    30_000);
    expect(await statusOf(core1.readNamespacedSecret({ name: secret.metadata!.name!, namespace: "default" }))).toBe(404);
    expect(await statusOf(getImport(NAME))).toBe(404);
  });

  describe("refuses bad input with one line, a non-zero exit, and nothing created", () => {
    const importArgs = (name: string, extra: string[] = [], o: { context?: string; cluster?: string; sa?: string } = {}) => [
      "import", name, "--context", o.context ?? "cluster1", "--cluster", o.cluster ?? "cluster2", "--remote-namespace", "default",
      "--service-account", o.sa ?? "pod-lister", "--remote-context", "cluster2", ...extra,
    ];

    async function expectRefused(result: RunResult, pattern: RegExp, importName?: string): Promise<void> {
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/^error: /);
      expect(result.stderr).toMatch(pattern);
      if (importName) expect(await statusOf(getImport(importName))).toBe(404);
    }

    it("unknown context", async () => {
      await expectRefused(await mcsa(...importArgs("bad-context", [], { context: "nope" })), /context "nope" not found in kubeconfig/, "bad-context");
    });

    it("unknown cluster name", async () => {
      await expectRefused(await mcsa(...importArgs("bad-cluster", [], { cluster: "cluster9" })), /cluster "cluster9" is not registered.*kubectl mcsa bootstrap/, "bad-cluster");
    });

    it("missing remote service account", async () => {
      await expectRefused(await mcsa(...importArgs("bad-sa", [], { sa: "nobody" })), /service account "nobody" not found in namespace "default" of context "cluster2"/, "bad-sa");
      const grant = importGrant({ importer: importerFor("cluster1"), localNamespace: "default", importName: "bad-sa", remoteNamespace: "default", serviceAccount: "nobody" });
      expect(await statusOf(rbac2.readNamespacedRole({ name: grant.role.metadata!.name!, namespace: "default" }))).toBe(404);
    });

    it("invalid names", async () => {
      await expectRefused(await mcsa(...importArgs("Bad_Name")), /invalid name "Bad_Name"/);
      await expectRefused(await mcsa(...importArgs("ok", ["--ttl", "1m"])), /--ttl must be at least 10m/, "ok");
    });

    it("forbidden by RBAC", async () => {
      await core1.createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name: "nobody" } } });
      const weak = await serviceAccountKubeconfig(state, "cluster1", "default", "nobody");
      const result = await runNode("plugin/main.ts", ["--kubeconfig", weak, "import", "weak", "--cluster", "cluster2", "--remote-namespace", "default", "--service-account", "pod-lister"]);
      outputs.push(result);
      await expectRefused(result, /forbidden/i, "weak");
    });

    it("a flag combination that makes no sense", async () => {
      await expectRefused(await mcsa(...importArgs("combo", ["--timeout", "10s"])), /--timeout only makes sense with --wait/, "combo");
      await expectRefused(await mcsa("get", "x", "-A", "--context", "cluster1"), /cannot be retrieved by name across all namespaces/);
      await expectRefused(await mcsa("bootstrap", "--from", "cluster1", "--to", "cluster1"), /same context/);
    });
  });

  it("never prints or logs a token", async () => {
    const everything = [...outputs.map((o) => o.stdout + o.stderr), manager.text].join("\n");
    for (const token of tokensSeen) expect(everything).not.toContain(token);
    expect(everything).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });

  it("unbootstraps: the importer identity is revoked and cluster2 is forgotten", async () => {
    const registration = await core1.readNamespacedSecret({ name: registrationSecretName("cluster2"), namespace: SYSTEM_NAMESPACE });
    const identityToken = Buffer.from(registration.data!.token!, "base64").toString("utf8");
    // An import of cluster2 (the -yaml one) still exists: unbootstrap needs --force to break it.
    const refused = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(refused.stderr).toMatch(/still needed in context "cluster1": 1 import\(s\) use it .*pass --force/);
    const result = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(await statusOf(core1.readNamespacedSecret({ name: registrationSecretName("cluster2"), namespace: SYSTEM_NAMESPACE }))).toBe(404);
    await eventually("the importer identity's token to be rejected", async () =>
      (await statusOf(tokenConfig(cluster(state, "cluster2"), identityToken).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }))) === 401 ? true : undefined,
    20_000);
    // Its tokens went with the identity's grants: the import stops claiming to work (Ready False) and says to bootstrap.
    const gone = await readyReason("cluster2-default-pod-lister-yaml", "Unauthorized");
    expect(readyCondition(gone)?.status).toBe("False");
    expect(readyCondition(gone)?.message).toMatch(/run kubectl mcsa bootstrap again/);
  });
});
