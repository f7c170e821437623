// The sidecar-injecting webhook, called by a real kube-apiserver: `kubectl mcsa install` in both
// modes, and the in-cluster process run locally (as the controller's service account) serving
// the webhook that the API server calls for every pod created in a labelled namespace.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, IMPORT_ANNOTATION, INJECTED_ANNOTATION, NAMESPACE_LABEL, PLURAL, SYSTEM_NAMESPACE, VERSION } from "../../common/api.ts";
import { MANAGER_NAME, WEBHOOK_CONFIGURATION, WEBHOOK_SECRET, WEBHOOK_SERVICE } from "../../common/manifests.ts";
import { controllerKubeconfig } from "../../harness/install.ts";
import { adminConfig, statusOf, uniqueName } from "../../harness/kube.ts";
import { Background, eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");
const kc1 = adminConfig(state, "cluster1");
const core1 = kc1.makeApiClient(CoreV1Api);
const apps1 = kc1.makeApiClient(AppsV1Api);
const custom1 = kc1.makeApiClient(CustomObjectsApi);
const admission1 = kc1.makeApiClient(AdmissionregistrationV1Api);
const tmp = mkdtempSync(join(tmpdir(), "mcsa-webhook-e2e-"));
const SIDECAR_IMAGE = "reg.example/mcsa:e2e";
const README_IMPORT = "cluster2-default-pod-lister";

const mcsa = (context: string, ...args: string[]) => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, "--context", context, ...args]);

/** The original README's pod. */
function readmePod(annotation: string | null = README_IMPORT, name = "multicluster-client"): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(annotation === null ? {} : { annotations: { [IMPORT_ANNOTATION]: annotation } }) },
    spec: {
      restartPolicy: "Never",
      containers: [{ name: "multicluster-client", image: "quay.io/admiralty/multicluster-service-account-example-multicluster-client:0.1.0" }],
    },
  };
}

/** A ServiceAccountImport that looks as the controller leaves it when ready (no controller runs here). */
async function readyImport(namespace: string, name: string, ready = true): Promise<string> {
  const secret = `${name}-token-${Math.random().toString(36).slice(2, 7)}`;
  await custom1.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ServiceAccountImport", metadata: { name }, spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister" } },
  });
  const condition = ready
    ? { type: "Ready", status: "True", reason: "TokenIssued", message: "token valid for 1h", lastTransitionTime: new Date().toISOString() }
    : { type: "Ready", status: "False", reason: "ClusterNotFound", message: 'cluster "cluster2" is not registered', lastTransitionTime: new Date().toISOString() };
  await custom1.patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
      body: { status: { ...(ready ? { secrets: [{ name: secret }] } : {}), conditions: [condition] } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  // The webhook refuses a pod whose import's Secret is missing: a ready import has one.
  if (ready) await core1.createNamespacedSecret({ namespace, body: { metadata: { name: secret } } });
  return secret;
}

const allContainers = (pod: V1Pod): V1Container[] => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
const byName = (pod: V1Pod, name: string): V1Container => {
  const c = allContainers(pod).find((c) => c.name === name);
  if (c === undefined) throw new Error(`pod has no container ${name}: ${allContainers(pod).map((c) => c.name).join(", ")}`);
  return c;
};

/** The API server's message of a refused call. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) {
      const body = typeof error.body === "string" ? (JSON.parse(error.body) as { message: string }) : (error.body as { message: string });
      return { code: error.code, message: body.message };
    }
    throw error;
  }
  throw new Error("the call succeeded");
}

let manager: Background | undefined;
const labelled = uniqueName("mcsa-webhook-on");
const unlabelled = uniqueName("mcsa-webhook-off");

afterAll(async () => {
  await manager?.stop();
  // Leave cluster1 without a webhook that nothing serves any more.
  await admission1.deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION }).catch(() => undefined);
  for (const namespace of [labelled, unlabelled]) await core1.deleteNamespace({ name: namespace }).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

describe("kubectl mcsa install", () => {
  it("installs the controller's Deployment, Service, serving Secret and webhook configuration; a second install keeps the CA and changes nothing", async () => {
    const first = await mcsa("cluster1", "install", "--wait=false", "--image", "reg.example/mcsa-manager:e2e", "--sidecar-image", SIDECAR_IMAGE);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/generated a CA and serving certificate|kept the webhook's CA/);
    expect(first.stdout).toContain("mutatingwebhookconfiguration/mcsa-webhook applied");

    const configuration = await admission1.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
    const webhook = configuration.webhooks![0]!;
    expect(webhook.clientConfig.service).toMatchObject({ namespace: SYSTEM_NAMESPACE, name: WEBHOOK_SERVICE, path: "/mutate-pods", port: 443 });
    expect(webhook).toMatchObject({ failurePolicy: "Fail", sideEffects: "None", reinvocationPolicy: "IfNeeded", matchPolicy: "Equivalent", timeoutSeconds: 5 });
    expect(webhook.matchConditions?.map((c) => c.name)).toEqual(["has-import-annotation"]);
    const secret = await core1.readNamespacedSecret({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE });
    const pem = (key: string) => Buffer.from(secret.data![key]!, "base64").toString("utf8");
    expect(Buffer.from(webhook.clientConfig.caBundle!, "base64").toString("utf8")).toBe(pem("ca.crt"));
    const serving = new X509Certificate(pem("tls.crt"));
    expect(serving.verify(new X509Certificate(pem("ca.crt")).publicKey)).toBe(true);
    expect(serving.checkHost(`${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc`)).toBeTruthy();

    const deployment = await apps1.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
    const container = deployment.spec!.template.spec!.containers[0]!;
    expect(container.image).toBe("reg.example/mcsa-manager:e2e");
    expect(container.args).toContain(`--sidecar-image=${SIDECAR_IMAGE}`);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    const service = await core1.readNamespacedService({ name: WEBHOOK_SERVICE, namespace: SYSTEM_NAMESPACE });
    expect(service.spec?.ports?.[0]).toMatchObject({ port: 443, targetPort: "webhook" });

    const again = await mcsa("cluster1", "install", "--wait=false", "--image", "reg.example/mcsa-manager:e2e", "--sidecar-image", SIDECAR_IMAGE);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("kept the webhook's CA and serving certificate");
    const secretAgain = await core1.readNamespacedSecret({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE });
    expect(secretAgain.metadata?.resourceVersion).toBe(secret.metadata?.resourceVersion);
    const configurationAgain = await admission1.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
    expect(configurationAgain.metadata?.resourceVersion).toBe(configuration.metadata?.resourceVersion);
    const deploymentAgain = await apps1.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
    expect(deploymentAgain.metadata?.generation).toBe(deployment.metadata?.generation);

    // A newer version upgrades in place: same objects, new image.
    const upgrade = await mcsa("cluster1", "install", "--wait=false", "--image", "reg.example/mcsa-manager:e2e-2", "--sidecar-image", SIDECAR_IMAGE);
    expect(upgrade.code).toBe(0);
    const upgraded = await apps1.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
    expect(upgraded.spec!.template.spec!.containers[0]!.image).toBe("reg.example/mcsa-manager:e2e-2");
    expect((await core1.readNamespacedSecret({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE })).metadata?.resourceVersion).toBe(
      secret.metadata?.resourceVersion,
    );
  });
});

describe("the webhook, called by the real API server", () => {
  let url: string;

  beforeAll(async () => {
    // The controller's identity first (install), then the process as that identity, then the webhook configuration pointing at it.
    const base = await mcsa("cluster1", "install", "--wait=false", "--sidecar-image", SIDECAR_IMAGE);
    expect(base.code, base.stderr).toBe(0);
    const kubeconfig = await controllerKubeconfig(state, "cluster1");
    const caFile = join(tmp, "webhook-ca.pem");
    manager = new Background("manager/main.ts", [
      "--kubeconfig",
      kubeconfig,
      "--disable-import-controller",
      "--webhook-listen",
      "127.0.0.1:0",
      "--webhook-ca-out",
      caFile,
      "--sidecar-image",
      SIDECAR_IMAGE,
      "--log-level",
      "debug",
    ]);
    await manager.waitFor(/"msg":"webhook listening"/);
    url = /"msg":"webhook listening"[^\n]*"url":"([^"]+)"/.exec(manager.text)![1]!;
    const local = await mcsa("cluster1", "install", "--webhook-url", url, "--webhook-ca-file", caFile);
    expect(local.stderr).toBe("");
    expect(local.code).toBe(0);
    expect(local.stdout).toContain(`deployment/${MANAGER_NAME} deleted`);

    await core1.createNamespace({ body: { metadata: { name: labelled, labels: { [NAMESPACE_LABEL]: "enabled" } } } });
    await core1.createNamespace({ body: { metadata: { name: unlabelled } } });
    for (const namespace of [labelled, unlabelled]) await readyImport(namespace, README_IMPORT);
    await readyImport(labelled, "cluster3-default-pod-lister");
    await readyImport(labelled, "cluster2-not-ready", false);

    // The API server loads webhook configurations through an informer: wait until ours intercepts.
    await eventually(
      "the webhook to intercept pod creation",
      async () => {
        const pod = await core1.createNamespacedPod({ namespace: labelled, body: readmePod(README_IMPORT, "probe"), dryRun: "All" });
        return pod.spec?.initContainers?.length ? true : undefined;
      },
      30_000,
      250,
    );
  });

  it("is served at the URL the manager logged, and the webhook configuration points there", async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mutate-pods$/);
    const configuration = await admission1.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
    expect(configuration.webhooks![0]!.clientConfig).toMatchObject({ url });
    expect(configuration.webhooks![0]!.clientConfig.service).toBeUndefined();
    expect(await statusOf(apps1.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE }))).toBe(404);
  });

  it("stores the README's pod in a labelled namespace with the sidecar, volumes, mounts and env", async () => {
    await core1.createNamespacedPod({ namespace: labelled, body: readmePod() });
    const pod = await core1.readNamespacedPod({ name: "multicluster-client", namespace: labelled });
    const secret = ((await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: labelled, name: README_IMPORT })) as {
      status: { secrets: { name: string }[] };
    }).status.secrets[0]!.name;

    expect(pod.metadata?.annotations?.[INJECTED_ANNOTATION]).toBe("mcsa-webhook");
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(["mcsa-sidecar"]);
    const sidecar = byName(pod, "mcsa-sidecar");
    expect(sidecar).toMatchObject({
      image: SIDECAR_IMAGE,
      restartPolicy: "Always",
      command: ["mcsa-sidecar"],
      args: ["--secrets-dir=/etc/mcsa/secrets", "--output-dir=/var/run/secrets/admiralty.io", "--health-port=17000", `--import=${README_IMPORT}=17001`],
      securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    });
    expect(sidecar.startupProbe?.httpGet).toMatchObject({ path: "/readyz", port: 17000 });
    expect(sidecar.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly ?? false])).toEqual([
      ["mcsa", "/var/run/secrets/admiralty.io", false],
      [expect.stringMatching(/^mcsa-cluster2-default-pod-lister/), `/etc/mcsa/secrets/${README_IMPORT}`, true],
    ]);
    const volumes = pod.spec?.volumes ?? [];
    expect(volumes.find((v) => v.name === "mcsa")?.emptyDir).toMatchObject({ medium: "Memory" });
    const secretVolume = volumes.find((v) => v.secret !== undefined);
    expect(secretVolume?.secret).toMatchObject({ secretName: secret, defaultMode: 0o444 });

    const app = byName(pod, "multicluster-client");
    expect(app.volumeMounts?.filter((m) => m.name.startsWith("mcsa"))).toEqual([{ name: "mcsa", mountPath: "/var/run/secrets/admiralty.io", readOnly: true }]);
    expect(app.env).toEqual([
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17001" },
    ]);
    expect(pod.spec?.restartPolicy).toBe("Never");
  });

  it("stores the same pod unchanged in an unlabelled namespace", async () => {
    const created = await core1.createNamespacedPod({ namespace: unlabelled, body: readmePod() });
    expect(created.spec?.initContainers).toBeUndefined();
    expect(created.spec?.volumes).toBeUndefined();
    expect(created.spec?.containers.map((c) => c.name)).toEqual(["multicluster-client"]);
    expect(created.spec?.containers[0]?.env).toBeUndefined();
    expect(created.metadata?.annotations).toEqual({ [IMPORT_ANNOTATION]: README_IMPORT });
  });

  it("injects into the pods of a Deployment (its template, as a ReplicaSet would create them)", async () => {
    const name = uniqueName("client");
    const template = { ...readmePod(), metadata: { labels: { app: name }, annotations: { [IMPORT_ANNOTATION]: README_IMPORT } } };
    template.spec!.restartPolicy = "Always";
    const deployment = await apps1.createNamespacedDeployment({
      namespace: labelled,
      body: { metadata: { name }, spec: { selector: { matchLabels: { app: name } }, template } },
    });
    // Deployments themselves are not touched: only pods are.
    expect(deployment.spec?.template.spec?.initContainers).toBeUndefined();
    // No ReplicaSet controller runs in the test clusters: create the pod it would create (server-side dry run).
    const pod = await core1.createNamespacedPod({
      namespace: labelled,
      dryRun: "All",
      body: {
        metadata: {
          ...deployment.spec!.template.metadata,
          generateName: `${name}-5d8f7b9c4-`,
          ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `${name}-5d8f7b9c4`, uid: "8a3c1f52-0c7e-4f7e-9d43-6f0c2b1e9a11", controller: true }],
        },
        spec: deployment.spec!.template.spec!,
      },
    });
    expect(pod.metadata?.name).toMatch(new RegExp(`^${name}-5d8f7b9c4-`));
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(["mcsa-sidecar"]);
    expect(byName(pod, "multicluster-client").env?.map((e) => e.name)).toEqual(["KUBECONFIG", "MCSA_PROXY_URL", "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL"]);
  });

  it("refuses a pod naming a missing import, saying which", async () => {
    const { code, message } = await refusal(core1.createNamespacedPod({ namespace: labelled, body: readmePod("cluster2-nope", "refused") }));
    expect(code).toBe(403);
    expect(message).toContain('admission webhook "sidecar-injector.multicluster.admiralty.io" denied the request');
    expect(message).toContain(`service account import "cluster2-nope" not found in namespace "${labelled}"`);
    expect(await statusOf(core1.readNamespacedPod({ name: "refused", namespace: labelled }))).toBe(404);
  });

  it("refuses a pod naming an import that is not ready, with the import's reason", async () => {
    const { message } = await refusal(core1.createNamespacedPod({ namespace: labelled, body: readmePod("cluster2-not-ready", "not-ready") }));
    expect(message).toContain('service account import "cluster2-not-ready" is not ready: ClusterNotFound: cluster "cluster2" is not registered');
  });

  it("refuses a pod whose ready import's Secret is missing, saying it comes back", async () => {
    const name = uniqueName("no-secret");
    const secret = await readyImport(labelled, name);
    await core1.deleteNamespacedSecret({ name: secret, namespace: labelled });
    const { code, message } = await refusal(core1.createNamespacedPod({ namespace: labelled, body: readmePod(name, uniqueName("no-secret-pod")) }));
    expect(code).toBe(403);
    expect(message).toContain(`service account import "${name}" is not usable: its Secret "${secret}" is missing; the controller restores it within 30 s`);
  });

  it("gives a pod naming two imports both", async () => {
    const pod = await core1.createNamespacedPod({
      namespace: labelled,
      body: readmePod(` ${README_IMPORT}, cluster3-default-pod-lister ,`, "two-imports"),
    });
    expect(byName(pod, "mcsa-sidecar").args?.slice(3)).toEqual([`--import=${README_IMPORT}=17001`, "--import=cluster3-default-pod-lister=17002"]);
    expect(pod.spec?.volumes?.filter((v) => v.secret).length).toBe(2);
    expect(byName(pod, "multicluster-client").env).toEqual([
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER3_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17002" },
    ]);
  });

  it("finds an import made ready a moment ago (no waiting for its watch event)", async () => {
    for (let i = 0; i < 3; i++) {
      const name = uniqueName("fresh");
      await readyImport(labelled, name);
      const pod = await core1.createNamespacedPod({ namespace: labelled, body: readmePod(name, uniqueName("fresh-pod")) });
      expect(byName(pod, "mcsa-sidecar").args).toContain(`--import=${name}=17001`);
    }
  });

  it("leaves pods without the annotation alone, even in a labelled namespace", async () => {
    const pod = await core1.createNamespacedPod({ namespace: labelled, body: readmePod(null, "plain") });
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(pod.metadata?.annotations).toBeUndefined();
  });

  it("logged decisions without any token", async () => {
    expect(manager!.text).toContain('"msg":"injected sidecar"');
    expect(manager!.text).toContain('"msg":"refused pod"');
    expect(manager!.text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    expect(manager!.running).toBe(true);
  });
});

describe("kubectl mcsa uninstall", () => {
  it("removes the webhook, the API, the controller and its identity (on cluster2, installed just for this)", async () => {
    const install = await mcsa("cluster2", "install", "--wait=false");
    expect(install.code, install.stderr).toBe(0);
    const uninstall = await mcsa("cluster2", "uninstall", "--timeout", "30s");
    expect(uninstall.stderr).toBe("");
    expect(uninstall.code).toBe(0);
    for (const line of [
      "mutatingwebhookconfiguration/mcsa-webhook deleted",
      "customresourcedefinition/serviceaccountimports.multicluster.admiralty.io deleted",
      `deployment/${MANAGER_NAME} deleted`,
      `service/${WEBHOOK_SERVICE} deleted`,
      `secret/${WEBHOOK_SECRET} deleted`,
      "clusterrole/mcsa-controller deleted",
    ]) {
      expect(uninstall.stdout).toContain(line);
    }
    const kc2 = adminConfig(state, "cluster2");
    expect(await statusOf(kc2.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION }))).toBe(404);
    expect(await statusOf(kc2.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE }))).toBe(404);
    // The namespace goes unless other clusters' identities live there (bootstrap --from cluster2 by another test).
    const core2 = kc2.makeApiClient(CoreV1Api);
    if (uninstall.stdout.includes(`namespace/${SYSTEM_NAMESPACE} kept`)) {
      expect(await statusOf(core2.readNamespace({ name: SYSTEM_NAMESPACE }))).toBe(200);
    } else {
      expect(uninstall.stdout).toContain(`namespace/${SYSTEM_NAMESPACE} deleted`);
      // Gone for good before the next test file may install again.
      await eventually("the system namespace to be gone", async () => ((await statusOf(core2.readNamespace({ name: SYSTEM_NAMESPACE }))) === 404 ? true : undefined), 60_000, 500);
    }
    const again = await mcsa("cluster2", "uninstall");
    expect(again.code).toBe(0);
  });
});
