// Apps in any language, as a new user writes them, in a pod the webhook injected (its sidecar run
// by sidecar-local, exactly as injected): a Node app with client-node's loadFromDefault(), a Node
// app with @kubectl-mcsa/client, a Python app with Debian's python3-kubernetes, and kubectl. Each
// app is one process for the whole test. Each lists the remote pods; then after `kubectl mcsa
// rotate`; then after the first token can no longer be used (the remote service account deleted
// and created again, which revokes every token minted for it, then a rotation). The remote API
// server's audit log is the witness of which token each request carried (its credential id, the
// token's JTI). For contrast, the former design (a kubeconfig with `tokenFile`) is run too:
// client-node sends no credential, python keeps its first token. A proxy-only pod gets no token
// file, and its apps work all the same.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CoreV1Api, VersionApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { IMPORT_ANNOTATION, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, PROXY_ONLY_ANNOTATION, SIDECAR_CONTAINER_NAME } from "../../common/api.ts";
import { tokenClaims } from "../../common/import-secret.ts";
import { startLocalManager } from "../../harness/install.ts";
import { adminConfig, cluster, createPodReader, statusOf, tokenConfig, uniqueName } from "../../harness/kube.ts";
import { auditEvents, credentialId as auditCredentialId } from "../../harness/audit.ts";
import { Background, ROOT, eventually, runNode, startSidecarLocal } from "../../harness/run.ts";
import type { Reply } from "./apps/protocol.ts";

const state = inject("clusters");
const info2 = cluster(state, "cluster2");
const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const namespace = uniqueName("apps");
const remoteSA = uniqueName("pod-lister");
const IMPORT = `cluster2-${remoteSA}`;
const REMOTE_POD = `${namespace}-nginx`;
/** Debian's interpreter: python3-kubernetes is installed for it (apt-get install -y python3-kubernetes). */
const PYTHON = "/usr/bin/python3";
const tmp = mkdtempSync(join(tmpdir(), "mcsa-apps-"));
const background: Background[] = [];
const apps: App[] = [];
let manager: Background;

const mcsa = (...args: string[]) => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);

/** A long-running app: one marker per line in, one JSON reply per line out (apps/protocol.ts). */
class App {
  readonly stderr: string[] = [];
  readonly name: string;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #replies = new Map<string, Reply>();

  constructor(name: string, command: string, args: string[], env: Record<string, string>) {
    this.name = name;
    // Its own process group, stopped as a whole.
    this.#child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.#child.stdout }).on("line", (line) => {
      try {
        const reply = JSON.parse(line) as Reply;
        this.#replies.set(reply.marker, reply);
      } catch {
        this.stderr.push(`stdout: ${line}`);
      }
    });
    this.#child.stderr.setEncoding("utf8").on("data", (chunk: string) => this.stderr.push(chunk));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  async list(marker: string): Promise<Reply> {
    this.#child.stdin.write(`${marker}\n`);
    return eventually(
      `${this.name} to answer ${marker} (stderr: ${this.stderr.join("").slice(-500)})`,
      async () => {
        if (this.#child.exitCode !== null) throw new Error(`${this.name} exited with ${this.#child.exitCode}: ${this.stderr.join("").slice(-500)}`);
        return this.#replies.get(marker);
      },
      30_000,
      50,
    );
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null || this.#child.pid === undefined) return;
    const exited = new Promise<void>((done) => this.#child.once("exit", () => done()));
    this.#child.stdin.end();
    try {
      process.kill(-this.#child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await exited;
  }
}

/** An app that runs kubectl once per request, as a shell script in the pod would. */
class KubectlApp {
  readonly name = "kubectl";
  readonly env: Record<string, string>;
  constructor(env: Record<string, string>) {
    this.env = env;
  }
  async list(marker: string): Promise<Reply> {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const child = spawn(state.kubectl, ["get", "pods", "--field-selector", `metadata.name!=${marker}`, "-o", "name"], { env: { ...process.env, ...this.env } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("exit", (code) => done({ code: code ?? -1, stdout, stderr }));
    });
    return r.code === 0
      ? { marker, ok: true, names: r.stdout.trim().split("\n").map((l) => l.replace(/^pod\//, "")) }
      : { marker, ok: false, error: r.stderr.trim() };
  }
  async stop(): Promise<void> {}
}

/** The completed requests for marker in cluster2's audit log, with their user and credential. */
async function audited(marker: string): Promise<{ username: string; credentialId: string; code: number }[]> {
  return eventually(`cluster2's audit log to show the request for ${marker}`, async () => {
    const found = (await auditEvents(info2))
      .filter((e) => decodeURIComponent(e.requestURI).includes(`metadata.name!=${marker}`))
      .map((e) => ({ username: e.user.username ?? "", credentialId: auditCredentialId(e) ?? "(none)", code: e.responseStatus?.code ?? 0 }));
    return found.length > 0 ? found : undefined;
  });
}

const credentialId = (token: string): string => `JTI=${String(tokenClaims(token)?.jti)}`;

async function secretToken(): Promise<string> {
  const secrets = await core1.listNamespacedSecret({ namespace, labelSelector: `${IMPORT_ANNOTATION}=${IMPORT}` });
  return Buffer.from(secrets.items[0]!.data!.token!, "base64").toString("utf8");
}

/** Admits an annotated pod (the webhook injects the sidecar) and runs its sidecar as injected; returns the pod's output dir. */
async function podWithSidecar(name: string, annotations: Record<string, string>): Promise<{ outputDir: string; kubeconfig: string; importsDir: string }> {
  const pod = {
    metadata: { name, annotations: { [IMPORT_ANNOTATION]: IMPORT, ...annotations } },
    spec: { restartPolicy: "Never", containers: [{ name: "app", image: "app" }] },
  };
  await eventually("the webhook to intercept pod creation", async () => {
    const probe = await core1.createNamespacedPod({ namespace, body: pod, dryRun: "All" });
    return probe.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, 30_000, 250);
  await core1.createNamespacedPod({ namespace, body: pod });
  const sidecar = await startSidecarLocal(["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", namespace, name, "--dir", join(tmp, name)]);
  background.push(sidecar);
  const kubeconfig = /KUBECONFIG=(\S+)/.exec(sidecar.text)![1]!;
  const outputDir = join(kubeconfig, "..");
  return { outputDir, kubeconfig, importsDir: join(outputDir, "serviceaccountimports") };
}

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: install Debian's python3 and python3-kubernetes (apt-get install -y python3-kubernetes)`);
  const install = await mcsa("install", "--context", "cluster1");
  expect(install.code, install.stderr).toBe(0);
  const caFile = join(tmp, "webhook-ca.pem");
  ({ manager } = await startLocalManager(state, "cluster1", caFile));
  background.push(manager);
  const url = /"msg":"webhook listening"[^\n]*"url":"([^"]+)"/.exec(manager.text)![1]!;
  const local = await mcsa("install", "--context", "cluster1", "--webhook-url", url, "--webhook-ca-file", caFile);
  expect(local.code, local.stderr).toBe(0);
  const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  await createPodReader(state, "cluster2", "default", remoteSA);
  await core2.createNamespacedPod({ namespace: "default", body: { metadata: { name: REMOTE_POD }, spec: { containers: [{ name: "nginx", image: "nginx" }] } } });
  await core1.createNamespace({ body: { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
  const imported = await mcsa(
    "import", IMPORT, "--context", "cluster1", "-n", namespace, "--cluster", "cluster2", "--remote-namespace", "default",
    "--service-account", remoteSA, "--remote-context", "cluster2", "--wait", "--timeout", "30s",
  );
  expect(imported.code, imported.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  for (const b of background.filter((b) => b !== manager)) await b.stop();
  await mcsa("remove", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "20s");
  // As found: the next file (helm.test.ts) needs cluster2 without kubectl mcsa's namespace.
  await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force");
  await manager?.stop();
  await core2.deleteNamespacedPod({ name: REMOTE_POD, namespace: "default" }).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

describe("apps in any language, through what the pod is given", () => {
  it("list the remote pods with the first token, after a rotation, and after the first token is revoked, without restarting; the audit log shows the token each request used", { timeout: 240_000 }, async () => {
    const pod = await podWithSidecar("apps", {});
    // What the webhook sets in app containers: KUBECONFIG. The library also finds the imports'
    // files at the pod path; here they live under the local sidecar's directory.
    const env = { KUBECONFIG: pod.kubeconfig, MCSA_IMPORTS_DIR: pod.importsDir };
    const node = new App("client-node loadFromDefault()", process.execPath, ["test/e2e/apps/node-default.ts"], env);
    const library = new App("@kubectl-mcsa/client", process.execPath, ["test/e2e/apps/node-library.ts"], env);
    const python = new App("python3-kubernetes", PYTHON, ["test/e2e/apps/python_list_pods.py"], env);
    apps.push(node, library, python);
    const all = [node, library, python, new KubectlApp(env)];
    // For contrast, the former design: a kubeconfig straight to the remote with `tokenFile`.
    const former = join(tmp, "former.kubeconfig");
    const files = join(pod.importsDir, IMPORT);
    writeFileSync(former, JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "c",
      clusters: [{ name: "c", cluster: { server: info2.server, "certificate-authority": join(files, "ca.crt") } }],
      users: [{ name: "c", user: { tokenFile: join(files, "token") } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "c", namespace: "default" } }],
    }));
    const formerNode = new App("tokenFile: client-node", process.execPath, ["test/e2e/apps/node-default.ts"], { KUBECONFIG: former });
    const formerPython = new App("tokenFile: python3-kubernetes", PYTHON, ["test/e2e/apps/python_list_pods.py"], { KUBECONFIG: former });
    apps.push(formerNode, formerPython);
    const pids = [node.pid, library.pid, python.pid, formerNode.pid, formerPython.pid];
    const table: string[] = [];

    /** The former design's outcome: client-node sends no credential; python keeps the token it first read. */
    async function contrast(label: string, pythonToken: string | undefined): Promise<void> {
      const marker = `${label}-former-node-${Date.now().toString(36)}`;
      const nodeReply = await formerNode.list(marker);
      expect(nodeReply.ok, JSON.stringify(nodeReply)).toBe(false);
      const nodeAudit = await audited(marker);
      table.push(`${label.padEnd(10)} ${formerNode.name.padEnd(30)} ${nodeAudit.map((r) => `${r.code} ${r.username} ${r.credentialId}`).join(", ")}`);
      expect(nodeAudit).toEqual([{ code: 403, username: "system:anonymous", credentialId: "(none)" }]);
      const pyMarker = `${label}-former-python-${Date.now().toString(36)}`;
      const pyReply = await formerPython.list(pyMarker);
      if (pythonToken === undefined) {
        table.push(`${label.padEnd(10)} ${formerPython.name.padEnd(30)} refused: ${pyReply.error}`);
        expect(pyReply.ok, JSON.stringify(pyReply)).toBe(false);
        expect(pyReply.error).toMatch(/401/);
      } else {
        const pyAudit = await audited(pyMarker);
        table.push(`${label.padEnd(10)} ${formerPython.name.padEnd(30)} ${pyAudit.map((r) => `${r.code} ${r.credentialId}`).join(", ")}`);
        expect(pyReply.ok, JSON.stringify(pyReply)).toBe(true);
        expect(pyAudit.map((r) => r.credentialId)).toEqual([credentialId(pythonToken)]);
      }
    }

    async function phase(label: string, token: string): Promise<void> {
      for (const app of all) {
        const marker = `${label}-${all.indexOf(app)}-${Date.now().toString(36)}`;
        const reply = await app.list(marker);
        expect(reply, `${app.name} ${label}`).toMatchObject({ ok: true });
        expect(reply.names, `${app.name} ${label}`).toContain(REMOTE_POD);
        const requests = await audited(marker);
        table.push(`${label.padEnd(10)} ${app.name.padEnd(30)} ${requests.map((r) => `${r.code} ${r.credentialId}`).join(", ")}`);
        expect(requests.map((r) => ({ code: r.code, username: r.username, credentialId: r.credentialId })), `${app.name} ${label}`).toEqual([
          { code: 200, username: `system:serviceaccount:default:${remoteSA}`, credentialId: credentialId(token) },
        ]);
      }
    }

    try {
      const first = await secretToken();
      await phase("first", first);
      await contrast("first", first);

      const rotated = await mcsa("rotate", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "20s");
      expect(rotated.code, rotated.stderr).toBe(0);
      const second = await secretToken();
      expect(second).not.toBe(first);
      const tokenFile = join(pod.importsDir, IMPORT, "token");
      await eventually("the pod's token file to hold the rotated token", async () => (readFileSync(tokenFile, "utf8") === second ? true : undefined), 10_000, 20);
      await phase("rotated", second);
      await contrast("rotated", first);

      // Revoke every token minted so far: delete the remote service account and create it again
      // (same name, new uid; its RoleBinding is by name), then rotate for a token of the new one.
      await core2.deleteNamespacedServiceAccount({ name: remoteSA, namespace: "default" });
      await core2.createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name: remoteSA } } });
      const version = (token: string) => statusOf(tokenConfig(info2, token).makeApiClient(VersionApi).getCode());
      // The API server caches a successful token authentication for 10 s: bounded wait.
      for (const [what, token] of [["first", first], ["second", second]] as const) {
        await eventually(`the ${what} token to be refused`, async () => ((await version(token)) === 401 ? true : undefined), 20_000, 250);
      }
      const again = await mcsa("rotate", IMPORT, "--context", "cluster1", "-n", namespace, "--timeout", "20s");
      expect(again.code, again.stderr).toBe(0);
      const third = await secretToken();
      expect(await version(third)).toBe(200);
      await eventually("the pod's token file to hold the new token", async () => (readFileSync(tokenFile, "utf8") === third ? true : undefined), 10_000, 20);
      await phase("revoked", third);
      await contrast("revoked", undefined);

      // Still the same processes.
      expect([node.pid, library.pid, python.pid, formerNode.pid, formerPython.pid]).toEqual(pids);
    } finally {
      console.log(`phase      app                            audited requests (code, credential id)\n${table.join("\n")}`);
    }
  });

  it("a proxy-only pod: no token file for the apps, and they list the remote pods through the proxy", { timeout: 120_000 }, async () => {
    const pod = await podWithSidecar("proxy-only", { [PROXY_ONLY_ANNOTATION]: "true" });
    const stored = await core1.readNamespacedPod({ name: "proxy-only", namespace });
    expect(stored.spec?.initContainers?.[0]?.args).toContain("--no-app-token");
    // The visible files (links into the current ..data version, as in a Secret volume), and that version's own.
    const visible = readdirSync(join(pod.importsDir, IMPORT)).filter((f) => !f.startsWith(".."));
    expect(visible.sort()).toEqual(["ca.crt", "config", "namespace", "server"]);
    expect(readdirSync(join(pod.importsDir, IMPORT, "..data")).sort()).toEqual(["ca.crt", "config", "namespace", "server"]);
    const token = await secretToken();
    for (const file of [pod.kubeconfig, ...visible.map((f) => join(pod.importsDir, IMPORT, f))]) {
      expect(readFileSync(file, "utf8"), file).not.toContain(token);
    }
    const env = { KUBECONFIG: pod.kubeconfig, MCSA_IMPORTS_DIR: pod.importsDir };
    const node = new App("client-node loadFromDefault()", process.execPath, ["test/e2e/apps/node-default.ts"], env);
    const library = new App("@kubectl-mcsa/client", process.execPath, ["test/e2e/apps/node-library.ts"], env);
    apps.push(node, library);
    for (const [i, app] of [node, library, new KubectlApp(env)].entries()) {
      const marker = `proxy-only-${i}-${Date.now().toString(36)}`;
      const reply = await app.list(marker);
      expect(reply, app.name).toMatchObject({ ok: true });
      expect(reply.names).toContain(REMOTE_POD);
      expect((await audited(marker)).map((r) => r.credentialId)).toEqual([credentialId(token)]);
    }
    expect(library.stderr.join("")).toMatch(/using import .* server http:\/\/127\.0\.0\.1:\d+/);
  });
});
