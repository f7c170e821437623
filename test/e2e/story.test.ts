// The whole story, as a user lives it: import → inject → sidecar → proxy, then rotate under load.
// The controller and webhook run as one local process (as the service account install creates);
// the pod's sidecar runs through sidecar-local, exactly as the webhook injected it.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { IMPORT_ANNOTATION, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SIDECAR_CONTAINER_NAME } from "../../common/api.ts";
import { startLocalManager } from "../../harness/install.ts";
import { adminConfig, createPodReader, kubectl, uniqueName } from "../../harness/kube.ts";
import { type Background, eventually, runNode, startSidecarLocal } from "../../harness/run.ts";

const state = inject("clusters");
const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const namespace = uniqueName("story");
const remoteSA = uniqueName("pod-lister");
const IMPORT = `cluster2-${remoteSA}`;
const tmp = mkdtempSync(join(tmpdir(), "mcsa-story-"));
let manager: Background;
let sidecar: Background;
let podKubeconfig: string;
let proxyUrl: string;
let tokenFile: string;

const mcsa = (...args: string[]) => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);

function get(url: string): Promise<number> {
  return new Promise((done) => {
    request(url, (res) => {
      res.resume();
      res.on("end", () => done(res.statusCode ?? 0));
    })
      .on("error", () => done(0))
      .end();
  });
}

async function currentSecretToken(): Promise<string> {
  const secrets = await core1.listNamespacedSecret({ namespace, labelSelector: `${IMPORT_ANNOTATION}=${IMPORT}` });
  return Buffer.from(secrets.items[0]!.data!.token!, "base64").toString("utf8");
}

beforeAll(async () => {
  const install = await mcsa("install", "--context", "cluster1", "--wait=false");
  expect(install.code, install.stderr).toBe(0);
  const caFile = join(tmp, "webhook-ca.pem");
  const started = await startLocalManager(state, "cluster1", caFile);
  manager = started.manager;
  const url = started.webhookUrl;
  const local = await mcsa("install", "--context", "cluster1", "--webhook-url", url, "--webhook-ca-file", caFile);
  expect(local.code, local.stderr).toBe(0);

  const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  await createPodReader(state, "cluster2", "default", remoteSA);
  await core2.createNamespacedPod({ namespace: "default", body: { metadata: { name: `${namespace}-nginx` }, spec: { containers: [{ name: "nginx", image: "nginx" }] } } });
  await core1.createNamespace({ body: { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await mcsa("remove", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "20s");
  // As found: the next file (helm.test.ts) needs cluster2 without kubectl mcsa's namespace.
  await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force");
  await manager?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("import → inject → sidecar → proxy", () => {
  it("imports, injects the README's pod, and its sidecar serves the remote API", async () => {
    const imported = await mcsa(
      "import", IMPORT, "--context", "cluster1", "-n", namespace, "--cluster", "cluster2", "--remote-namespace", "default",
      "--service-account", remoteSA, "--remote-context", "cluster2", "--wait", "--timeout", "30s",
    );
    expect(imported.code, imported.stderr).toBe(0);

    const pod = {
      metadata: { name: "multicluster-client", annotations: { [IMPORT_ANNOTATION]: IMPORT } },
      spec: { restartPolicy: "Never", containers: [{ name: "multicluster-client", image: "multicluster-client" }] },
    };
    // The API server loads webhook configurations through an informer: wait until ours intercepts.
    await eventually("the webhook to intercept pod creation", async () => {
      const probe = await core1.createNamespacedPod({ namespace, body: pod, dryRun: "All" });
      return probe.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
    }, 30_000, 250);
    const stored = await core1.createNamespacedPod({ namespace, body: pod });
    expect(stored.spec?.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER_NAME);

    sidecar = await startSidecarLocal(["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", namespace, "multicluster-client", "--dir", join(tmp, "pod")]);
    podKubeconfig = /KUBECONFIG=(\S+)/.exec(sidecar.text)![1]!;
    proxyUrl = new RegExp(`import ${IMPORT}: (http://127\\.0\\.0\\.1:\\d+)`).exec(sidecar.text)![1]!;
    tokenFile = join(podKubeconfig, "..", "serviceaccountimports", IMPORT, "token");

    const viaKubeconfig = await kubectl(state, ["--kubeconfig", podKubeconfig, "get", "pods", "-n", "default", "-o", "name"]);
    expect(viaKubeconfig.stderr).toBe("");
    expect(viaKubeconfig.stdout).toContain(`pod/${namespace}-nginx`);
    const emptyConfig = join(tmp, "empty.kubeconfig");
    writeFileSync(emptyConfig, "apiVersion: v1\nkind: Config\n");
    const viaProxy = await kubectl(state, ["--kubeconfig", emptyConfig, "--server", proxyUrl, "get", "pods", "-n", "default", "-o", "name"]);
    expect(viaProxy.stderr).toBe("");
    expect(viaProxy.stdout).toContain(`pod/${namespace}-nginx`);
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(await currentSecretToken());
  });

  it("rotates 20 times: the pod's files follow each new token within a second, and no request through the proxy fails", { timeout: 180_000 }, async () => {
    let stop = false;
    const failures: number[] = [];
    let requests = 0;
    const load = (async () => {
      while (!stop) {
        const status = await get(`${proxyUrl}/api/v1/namespaces/default/pods`);
        requests++;
        if (status !== 200) failures.push(status);
      }
    })();
    try {
      for (let i = 0; i < 20; i++) {
        const before = await currentSecretToken();
        const rotated = await mcsa("rotate", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "20s");
        expect(rotated.code, rotated.stderr).toBe(0);
        const updated = Date.now();
        const token = await currentSecretToken();
        expect(token).not.toBe(before);
        await eventually("the pod's token file to hold the new token", async () => (readFileSync(tokenFile, "utf8").trim() === token ? true : undefined), 5_000, 20);
        expect(Date.now() - updated).toBeLessThan(1_000);
      }
    } finally {
      stop = true;
      await load;
    }
    expect(requests).toBeGreaterThan(10);
    expect(failures).toEqual([]);
  });
});
