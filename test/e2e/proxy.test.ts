// The proxy's framing against a real remote API server (cluster2), with the server's audit log as
// the witness: a request whose Connection header lists its framing header, with a body that is a
// whole (or an unfinished) second request, must not make the remote see a second request, and
// every request the proxy forwards is authenticated as the import's service account, with the
// import's token. curl is the app for the Content-Length cases; a raw socket sends the chunked one.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { atomicWrite } from "../../sidecar/kubelet-layout.ts";
import { freePort } from "../../harness/processes.ts";
import { adminConfig, cluster, createPodReader, uniqueName } from "../../harness/kube.ts";
import { importSecretFiles, startSidecar, waitFor, type RunningSidecar } from "../../harness/sidecar.ts";

const run = promisify(execFile);
const state = inject("clusters");
const namespace = "default";
const info2 = cluster(state, "cluster2");
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);

const sa = uniqueName("proxy-e2e");
const importName = uniqueName("cluster2-proxy-e2e");
/** Every URI this file sends carries it, so its lines in the shared audit log are ours alone. */
const marker = uniqueName("m");
let token: string;
let root: string;
let proxyPort: number;
let sidecar: RunningSidecar;

interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; extra?: Record<string, string[]> };
}

async function auditEvents(): Promise<AuditEvent[]> {
  const text = await readFile(info2.auditLog, "utf8");
  return text
    .split("\n")
    .filter((line) => line.includes(marker))
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === "ResponseComplete");
}

/** curl, a client we did not write, as the app: prints the status code. */
async function curl(path: string, args: string[] = []): Promise<string> {
  const { stdout } = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", ...args, `http://127.0.0.1:${proxyPort}${path}`]);
  return stdout;
}

beforeAll(async () => {
  await createPodReader(state, "cluster2", namespace, sa);
  const tr = await core2.createNamespacedServiceAccountToken({ name: sa, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  token = tr.status?.token ?? "";
  root = await mkdtemp(join(tmpdir(), "mcsa-proxy-e2e-"));
  await mkdir(join(root, "out"));
  await atomicWrite(join(root, "secrets", importName), importSecretFiles({ name: importName, token, caPem: info2.caPem, server: info2.server, namespace }), {
    mode: 0o444,
  });
  const healthPort = await freePort();
  proxyPort = await freePort();
  sidecar = await startSidecar(
    [
      `--secrets-dir=${join(root, "secrets")}`,
      `--output-dir=${join(root, "out")}`,
      `--health-port=${healthPort}`,
      "--health-address=127.0.0.1",
      `--import=${importName}=${proxyPort}`,
    ],
    healthPort,
  );
});

afterAll(async () => {
  await sidecar?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("the proxy against a real API server", () => {
  it("a body behind Connection: content-length never reaches the remote as a request, and every request is the import's", async () => {
    const smuggledUri = `/api/v1/namespaces/kube-system/secrets?smuggled=${marker}`;
    const whole = `GET ${smuggledUri}-whole HTTP/1.1\r\nHost: x\r\n\r\n`;
    // No Host of its own: the captured request brings one (Go refuses two).
    const unfinished = `GET ${smuggledUri}-capture HTTP/1.1\r\nX-Captured: `;
    const pods = (n: number) => `/api/v1/namespaces/${namespace}/pods?limit=1&legit=${marker}-${n}`;

    // 1. A whole second request as the body of a GET whose Connection header lists content-length.
    expect(await curl(pods(1), ["-X", "GET", "-H", "Connection: keep-alive, content-length", "--data-binary", whole])).toBe("200");
    // 2. An unfinished one: on an unframed forward, the next request (3.) would complete it with its own Authorization.
    expect(await curl(pods(2), ["-X", "GET", "-H", "Connection: content-length", "--data-binary", unfinished])).toBe("200");
    expect(await curl(pods(3))).toBe("200");
    // 4. The chunked variant, on a raw socket, followed by a pipelined request on the same connection.
    const socket = connect(proxyPort, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.write(
      `GET ${pods(4)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${whole.length.toString(16)}\r\n${whole}\r\n0\r\n\r\n` +
        `GET ${pods(5)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    );
    await waitFor("two answers on the raw connection", () => (answer.match(/^HTTP\/1\.1 \d{3}/gm) ?? []).length >= 2 || undefined, 10_000);
    socket.destroy();
    expect(answer.match(/^HTTP\/1\.1 \d{3}/gm)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);

    // The audit log is written as requests complete: wait until the five legitimate ones are in.
    const events = await waitFor(
      "the audit log to show the five requests sent through the proxy",
      async () => {
        const found = await auditEvents();
        return [1, 2, 3, 4, 5].every((n) => found.some((e) => e.requestURI.includes(`legit=${marker}-${n}`))) ? found : undefined;
      },
      15_000,
    );
    expect(events.filter((e) => e.requestURI.includes("smuggled="))).toEqual([]);
    expect(events.map((e) => e.requestURI).sort()).toEqual([1, 2, 3, 4, 5].map(pods).sort());
    const jti = (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { jti: string }).jti;
    for (const e of events) {
      expect(e.user.username, e.requestURI).toBe(`system:serviceaccount:${namespace}:${sa}`);
      expect(e.user.extra?.["authentication.kubernetes.io/credential-id"], e.requestURI).toEqual([`JTI=${jti}`]);
    }
    expect(sidecar.logs.join("\n")).not.toContain(token);
  });

  it("refuses exec through the proxy unless the pod allows it, before the remote sees it", async () => {
    const uri = `/api/v1/namespaces/${namespace}/pods/p/exec?command=sh&refused=${marker}`;
    expect(await curl(uri, ["-X", "POST", "-H", "Connection: Upgrade", "-H", "Upgrade: SPDY/3.1"])).toBe("403");
    // A request after it, so the audit log has caught up when we look.
    const after = `/api/v1/namespaces/${namespace}/pods?limit=1&after=${marker}`;
    expect(await curl(after)).toBe("200");
    const events = await waitFor("the audit log to show the request after the refused exec", async () => {
      const found = await auditEvents();
      return found.some((e) => e.requestURI === after) ? found : undefined;
    });
    expect(events.filter((e) => e.requestURI.includes("refused="))).toEqual([]);
  });
});
