// The sidecar against a real remote cluster (cluster2): an import Secret volume laid out as the
// kubelet does, the sidecar as a child process, and the real kubectl as the app.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, RbacAuthorizationV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { SIDECAR_CONTAINER_NAME } from "../../common/api.ts";
import { buildImportSecretData } from "../../common/import-secret.ts";
import { atomicWrite } from "../../sidecar/kubelet-layout.ts";
import { auditEvents } from "../../harness/audit.ts";
import { restartApiserver, stopApiserver } from "../../harness/cluster.ts";
import { freePort } from "../../harness/processes.ts";
import { adminConfig, cluster, kubectl, uniqueName } from "../../harness/kube.ts";
import { httpCall, importSecretFiles, startSidecar, waitFor, type RunningSidecar } from "../../harness/sidecar.ts";

const state = inject("clusters");
const namespace = "default";
const info2 = cluster(state, "cluster2");
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const rbac2 = adminConfig(state, "cluster2").makeApiClient(RbacAuthorizationV1Api);

const sa = uniqueName("pod-lister");
const importName = uniqueName("cluster2-pod-lister");
const mintedTokens: string[] = [];
let root: string;
let secretDir: string;
let outputDir: string;
let healthPort: number;
let proxyPort: number;
let sidecar: RunningSidecar;
let emptyKubeconfig: string;

async function mint(serviceAccount = sa): Promise<string> {
  const tr = await core2.createNamespacedServiceAccountToken({ name: serviceAccount, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const token = tr.status?.token ?? "";
  mintedTokens.push(token);
  return token;
}

async function swap(token: string): Promise<void> {
  await atomicWrite(secretDir, importSecretFiles({ name: importName, token, caPem: info2.caPem, server: info2.server, namespace }), { mode: 0o444 });
}

const jti = (token: string) => (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { jti?: string }).jti;

/** Who the remote says the proxy's requests are from, and with which token (its JTI). */
async function whoAmI(headers: Record<string, string> = {}): Promise<{ status: number; username?: string; credentialId?: string[] }> {
  const r = await httpCall(proxyPort, "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
  });
  if (r.status !== 201 && r.status !== 200) return { status: r.status };
  const review = JSON.parse(r.body) as { status: { userInfo: { username: string; extra?: Record<string, string[]> } } };
  return {
    status: r.status,
    username: review.status.userInfo.username,
    credentialId: review.status.userInfo.extra?.["authentication.kubernetes.io/credential-id"],
  };
}

beforeAll(async () => {
  await core2.createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } });
  await rbac2.createNamespacedRole({
    namespace,
    body: { metadata: { name: sa }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }] },
  });
  await rbac2.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: sa },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: sa },
      subjects: [{ kind: "ServiceAccount", name: sa, namespace }],
    },
  });
  root = await mkdtemp(join(tmpdir(), "mcsa-sidecar-e2e-"));
  secretDir = join(root, "secrets", importName);
  outputDir = join(root, "out");
  await mkdir(outputDir);
  emptyKubeconfig = join(root, "empty-kubeconfig");
  await writeFile(emptyKubeconfig, "");
  await swap(await mint());
  [healthPort, proxyPort] = [await freePort(), await freePort()];
  sidecar = await startSidecar(
    [
      `--secrets-dir=${join(root, "secrets")}`,
      `--output-dir=${outputDir}`,
      `--health-port=${healthPort}`,
      "--health-address=127.0.0.1",
      `--import=${importName}=${proxyPort}`,
      "--debounce=50",
    ],
    healthPort,
  );
});

afterAll(async () => {
  // Whatever happened, cluster2's API server must be up for the next test file.
  if (!(await fetchOk(info2))) await restartApiserver(info2);
  await sidecar?.stop();
  await rm(root, { recursive: true, force: true });
});

async function fetchOk(info: typeof info2): Promise<boolean> {
  const { adminRequest } = await import("../../harness/cluster.ts");
  return adminRequest(info, "GET", "/readyz").then(
    (r) => r.status === 200,
    () => false,
  );
}

describe("the sidecar against a real cluster", () => {
  it("writes the import's files and a merged kubeconfig that the real kubectl uses, as the imported service account", async () => {
    const files = join(outputDir, "serviceaccountimports", importName);
    expect(await readFile(join(files, "token"), "utf8")).toBe(mintedTokens.at(-1));
    expect(await readFile(join(files, "ca.crt"), "utf8")).toBe(info2.caPem);
    expect(await readFile(join(files, "server"), "utf8")).toBe(info2.server);
    expect(await readFile(join(files, "namespace"), "utf8")).toBe(namespace);
    for (const f of ["token", "ca.crt", "namespace", "server", "config"]) expect((await stat(join(files, f))).mode & 0o777, f).toBe(0o444);
    const merged = join(outputDir, "kubeconfig");
    expect(await readFile(merged, "utf8")).not.toContain(mintedTokens.at(-1));

    const pods = await kubectl(state, ["--kubeconfig", merged, "get", "pods", "-n", namespace, "-o", "name"]);
    expect(pods.stderr).not.toMatch(/error|forbidden/i);
    expect(pods.code).toBe(0);
    const secrets = await kubectl(state, ["--kubeconfig", merged, "get", "secrets", "-n", namespace]);
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain(`User "system:serviceaccount:${namespace}:${sa}" cannot list resource "secrets"`);
    // The per-import kubeconfig works on its own too (the original's path).
    const alone = await kubectl(state, ["--kubeconfig", join(files, "config"), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    expect(alone.stdout).toBe(`system:serviceaccount:${namespace}:${sa}`);
  });

  it("proxies kubectl with no credentials at all", async () => {
    const pods = await kubectl(state, ["--kubeconfig", emptyKubeconfig, "--server", `http://127.0.0.1:${proxyPort}`, "get", "pods", "-n", namespace]);
    expect(pods.stderr).not.toMatch(/error/i);
    expect(pods.code).toBe(0);
    const secrets = await kubectl(state, ["--kubeconfig", emptyKubeconfig, "--server", `http://127.0.0.1:${proxyPort}`, "get", "secrets", "-n", namespace]);
    expect(secrets.stderr).toMatch(/forbidden/i);
  });

  it("streams a watch: a pod created after the watch started arrives as an event", async () => {
    const list = JSON.parse((await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/pods`)).body) as { metadata: { resourceVersion: string } };
    const name = uniqueName("watched");
    const events: { type: string; object: { metadata: { name: string } } }[] = [];
    const req = httpRequest({ host: "127.0.0.1", port: proxyPort, path: `/api/v1/namespaces/${namespace}/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}` });
    try {
      const headers = new Promise<number>((done, fail) => {
        req.on("response", (res) => {
          let partial = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            const lines = (partial + chunk).split("\n");
            partial = lines.pop() ?? "";
            for (const l of lines) if (l.trim() !== "") events.push(JSON.parse(l));
          });
          done(res.statusCode ?? 0);
        });
        req.on("error", fail);
      });
      req.end();
      expect(await headers).toBe(200);
      await core2.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } } });
      await waitFor(`an ADDED event for pod ${name}`, () => events.find((e) => e.type === "ADDED" && e.object.metadata.name === name), 10_000);
    } finally {
      req.destroy();
      await core2.deleteNamespacedPod({ name, namespace }).catch(() => undefined);
    }
  });

  it("takes a new token from an atomic swap into the files and the proxy within a second", async () => {
    const token = await mint();
    const started = Date.now();
    await swap(token);
    const tokenFile = join(outputDir, "serviceaccountimports", importName, "token");
    await waitFor("the new token in the token file", async () => (await readFile(tokenFile, "utf8")) === token, 1_000, 10);
    await waitFor("the proxy to use the new token", async () => (await whoAmI()).credentialId?.includes(`JTI=${jti(token)}`), 1_000, 10);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("serves a steady request loop through 20 swaps without one failed request", async () => {
    let stop = false;
    const failures: string[] = [];
    let ok = 0;
    const loop = async () => {
      while (!stop) {
        try {
          const r = await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/pods?limit=1`, { timeoutMs: 5_000 });
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.body.slice(0, 200)}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    const tokenFile = join(outputDir, "serviceaccountimports", importName, "token");
    try {
      for (let i = 0; i < 20; i++) {
        const token = await mint();
        await swap(token);
        await waitFor(`swap ${i + 1} in the token file`, async () => (await readFile(tokenFile, "utf8")) === token, 2_000, 10);
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect((await whoAmI()).credentialId).toContain(`JTI=${jti(mintedTokens.at(-1) ?? "")}`);
    const metrics = (await httpCall(healthPort, "/metrics")).body;
    expect(metrics).toMatch(new RegExp(`mcsa_sidecar_refreshes_total\\{import="${importName}"\\} (2[2-9]|[3-9]\\d)`));
    expect(metrics).toMatch(new RegExp(`mcsa_sidecar_refresh_failures_total\\{import="${importName}"\\} 0`));
    expect(metrics).toMatch(new RegExp(`mcsa_sidecar_token_expiry_timestamp_seconds\\{import="${importName}"\\} \\d{10}`));
  });

  it("refuses a Host header that is not loopback", async () => {
    const r = await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/pods`, { headers: { Host: "attacker.example:80" } });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", status: "Failure", reason: "Forbidden" });
  });

  it("never forwards the app's Authorization or Impersonate-* headers", async () => {
    // A token of a cluster-admin service account, as an app might send it.
    const admin = uniqueName("admin");
    await core2.createNamespacedServiceAccount({ namespace, body: { metadata: { name: admin } } });
    await rbac2.createClusterRoleBinding({
      body: {
        metadata: { name: admin },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: admin, namespace }],
      },
    });
    try {
      const adminToken = await mint(admin);
      const asked = { Authorization: `Bearer ${adminToken}`, "Impersonate-User": "system:admin", "Impersonate-Group": "system:masters" };
      const me = await whoAmI(asked);
      expect(me.status).toBe(201);
      expect(me.username).toBe(`system:serviceaccount:${namespace}:${sa}`);
      const secrets = await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/secrets`, { headers: asked });
      expect(secrets.status).toBe(403);
      expect(JSON.parse(secrets.body).message).toContain(`system:serviceaccount:${namespace}:${sa}`);
    } finally {
      await rbac2.deleteClusterRoleBinding({ name: admin }).catch(() => undefined);
    }
  });

  it("answers a Status 502 quickly while the remote API server is down, and recovers by itself", async () => {
    await stopApiserver(info2);
    try {
      const started = Date.now();
      const r = await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/pods`);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect([502, 503]).toContain(r.status);
      expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code: r.status });
    } finally {
      await restartApiserver(info2);
    }
    await waitFor("the proxy to reach the restarted API server", async () => (await httpCall(proxyPort, `/api/v1/namespaces/${namespace}/pods`)).status === 200, 30_000, 100);
    expect(sidecar.logs.join("\n")).toContain("remote API server reachable again");
  });

  it("never writes a token to its logs", () => {
    const logs = sidecar.logs.join("\n");
    expect(logs).toContain("import credentials updated");
    for (const token of mintedTokens) expect(logs).not.toContain(token);
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it("exits with code 0 on SIGTERM, its ports closed", async () => {
    expect(await sidecar.stop()).toBe(0);
    expect(sidecar.logs.join("\n")).toContain('"msg":"stopped"');
    await expect(httpCall(proxyPort, "/api", { timeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
    await expect(httpCall(healthPort, "/healthz", { timeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("npm run sidecar-local", () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it("runs the sidecar of a stored pod with its Secret volume laid out and kept up to date", async () => {
    const name = uniqueName("local-import");
    const secretName = `${name}-token-abcde`;
    const podName = uniqueName("app");
    const [health, port] = [await freePort(), await freePort()];
    const secretData = (token: string) => buildImportSecretData({ importName: name, token, caPem: info2.caPem, namespace, server: info2.server });
    await core2.createNamespacedSecret({ namespace, body: { metadata: { name: secretName }, type: "Opaque", data: secretData(await mint()) } });
    // The shape the webhook injects (webhook/mutate.ts), with free ports.
    const pod: V1Pod = {
      metadata: { name: podName },
      spec: {
        initContainers: [
          {
            name: SIDECAR_CONTAINER_NAME,
            image: "mcsa-sidecar:test",
            command: ["mcsa-sidecar"],
            args: ["--secrets-dir=/etc/mcsa/secrets", "--output-dir=/var/run/secrets/admiralty.io", `--health-port=${health}`, `--import=${name}=${port}`],
            restartPolicy: "Always",
            volumeMounts: [
              { name: "mcsa", mountPath: "/var/run/secrets/admiralty.io" },
              { name: "mcsa-import", mountPath: `/etc/mcsa/secrets/${name}`, readOnly: true },
            ],
          },
        ],
        containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }],
        volumes: [
          { name: "mcsa", emptyDir: { medium: "Memory" } },
          { name: "mcsa-import", secret: { secretName, defaultMode: 0o444 } },
        ],
      },
    };
    await core2.createNamespacedPod({ namespace, body: pod });
    const dir = join(root, "local");
    const child = spawn(process.execPath, ["sidecar/local.ts", "--kubeconfig", state.kubeconfig, "--context", "cluster2", "-n", namespace, podName, "--dir", dir], {
      cwd: join(import.meta.dirname, "../.."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    try {
      await waitFor("sidecar-local to say the sidecar is ready", () => out.includes("is ready") || (child.exitCode !== null && Promise.reject(new Error(`exited: ${err}`))), 30_000);
      const files = join(dir, "root/var/run/secrets/admiralty.io");
      expect(out).toContain(`KUBECONFIG=${join(files, "kubeconfig")}`);
      expect(out).toContain(`import ${name}: http://127.0.0.1:${port}`);
      const pods = await kubectl(state, ["--kubeconfig", join(files, "kubeconfig"), "get", "pods", "-n", namespace, podName, "-o", "name"]);
      expect(pods.stdout.trim()).toBe(`pod/${podName}`);

      // A new token in the Secret reaches the files through the watch and the kubelet-style swap.
      const next = await mint();
      await core2.replaceNamespacedSecret({ name: secretName, namespace, body: { metadata: { name: secretName }, type: "Opaque", data: secretData(next) } });
      await waitFor("the new token in the local token file", async () => (await readFile(join(files, "serviceaccountimports", name, "token"), "utf8")) === next, 10_000);

      // After an API server restart the watch lists again instead of looping on a too-old
      // resourceVersion, and a token written after the restart still arrives.
      const restarted = new Date(Date.now() - 1_000);
      await stopApiserver(info2);
      await restartApiserver(info2);
      const afterRestart = await mint();
      await core2.replaceNamespacedSecret({ name: secretName, namespace, body: { metadata: { name: secretName }, type: "Opaque", data: secretData(afterRestart) } });
      await waitFor("the token written after the restart in the local token file", async () => (await readFile(join(files, "serviceaccountimports", name, "token"), "utf8")) === afterRestart, 30_000);
      const requests = (await auditEvents(info2, restarted)).filter((e) => e.requestURI.includes(`metadata.name%3D${secretName}`));
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.length, requests.map((e) => `${e.verb} ${e.responseStatus?.code}`).join(", ")).toBeLessThan(10);
    } finally {
      child.kill("SIGTERM");
      await waitFor("sidecar-local to exit after SIGTERM", () => child.exitCode !== null, 15_000);
      await core2.deleteNamespacedPod({ name: podName, namespace }).catch(() => undefined);
    }
    expect(child.exitCode).toBe(0);
    await expect(httpCall(health, "/healthz", { timeoutMs: 1_000 })).rejects.toThrow();
  });
});
