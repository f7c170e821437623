// The getting-started story in real pods on the harness's node (cluster1): kubectl mcsa install runs
// the in-cluster process as its real Deployment, the API server calls its webhook through the
// Service, and the injected sidecar runs beside the app as a native sidecar. cluster2 has no node:
// its nginx pod is only an object there, created and listed, never run.
import { createHash } from "node:crypto";
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { IMPORT_LABEL, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SIDECAR_CONTAINER_NAME, SYSTEM_NAMESPACE } from "../../common/api.ts";
import { MANAGER_NAME, WEBHOOK_CONFIGURATION, WEBHOOK_SERVICE } from "../../common/manifests.ts";
import { adminConfig, createPodReader, kubectl, statusOf, uniqueName } from "../../harness/kube.ts";
import { eventually, runNode } from "../../harness/run.ts";
import {
  KUBECTL_IMAGE,
  MCSA_IMAGE,
  SHELL_IMAGE,
  clientPod,
  containerStartedAt,
  describePod,
  importFile,
  listingScript,
  loadProjectImages,
  podCgroup,
  podProcesses,
  pollingScript,
  serverForPods,
  waitForPod,
  waitForPodGone,
} from "../../scripts/pods.ts";

const state = inject("clusters");
const withNode = state.clusters.some((c) => c.node);
const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const apps1 = adminConfig(state, "cluster1").makeApiClient(AppsV1Api);
const admission1 = adminConfig(state, "cluster1").makeApiClient(AdmissionregistrationV1Api);
const namespace = uniqueName("pods");
const remoteSA = uniqueName("pod-lister");
const registration = uniqueName("c2");
const IMPORT = `${registration}-${remoteSA}`.slice(0, 63);
const nginx = `${namespace}-nginx`;
const sha256 = (s: string) => createHash("sha256").update(s.trim()).digest("hex");

const mcsa = (...args: string[]) => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args], { timeoutMs: 180_000 });
const k1 = (...args: string[]) => kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", namespace, ...args]);

async function secretToken(): Promise<string> {
  const secrets = await core1.listNamespacedSecret({ namespace, labelSelector: `${IMPORT_LABEL}=${IMPORT}` });
  return Buffer.from(secrets.items[0]!.data!.token!, "base64").toString("utf8");
}

describe.skipIf(!withNode)("in real pods (cluster1's node)", () => {
  beforeAll(() => {
    loadProjectImages(state);
  }, 300_000);

  afterAll(async () => {
    const uninstall = await mcsa("uninstall", "--context", "cluster1", "--timeout", "60s");
    expect(uninstall.code, uninstall.stderr).toBe(0);
    // Its namespace goes once the manager's pod has stopped: the next test file installs into it.
    await eventually(`namespace ${SYSTEM_NAMESPACE} to be gone`, async () => ((await statusOf(core1.readNamespace({ name: SYSTEM_NAMESPACE }))) === 404 ? true : undefined), 90_000, 250);
  }, 180_000);

  const webhookConfiguration = async () => (await statusOf(admission1.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION }))) === 200;

  it("install with an image the node does not have stops at once, in one line that says what to do, and switches no webhook on", async () => {
    const before = await webhookConfiguration();
    const started = Date.now();
    const install = await mcsa("install", "--context", "cluster1", "--image", "localhost/not-loaded:dev", "--image-pull-policy", "Never", "--wait", "--timeout", "2m");
    expect(install.code).toBe(1);
    expect(install.stderr.trim().split("\n")).toHaveLength(1);
    expect(install.stderr).toMatch(/cannot become ready: pod mcsa-manager-\S+: ErrImageNeverPull: .*load image "localhost\/not-loaded:dev" into the node's container runtime.*then run install again/);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await webhookConfiguration()).toBe(before);
  }, 90_000);

  it("install whose pods never become ready stops at --timeout with the pod's reason", async () => {
    const before = await webhookConfiguration();
    // The shell image has no mcsa-manager: the container cannot start, again and again.
    const install = await mcsa("install", "--context", "cluster1", "--image", SHELL_IMAGE, "--image-pull-policy", "Never", "--wait", "--timeout", "15s");
    expect(install.code).toBe(1);
    expect(install.stderr.trim().split("\n")).toHaveLength(1);
    expect(install.stderr).toMatch(/is not ready after 15s: pod mcsa-manager-\S+: .*(CrashLoopBackOff|RunContainerError|StartError|restarted).*see why in kubectl -n multicluster-service-account logs deployment\/mcsa-manager/);
    expect(await webhookConfiguration()).toBe(before);
  }, 90_000);

  it("install runs the manager as its Deployment on the node, and the API server calls the webhook through its Service", async () => {
    const install = await mcsa("install", "--context", "cluster1", "--image", MCSA_IMAGE, "--image-pull-policy", "Never", "--wait", "--timeout", "2m");
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain("mutatingwebhookconfiguration/mcsa-webhook applied");
    const deployment = await apps1.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
    expect(deployment.status?.availableReplicas).toBe(1);
    const [pod] = (await core1.listNamespacedPod({ namespace: SYSTEM_NAMESPACE, labelSelector: "app.kubernetes.io/component=manager" })).items.filter((p) => !p.metadata?.deletionTimestamp);
    expect(pod?.spec?.nodeName).toBe(state.clusters[0]!.node!.name);
    expect(pod?.spec?.containers[0]?.image).toBe(MCSA_IMAGE);
    const logs = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", SYSTEM_NAMESPACE, "logs", `deployment/${MANAGER_NAME}`]);
    expect(logs.stdout).toContain("import controller started");
  }, 180_000);

  describe("with cluster2's pod-lister imported", () => {
    beforeAll(async () => {
      const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", registration, "--server", serverForPods(state, "cluster2"));
      expect(bootstrap.code, bootstrap.stderr).toBe(0);
      await createPodReader(state, "cluster2", "default", remoteSA, ["list"]);
      await core2.createNamespacedPod({ namespace: "default", body: { metadata: { name: nginx }, spec: { containers: [{ name: "nginx", image: "nginx" }] } } });
      await core1.createNamespace({ body: { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
      const imported = await mcsa(
        "import", IMPORT, "--context", "cluster1", "-n", namespace, "--cluster", registration, "--remote-namespace", "default",
        "--service-account", remoteSA, "--remote-context", "cluster2", "--wait", "--timeout", "60s",
      );
      expect(imported.code, imported.stderr).toBe(0);
    }, 120_000);

    afterAll(async () => {
      await core1.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
      await core2.deleteNamespacedPod({ name: nginx, namespace: "default" }).catch(() => undefined);
      // Cleanup: the namespace and its pods are going, whatever a failed test left in it.
      const unbootstrap = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", registration, "--force");
      expect(unbootstrap.code, unbootstrap.stderr).toBe(0);
    }, 120_000);

    it("the webhook configuration names the Service, not a URL, and the API server's call through it injects the sidecar", async () => {
      const configuration = await admission1.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
      expect(configuration.webhooks?.[0]?.clientConfig.service?.name).toBe(WEBHOOK_SERVICE);
      expect(configuration.webhooks?.[0]?.clientConfig.url).toBeUndefined();
      const probe = await core1.createNamespacedPod({
        namespace,
        dryRun: "All",
        body: clientPod({ name: "probe", importName: IMPORT, image: SHELL_IMAGE, script: "true" }),
      });
      expect(probe.spec?.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER_NAME);
      expect(probe.spec?.initContainers?.[0]?.image).toBe(MCSA_IMAGE);
    });

    it("the story: the annotated multicluster-client pod lists cluster2's pods with its KUBECONFIG and through the proxy, and completes", async () => {
      const created = Date.now();
      await core1.createNamespacedPod({
        namespace,
        body: clientPod({ name: "multicluster-client", importName: IMPORT, image: KUBECTL_IMAGE, script: listingScript(IMPORT) }),
      });
      const done = await waitForPod(core1, namespace, "multicluster-client", "phase Succeeded", (p) => {
        if (p.status?.phase === "Failed") throw new Error(`the app failed: ${describePod(p)}`);
        return p.status?.phase === "Succeeded" ? p : undefined;
      }, 120_000);
      const logs = await k1("logs", "multicluster-client", "-c", "multicluster-client");
      expect(logs.code, logs.stderr).toBe(0);
      // The files were there when the app started: the sidecar's startup probe held it back.
      expect(logs.stdout).toContain("at start: /var/run/secrets/admiralty.io/kubeconfig is there");
      const [, viaKubectl = "", viaProxy = ""] = logs.stdout.split(/^\$ /m);
      expect(viaKubectl).toMatch(new RegExp(`^${nginx}\\s+0/1\\s+Pending`, "m"));
      expect(viaProxy.split("\n")).toContain(nginx);
      // The native sidecar started first and was stopped once the app completed.
      const sidecarStarted = containerStartedAt(done, SIDECAR_CONTAINER_NAME)!;
      const appStarted = containerStartedAt(done, "multicluster-client")!;
      expect(sidecarStarted.getTime()).toBeLessThanOrEqual(appStarted.getTime());
      expect(done.status?.initContainerStatuses?.[0]?.state?.terminated).toBeDefined();
      console.error(`[pods] multicluster-client: created → Succeeded in ${((Date.now() - created) / 1000).toFixed(1)}s`);
    }, 150_000);

    describe("a running app", () => {
      let pod: V1Pod;
      const name = "poller";
      const tokenFile = importFile(IMPORT, "token");
      // Digests only: a failing comparison must not print a token.
      const tokenInPod = async () => (await k1("exec", name, "-c", name, "--", "sh", "-c", `tr -d '\\n' < ${tokenFile} | sha256sum`)).stdout.split(/\s/)[0];
      const logLines = async () => (await k1("logs", name, "-c", name)).stdout.trim().split("\n");

      beforeAll(async () => {
        await core1.createNamespacedPod({ namespace, body: clientPod({ name, importName: IMPORT, image: SHELL_IMAGE, script: pollingScript(IMPORT) }) });
        pod = await waitForPod(core1, namespace, name, "its app running", (p) => (p.status?.containerStatuses?.[0]?.state?.running ? p : undefined));
        await eventually("the app's first successful call", async () => ((await logLines()).some((l) => / ok$/.test(l)) ? true : undefined), 30_000, 500);
      }, 120_000);

      it("a rotate reaches the running container's token file, and the app keeps working", async () => {
        const before = await secretToken();
        expect(await tokenInPod()).toBe(sha256(before));
        const rotatedAt = Date.now();
        const rotated = await mcsa("rotate", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "30s");
        expect(rotated.code, rotated.stderr).toBe(0);
        const after = await secretToken();
        expect(after).not.toBe(before);
        // The kubelet refreshes Secret volumes on its sync (10 s on the harness's node), then the sidecar rewrites the file.
        await eventually("the new token in the app container's file", async () => ((await tokenInPod()) === sha256(after) ? true : undefined), 60_000, 500);
        console.error(`[pods] rotate command started → new token in the app container after ${((Date.now() - rotatedAt) / 1000).toFixed(1)}s`);
        const seen = (await logLines()).length;
        await eventually("two more calls after the rotation", async () => ((await logLines()).length >= seen + 2 ? true : undefined), 15_000, 500);
        const lines = await logLines();
        expect(lines.filter((l) => !/ ok$/.test(l))).toEqual([]);
      }, 120_000);

      it("remove makes the app's next remote call fail with 401 within 30 s", async () => {
        // The running app uses the import: remove names it and refuses until --force.
        const refused = await mcsa("remove", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "30s");
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/--force/);
        const removed = await mcsa("remove", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "30s", "--force");
        expect(removed.code, removed.stderr).toBe(0);
        const removedAt = Math.floor(Date.now() / 1000);
        const first401 = await eventually(
          "a 401 in the app's log",
          async () => (await logLines()).map((l) => /^(\d+) .*\b401\b/.exec(l)).find((m) => m && Number(m[1]) >= removedAt - 1),
          35_000,
          500,
        );
        const seconds = Number(first401![1]) - removedAt;
        console.error(`[pods] remove → first 401 in the app after ${seconds}s`);
        expect(seconds).toBeLessThanOrEqual(30);
      }, 90_000);

      it("deleting the pod ends the sidecar: no process of the pod is left on the node", async () => {
        const uid = pod.metadata!.uid!;
        expect(podProcesses(uid).length).toBeGreaterThan(1);
        await core1.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 1 });
        await waitForPodGone(core1, namespace, name);
        await eventually("the pod's cgroup to be gone", async () => (podProcesses(uid).length === 0 && podCgroup(uid) === undefined ? true : undefined), 20_000, 250);
      }, 60_000);
    });
  });
});
