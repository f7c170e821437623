// The Helm chart (`npm run chart`) with real helm (v4, built from tools/helm) on a local cluster:
// lint, template (the objects renderChart() computes, hence installObjects()' objects), install,
// upgrade (a changed value applied, the webhook's certificate kept, an expiring one re-issued by the
// same CA), uninstall, with nothing left behind once the CRD (which Helm never deletes) is deleted
// as docs/install.md says; and the two cases docs/install.md warns about (the release record in the
// chart's namespace, a cluster where `kubectl mcsa install` already ran). No pod needs to run: the
// Deployment is checked as an object, and helm does not wait for it (no --wait), as with
// `kubectl mcsa install` without --wait.
import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiextensionsV1Api, CoreV1Api, type KubernetesObject, KubernetesObjectApi, PatchStrategy, type V1Deployment, type V1MutatingWebhookConfiguration, type V1Secret, setHeaderOptions } from "@kubernetes/client-node";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CRD_NAME, SYSTEM_NAMESPACE } from "../../common/api.ts";
import { MANAGER_NAME, WEBHOOK_CONFIGURATION, WEBHOOK_SECRET, crd, webhookDnsNames } from "../../common/manifests.ts";
import { SERVING_DAYS } from "../../common/serving-cert.ts";
import { type ChartTls, type ChartValues, SERVING_NOT_AFTER_ANNOTATION, chartModel, renderChart, wireForm } from "../../scripts/chart.ts";
import { chartArchive } from "../../scripts/package.ts";
import { type HelmBinary, ensureHelm } from "../../harness/helm.ts";
import { adminConfig, statusOf } from "../../harness/kube.ts";
import { ROOT, eventually } from "../../harness/run.ts";

const state = inject("clusters");
/** No node there: nothing the chart deploys runs, and no other file's pods meet its webhook. */
const CONTEXT = "cluster2";
const RELEASE = "mcsa";
/** Where helm keeps the release record; the chart's objects go to their own namespace. */
const RELEASE_NAMESPACE = "default";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout, maxBuffer: 32 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let helmBinary: HelmBinary;
/** HOME and helm's own directories for this file only: removed at the end. */
const home = mkdtempSync(join(tmpdir(), "mcsa-helm-home-"));
const chart = join(home, "chart");
const kc = adminConfig(state, CONTEXT);
const api = KubernetesObjectApi.makeApiClient(kc);
const core = kc.makeApiClient(CoreV1Api);

const helm = async (args: string[]): Promise<Result> => {
  const env = {
    HOME: home,
    KUBECONFIG: state.kubeconfig,
    HELM_KUBECONTEXT: CONTEXT,
    HELM_NAMESPACE: RELEASE_NAMESPACE,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
  };
  return exec(helmBinary.helm, args, env);
};
const ok = (r: Result, what: string): Result => {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r;
};

const key = (o: KubernetesObject) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
const sorted = (objects: KubernetesObject[]) => [...objects].sort((a, b) => key(a).localeCompare(key(b)));
const docs = (text: string) => (loadAll(text) as (KubernetesObject | null)[]).filter((o): o is KubernetesObject => o !== null);
const b64dec = (s: string) => Buffer.from(s, "base64").toString("utf8");

/** The certificate material a rendered or live Secret holds. */
function tlsOf(secret: V1Secret): ChartTls {
  const d = secret.data!;
  return {
    caBundle: b64dec(d["ca.crt"]!),
    caKey: b64dec(d["ca.key"]!),
    cert: b64dec(d["tls.crt"]!),
    key: b64dec(d["tls.key"]!),
    notAfter: secret.metadata!.annotations![SERVING_NOT_AFTER_ANNOTATION]!,
  };
}

/** A serving certificate the API server accepts for the webhook's Service, signed by the CA. */
function expectServing(tls: ChartTls, days = SERVING_DAYS): void {
  const ca = new X509Certificate(tls.caBundle);
  const cert = new X509Certificate(tls.cert);
  expect(ca.ca).toBe(true);
  expect(cert.verify(ca.publicKey)).toBe(true);
  for (const name of webhookDnsNames()) expect(cert.checkHost(name, { subject: "never" }), name).toBe(name);
  const left = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
  expect(left).toBeGreaterThan(days - 1);
  expect(left).toBeLessThanOrEqual(days);
  // The annotation the chart renews by is the certificate's own expiry (to the minute).
  expect(Math.abs(new Date(tls.notAfter).getTime() - new Date(cert.validTo).getTime())).toBeLessThan(120_000);
  expect(cert.checkPrivateKey(createPrivateKey(tls.key))).toBe(true);
}

const read = (o: KubernetesObject) => api.read({ apiVersion: o.apiVersion!, kind: o.kind!, metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace } });
const API_VERSIONS: Record<string, string> = { Deployment: "apps/v1", Secret: "v1", MutatingWebhookConfiguration: "admissionregistration.k8s.io/v1" };
const live = async <T extends KubernetesObject>(kind: keyof typeof API_VERSIONS, name: string, namespace?: string): Promise<T> =>
  (await read({ apiVersion: API_VERSIONS[kind], kind, metadata: { name, namespace } })) as T;

const defaults = chartModel().defaults;

beforeAll(async () => {
  helmBinary = await ensureHelm((line) => console.error(`[helm.test] ${line}`));
  // The chart starts where install starts: nothing of it in the cluster.
  const there = [
    (await statusOf(core.readNamespace({ name: SYSTEM_NAMESPACE }))) === 200 ? `namespace ${SYSTEM_NAMESPACE}` : undefined,
    (await statusOf(kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME }))) === 200 ? `CRD ${CRD_NAME}` : undefined,
  ].filter(Boolean);
  if (there.length > 0) throw new Error(`${CONTEXT} already has ${there.join(" and ")}: a previous test file left kubectl mcsa installed`);
  const generated = ok(await exec(process.execPath, [join(ROOT, "scripts/chart.ts"), "--out", chart]), "npm run chart");
  expect(generated.stdout).toMatch(/wrote the chart kubectl-mcsa \S+ into .* \(7 files\)/);
}, 900_000);

afterAll(async () => {
  // Only if a test failed half-way: what the lifecycle below removes.
  if (helmBinary !== undefined) await helm(["uninstall", RELEASE, "--wait", "--timeout", "60s"]);
  await statusOf(kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: CRD_NAME }));
  await statusOf(core.deleteNamespace({ name: SYSTEM_NAMESPACE }));
  rmSync(home, { recursive: true, force: true });
}, 120_000);

describe("the generated chart with real helm", () => {
  it("helm lint passes (strict), on the chart and on the release's archive, and the values schema refuses a value install would refuse", async () => {
    const lint = ok(await helm(["lint", "--strict", chart]), "helm lint");
    expect(lint.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const bad = await helm(["lint", chart, "--set", "logLevel=loud"]);
    expect(bad.code).not.toBe(0);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/logLevel/);
    // The release's archive (npm run package) is the same chart.
    const archive = chartArchive();
    writeFileSync(join(home, archive.name), archive.data);
    expect(ok(await helm(["lint", "--strict", join(home, archive.name)]), "helm lint (archive)").stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(ok(await helm(["show", "chart", join(home, archive.name)]), "helm show chart").stdout).toMatch(/^name: kubectl-mcsa$/m);
    const badReplicas = await helm(["template", RELEASE, chart, "--set", "replicas=0"]);
    expect(badReplicas.code).not.toBe(0);
    expect(badReplicas.stderr).toMatch(/replicas/);
  });

  it("helm template gives installObjects()' objects: the CRD from crds/, the rest as renderChart() computes them, a fresh valid certificate", async () => {
    const rendered = docs(ok(await helm(["template", RELEASE, chart, "--include-crds"]), "helm template").stdout);
    const crds = rendered.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds).toEqual([wireForm(crd())]);
    const objects = rendered.filter((o) => o.kind !== "CustomResourceDefinition");
    const tls = tlsOf(objects.find((o) => o.kind === "Secret" && o.metadata?.name === WEBHOOK_SECRET) as V1Secret);
    expectServing(tls);
    expect(sorted(objects)).toEqual(sorted(renderChart(defaults, tls)));

    const matchExpressions = [{ key: "team", operator: "In", values: ["a", "b"] }];
    const set = [
      "--set", "image=registry.example/mcsa:v9,sidecarImage=registry.example/sidecar:v9,imagePullPolicy=Never,replicas=3,logLevel=debug",
      "--set-json", 'resources={"requests":{"cpu":"100m"}}',
      // Helm merges maps into the defaults: null removes the default label.
      "--set-json", `namespaceSelector={"matchLabels":null,"matchExpressions":${JSON.stringify(matchExpressions)}}`,
    ];
    const values: ChartValues = {
      ...defaults,
      image: "registry.example/mcsa:v9",
      sidecarImage: "registry.example/sidecar:v9",
      imagePullPolicy: "Never",
      replicas: 3,
      resources: { ...defaults.resources, requests: { ...defaults.resources.requests, cpu: "100m" } },
      logLevel: "debug",
      namespaceSelector: { matchExpressions },
    };
    const custom = docs(ok(await helm(["template", RELEASE, chart, ...set]), "helm template --set").stdout);
    const customTls = tlsOf(custom.find((o) => o.kind === "Secret") as V1Secret);
    expect(sorted(custom)).toEqual(sorted(renderChart(values, customTls)));
  });

  let installedTls: ChartTls;
  it("helm install: every object in the cluster, the webhook trusting the Secret's CA", async () => {
    const out = ok(await helm(["install", RELEASE, chart]), "helm install");
    expect(out.stdout).toMatch(/STATUS: deployed/);
    expect(out.stdout).toMatch(/kubectl mcsa is installed in the namespace multicluster-service-account/);
    for (const o of [crd(), ...renderChart(defaults, { caBundle: "", caKey: "", cert: "", key: "", notAfter: "" })]) {
      expect(await statusOf(read(o)), key(o)).toBe(200);
    }
    const deployment = await live<V1Deployment>("Deployment", MANAGER_NAME, SYSTEM_NAMESPACE);
    expect(deployment.spec!.replicas).toBe(defaults.replicas);
    expect(deployment.spec!.template.spec!.containers[0]!.args!.some((a) => a.startsWith("--log-level="))).toBe(false);
    installedTls = tlsOf(await live<V1Secret>("Secret", WEBHOOK_SECRET, SYSTEM_NAMESPACE));
    expectServing(installedTls);
    const webhook = await live<V1MutatingWebhookConfiguration>("MutatingWebhookConfiguration", WEBHOOK_CONFIGURATION);
    expect(b64dec(webhook.webhooks![0]!.clientConfig.caBundle!)).toBe(installedTls.caBundle);
    expect(webhook.webhooks![0]!.namespaceSelector).toEqual(defaults.namespaceSelector);
  });

  it("helm upgrade applies a changed log level and replicas, and keeps the webhook's certificate", async () => {
    const out = ok(await helm(["upgrade", RELEASE, chart, "--set", "logLevel=debug,replicas=2"]), "helm upgrade");
    expect(out.stdout).toMatch(/REVISION: 2/);
    const deployment = await live<V1Deployment>("Deployment", MANAGER_NAME, SYSTEM_NAMESPACE);
    expect(deployment.spec!.replicas).toBe(2);
    expect(deployment.spec!.template.spec!.containers[0]!.args).toContain("--log-level=debug");
    expect(tlsOf(await live<V1Secret>("Secret", WEBHOOK_SECRET, SYSTEM_NAMESPACE))).toEqual(installedTls);
    const webhook = await live<V1MutatingWebhookConfiguration>("MutatingWebhookConfiguration", WEBHOOK_CONFIGURATION);
    expect(b64dec(webhook.webhooks![0]!.clientConfig.caBundle!)).toBe(installedTls.caBundle);
  });

  it("helm upgrade re-issues a serving certificate close to expiry from the same CA", async () => {
    // As if a year had passed less than 4 years after install: the chart's date says it expires in 30 days.
    const soon = new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
    await core.patchNamespacedSecret(
      { name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE, body: { metadata: { annotations: { [SERVING_NOT_AFTER_ANNOTATION]: soon } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    // --force-conflicts only because this test, not time, changed the annotation helm applied (server-side apply).
    ok(await helm(["upgrade", RELEASE, chart, "--reuse-values", "--force-conflicts"]), "helm upgrade (renewal)");
    const renewed = tlsOf(await live<V1Secret>("Secret", WEBHOOK_SECRET, SYSTEM_NAMESPACE));
    expect(renewed.caBundle).toBe(installedTls.caBundle);
    expect(renewed.caKey).toBe(installedTls.caKey);
    expect(renewed.cert).not.toBe(installedTls.cert);
    expectServing(renewed);
    const deployment = await live<V1Deployment>("Deployment", MANAGER_NAME, SYSTEM_NAMESPACE);
    expect(deployment.spec!.template.spec!.containers[0]!.args).toContain("--log-level=debug");
  });

  it("helm uninstall removes every object but the CRD (Helm keeps crds/); deleting the CRD as documented leaves nothing", async () => {
    ok(await helm(["uninstall", RELEASE, "--wait", "--timeout", "90s"]), "helm uninstall");
    await gone(objects(), "every object of the chart but the CRD");
    expect(ok(await helm(["list", "--all-namespaces", ...ANY_STATE, "-q"]), "helm list").stdout.trim()).toBe("");
    expect((await core.listNamespacedSecret({ namespace: RELEASE_NAMESPACE, labelSelector: "owner=helm" })).items).toEqual([]);
    // Helm never deletes what crds/ installed (its imports would go with it).
    expect(await statusOf(read(crd()))).toBe(200);
    await deleteCrd();
  });

  it("with its record in the chart's own namespace (-n multicluster-service-account --create-namespace), the release installs, but helm uninstall fails as docs/install.md says", async () => {
    ok(await helm(["install", RELEASE, chart, "-n", SYSTEM_NAMESPACE, "--create-namespace"]), "helm install -n multicluster-service-account");
    for (const o of objects()) expect(await statusOf(read(o)), key(o)).toBe(200);
    const uninstalled = await helm(["uninstall", RELEASE, "-n", SYSTEM_NAMESPACE, "--wait", "--timeout", "90s"]);
    // The namespace went, and the release record with it, before helm could purge the record.
    expect(uninstalled.code).toBe(1);
    expect(uninstalled.stderr).toMatch(/Failed to purge the release: release: not found/);
    await gone(objects(), "every object of the chart but the CRD");
    expect(ok(await helm(["list", "--all-namespaces", ...ANY_STATE, "-q"]), "helm list").stdout.trim()).toBe("");
    await deleteCrd();
  });

  it("Helm refuses to take over what kubectl mcsa install created", async () => {
    const mcsa = (args: string[]) => exec(process.execPath, [join(ROOT, "plugin/main.ts"), ...args, "--context", CONTEXT], { KUBECONFIG: state.kubeconfig });
    ok(await mcsa(["install"]), "kubectl mcsa install");
    const overInstall = await helm(["install", RELEASE, chart]);
    expect(overInstall.code).not.toBe(0);
    expect(overInstall.stderr).toMatch(/exists and cannot be imported into the current release: invalid ownership metadata/);
    ok(await mcsa(["uninstall", "--timeout", "60s"]), "kubectl mcsa uninstall");
    await cleanUp();
  });
});

/** Every helm release state, for helm list. */
const ANY_STATE = ["--deployed", "--failed", "--pending", "--superseded", "--uninstalled", "--uninstalling"];

/** The chart's objects (the CRD apart), by kind and name. */
const objects = () => renderChart(defaults, { caBundle: "", caKey: "", cert: "", key: "", notAfter: "" });

async function gone(list: KubernetesObject[], what: string): Promise<void> {
  const left = async () => {
    const found: string[] = [];
    for (const o of list) if ((await statusOf(read(o))) !== 404) found.push(key(o));
    return found;
  };
  try {
    await eventually(`${what} to be gone`, async () => ((await left()).length === 0 ? true : undefined), 90_000, 500);
  } catch (error) {
    throw new Error(`${(error as Error).message}; still there: ${(await left()).join(", ")}`, { cause: error });
  }
}

async function deleteCrd(): Promise<void> {
  const deleted = await exec(state.kubectl, ["--kubeconfig", state.kubeconfig, "--context", CONTEXT, "delete", "crd", CRD_NAME, "--wait", "--timeout=60s"]);
  expect(deleted.code, deleted.stderr).toBe(0);
  expect(await statusOf(read(crd()))).toBe(404);
}

/** After a refused install: no release in any state, and nothing of the chart (the CRD included) left. */
async function cleanUp(): Promise<void> {
  for (const namespace of [RELEASE_NAMESPACE, SYSTEM_NAMESPACE]) await helm(["uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "60s"]);
  await statusOf(core.deleteNamespace({ name: SYSTEM_NAMESPACE }));
  await statusOf(kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: CRD_NAME }));
  await gone([...objects(), wireForm(crd())], "the refused install's objects");
  expect(ok(await helm(["list", "--all-namespaces", ...ANY_STATE, "-q"]), "helm list").stdout.trim()).toBe("");
}
