// cluster1's real node: a kubelet and containerd run pods, and the API server reaches them as a
// real cluster's does (logs, exec, port-forward through the kubelet; Services through endpoints).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { type Server, createServer } from "node:https";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCA, issue } from "../../common/pki.ts";
import { importImage, loadedImages, nodeOf } from "../../harness/clusters.ts";
import { adminConfig, kubectl, statusOf, uniqueName } from "../../harness/kube.ts";
import { eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");
const node = state.clusters.find((c) => c.node)?.node;
const BUSYBOX = "localhost/mcsa-test-busybox:1";
const PAUSE = node?.sandboxImage ?? "localhost/pause:dev";

/**
 * A single-layer OCI image layout tar of busybox-static and the applets named, written with tar and
 * sha256 (no registry, no Docker): what `ctr images import` takes.
 */
function busyboxImage(work: string, name: string, applets: string[], config: { Entrypoint?: string[]; Cmd?: string[] }): string {
  const slug = name.replace(/[^a-z0-9]+/g, "-");
  const rootfs = join(work, `${slug}-rootfs`);
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  mkdirSync(join(rootfs, "tmp"), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
  for (const applet of applets) symlinkSync("busybox", join(rootfs, "bin", applet));
  const layout = join(work, `${slug}-layout`);
  const blobs = join(layout, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const layerTar = join(work, `${slug}-layer.tar`);
  execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", layerTar, "."]);
  const blob = (content: Buffer) => {
    const hex = createHash("sha256").update(content).digest("hex");
    writeFileSync(join(blobs, hex), content);
    return { digest: `sha256:${hex}`, size: content.length };
  };
  const layer = blob(readFileSync(layerTar));
  const imageConfig = blob(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: { Env: ["PATH=/bin"], ...config },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...imageConfig },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    ),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "io.containerd.image.name": name } }],
    }),
  );
  const tar = join(work, `${slug}.tar`);
  execFileSync("tar", ["-C", layout, "-cf", tar, "."]);
  return tar;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = httpRequest(url, { timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", fail);
    req.end();
  });
}

describe.skipIf(!node)("cluster1's node", () => {
  const kc = adminConfig(state, "cluster1");
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const namespace = uniqueName("node");
  const ctx = ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", namespace];
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "mcsa-node-test-"));
    importImage(state, busyboxImage(work, BUSYBOX, ["sh", "cat", "echo", "mkdir", "httpd", "sleep", "ls"], { Entrypoint: ["/bin/sh"] }));
    if (!loadedImages(state).includes(PAUSE)) {
      // No sandbox image was provided (images/ builds the real one): a busybox that sleeps and
      // exits on SIGTERM stands in, for this test run only.
      const pauseScript = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done";
      importImage(state, busyboxImage(work, PAUSE, ["sh", "sleep"], { Entrypoint: ["/bin/sh", "-c", pauseScript] }));
    }
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // The serviceaccount controller gives every namespace its "default" service account.
    await eventually("the namespace's default service account", async () => (await statusOf(core.readNamespacedServiceAccount({ name: "default", namespace }))) === 200 || undefined);
  }, 120_000);

  afterAll(async () => {
    await core.deleteNamespace({ name: namespace });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("is Ready, runs the built kubelet on containerd, and holds the imported images", async () => {
    const n = await core.readNode({ name: node!.name });
    expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(n.spec?.taints ?? []).toEqual([]);
    expect(n.status?.nodeInfo?.kubeletVersion).toBe(state.binaries.kubernetesVersion);
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(n.status?.addresses).toContainEqual({ type: "InternalIP", address: node!.address });
    expect(loadedImages(state)).toEqual(expect.arrayContaining([BUSYBOX, PAUSE]));
    console.log(`[node] ${node!.name} Ready ${node!.readySeconds.toFixed(1)}s after its kubelet started`);
  });

  describe("a pod with a Secret and a projected service-account token", () => {
    const pod = "web";
    let created: V1Pod;

    beforeAll(async () => {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name: "greeting" }, stringData: { word: "hello-secret" } } });
      const started = Date.now();
      created = await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: pod, labels: { app: "web" } },
          spec: {
            // Set by hand: the harness runs without the ServiceAccount admission plugin.
            serviceAccountName: "default",
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: "web",
                image: BUSYBOX,
                imagePullPolicy: "Never",
                args: ["-c", "echo started-web; mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 8080 -h /www"],
                ports: [{ containerPort: 8080 }],
                volumeMounts: [
                  { name: "greeting", mountPath: "/etc/greeting", readOnly: true },
                  { name: "token", mountPath: "/var/run/token", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "greeting", secret: { secretName: "greeting" } },
              { name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "node-test", expirationSeconds: 600 } }] } },
            ],
          },
        },
      });
      await eventually(
        "the pod to run",
        async () => {
          const p = await core.readNamespacedPod({ name: pod, namespace });
          if (p.status?.phase === "Failed") throw new Error(`pod failed: ${JSON.stringify(p.status)}`);
          return p.status?.phase === "Running" || undefined;
        },
        60_000,
        50,
      );
      console.log(`[node] pod create → Running in ${((Date.now() - started) / 1000).toFixed(2)}s`);
    }, 90_000);

    it("is scheduled onto the node and gets an address on the pod network", async () => {
      const p = await core.readNamespacedPod({ name: pod, namespace });
      expect(p.spec?.nodeName).toBe(node!.name);
      expect(p.status?.podIP).toMatch(/^10\.88\./);
      // The host reaches the pod over the CNI bridge.
      expect(await get(`http://${p.status!.podIP}:8080/`)).toEqual({ status: 200, body: "hello-from-pod\n" });
    });

    it("kubectl logs shows what it printed", async () => {
      const r = await kubectl(state, [...ctx, "logs", pod]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("started-web\n");
    });

    it("kubectl exec reads the Secret volume and the projected token inside the container", async () => {
      const secret = await kubectl(state, [...ctx, "exec", pod, "--", "cat", "/etc/greeting/word"]);
      expect(secret).toMatchObject({ code: 0, stdout: "hello-secret" });
      const token = await kubectl(state, [...ctx, "exec", pod, "--", "cat", "/var/run/token/token"]);
      expect(token.code).toBe(0);
      const claims = JSON.parse(Buffer.from(token.stdout.split(".")[1]!, "base64url").toString("utf8"));
      expect(claims).toMatchObject({ aud: ["node-test"], sub: `system:serviceaccount:${namespace}:default` });
      expect(claims["kubernetes.io"].pod.name).toBe(pod);
      expect(claims["kubernetes.io"].node.name).toBe(node!.name);
    });

    it("kubectl port-forward reaches the container's port", async () => {
      let child: ChildProcess | undefined;
      try {
        child = spawn(state.kubectl, [...ctx, "port-forward", `pod/${pod}`, ":8080"], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout!.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.stderr!.on("data", (c: Buffer) => (out += c.toString("utf8")));
        const port = await eventually("kubectl port-forward to listen", async () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1], 20_000, 50);
        expect(await get(`http://127.0.0.1:${port}/`)).toEqual({ status: 200, body: "hello-from-pod\n" });
      } finally {
        if (child && child.exitCode === null) {
          const exited = new Promise((done) => child!.once("exit", done));
          child.kill("SIGTERM");
          await exited;
        }
      }
    });

    it("the API server reaches it through a Service's endpoints (service proxy)", async () => {
      await core.createNamespacedService({ namespace, body: { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] } } });
      const body = await eventually(
        "the Service to proxy to the pod",
        async () => {
          const r = await kubectl(state, [...ctx.slice(0, 4), "get", "--raw", `/api/v1/namespaces/${namespace}/services/http:web:80/proxy/`]);
          return r.code === 0 ? r.stdout : undefined;
        },
        30_000,
      );
      expect(body).toBe("hello-from-pod\n");
    });

    // (Its log directory goes with the kubelet's container garbage collection, once a minute; down removes it.)
    it("deleting it stops its containers and removes its volume mounts and cgroups", async () => {
      const uid = created.metadata!.uid!;
      await core.deleteNamespacedPod({ name: pod, namespace, gracePeriodSeconds: 1 });
      await eventually("the pod to be gone", async () => (await statusOf(core.readNamespacedPod({ name: pod, namespace }))) === 404 || undefined, 30_000);
      const mounts = readFileSync("/proc/self/mountinfo", "utf8");
      expect(mounts).not.toContain(uid);
      const podCgroup = `/sys/fs/cgroup/pids/kubepods/besteffort/pod${uid}`;
      await eventually(`${podCgroup} to be removed`, async () => !existsSync(podCgroup) || undefined, 20_000);
    });
  });

  it("a Deployment rolls out one replica", async () => {
    const name = uniqueName("deploy");
    const started = Date.now();
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{ name: "sleep", image: BUSYBOX, imagePullPolicy: "Never", args: ["-c", "exec sleep 3600"] }],
            },
          },
        },
      },
    });
    const r = await kubectl(state, [...ctx, "rollout", "status", `deployment/${name}`, "--timeout=60s"]);
    expect(r.stdout).toContain(`deployment "${name}" successfully rolled out`);
    console.log(`[node] Deployment create → rolled out in ${((Date.now() - started) / 1000).toFixed(2)}s`);
    const d = await apps.readNamespacedDeployment({ name, namespace });
    expect(d.status?.availableReplicas).toBe(1);
  });

  describe("the API server calls a webhook through its Service without kube-proxy", () => {
    let server: Server;
    const service = "deny-webhook";
    const webhook = uniqueName("deny");

    beforeAll(async () => {
      // A Service with no selector whose endpoint is this test's own server on the host's address.
      const hostIP = Object.values(networkInterfaces())
        .flat()
        .find((a) => a && a.family === "IPv4" && !a.internal)!.address;
      const ca = await createCA("node-test-webhook-ca");
      const cert = await issue(ca, { commonName: `${service}.${namespace}.svc`, usage: "server", dnsNames: [`${service}.${namespace}.svc`] });
      server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString("utf8")));
        req.on("end", () => {
          const review = JSON.parse(body);
          const name: string = review.request.name ?? review.request.object?.metadata?.name ?? "";
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              apiVersion: "admission.k8s.io/v1",
              kind: "AdmissionReview",
              response: { uid: review.request.uid, allowed: !name.startsWith("deny-"), status: { message: "denied by the node test's webhook", code: 403 } },
            }),
          );
        });
      });
      await new Promise<void>((done) => server.listen(0, hostIP, done));
      const port = (server.address() as { port: number }).port;
      await core.createNamespacedService({ namespace, body: { metadata: { name: service }, spec: { ports: [{ port: 443, targetPort: port }] } } });
      await core.createNamespacedEndpoints({
        namespace,
        body: { metadata: { name: service }, subsets: [{ addresses: [{ ip: hostIP }], ports: [{ port }] }] },
      });
      await kc.makeApiClient(AdmissionregistrationV1Api).createValidatingWebhookConfiguration({
        body: {
          metadata: { name: webhook },
          webhooks: [
            {
              name: "deny.node-test.mcsa.admiralty.io",
              admissionReviewVersions: ["v1"],
              sideEffects: "None",
              failurePolicy: "Fail",
              timeoutSeconds: 5,
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
              rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"] }],
              clientConfig: { service: { namespace, name: service, port: 443 }, caBundle: Buffer.from(ca.cert).toString("base64") },
            },
          ],
        },
      });
    });

    afterAll(async () => {
      await kc.makeApiClient(AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name: webhook });
      server?.close();
    });

    it("denies what the webhook denies and allows the rest", async () => {
      const message = await eventually(
        "the webhook to answer",
        async () => {
          try {
            await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: uniqueName("deny-me") } } });
            return undefined;
          } catch (error) {
            const text = String((error as { body?: unknown }).body ?? error);
            return text.includes("denied by the node test's webhook") ? text : undefined;
          }
        },
        20_000,
      );
      expect(message).toContain("denied by the node test's webhook");
      expect(await statusOf(core.createNamespacedConfigMap({ namespace, body: { metadata: { name: uniqueName("allowed") } } }))).toBe(200);
    });
  });

  it("a second `up` with a node refuses in one line and creates nothing", async () => {
    const dir = join(tmpdir(), uniqueName("mcsa-second-node"));
    const r = await runNode("harness/cli.ts", ["up", "--dir", dir, "--count", "1"], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([
      `error: a node already runs on this machine (kubelet pid ${node!.kubelet.pid}, clusters in ${state.dir}) and only one can: stop it with \`npm run clusters -- down --dir ${state.dir}\`, or start without a node: \`npm run clusters -- up --no-node\``,
    ]);
    expect(existsSync(dir)).toBe(false);
  });
});

describe.runIf(!node)("without a node (MCSA_NO_NODE=1)", () => {
  it("importing an image says the clusters have none", () => {
    expect(() => nodeOf(state)).toThrow(/have no node \(started with --no-node or MCSA_NO_NODE=1\)/);
  });
});
