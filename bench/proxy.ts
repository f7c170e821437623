// The sidecar's proxy against `kubectl proxy` and direct HTTPS calls, same remote, same token,
// same load; and the sidecar's resident memory beside a bare Node HTTP server's.
//
//   npm run bench:proxy [-- --quick]
//
// Two sidecars: `node sidecar/main.ts` (as tests run it) and the image's bundle (scripts/package.ts).
//
// Starts its own local cluster (harness/), loopback only, fixed request counts with time
// caps. Prints requests/s and p50/p99 latency per target, as ratios against kubectl proxy and
// against direct calls, and RSS figures (VmRSS from /proc/<pid>/status).

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { bundle } from "../scripts/package.ts";
import { atomicWrite } from "../sidecar/kubelet-layout.ts";
import { down, up } from "../harness/clusters.ts";
import { freePort } from "../harness/processes.ts";
import { importSecretFiles, startSidecar, waitFor } from "../harness/sidecar.ts";

const quick = process.argv.includes("--quick");
const NAMESPACE = "default";
const CONFIGMAPS = 500;
const IMPORTS = 3;
const ROUNDS = 5;
const BUNDLE = "bundle, as in the image";

interface Target {
  name: string;
  /** One request; resolves with the status code and the body size. */
  call(path: string): Promise<{ status: number; bytes: number }>;
}

function httpTarget(name: string, port: number): Target {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  return {
    name,
    call: (path) =>
      new Promise((done, fail) => {
        const req = httpRequest({ host: "127.0.0.1", port, path, agent, headers: { accept: "application/json" } }, (res) => {
          let bytes = 0;
          res.on("data", (c: Buffer) => (bytes += c.length));
          res.on("end", () => done({ status: res.statusCode ?? 0, bytes }));
          res.on("error", fail);
        });
        req.on("error", fail);
        req.end();
      }),
  };
}

function directTarget(server: string, caPem: string, token: string): Target {
  const url = new URL(server);
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 64, ca: caPem });
  return {
    name: "direct",
    call: (path) =>
      new Promise((done, fail) => {
        const req = httpsRequest(
          { host: url.hostname, port: url.port, path, agent, headers: { accept: "application/json", authorization: `Bearer ${token}` } },
          (res) => {
            let bytes = 0;
            res.on("data", (c: Buffer) => (bytes += c.length));
            res.on("end", () => done({ status: res.statusCode ?? 0, bytes }));
            res.on("error", fail);
          },
        );
        req.on("error", fail);
        req.end();
      }),
  };
}

interface Result {
  target: string;
  rps: number;
  p50: number;
  p99: number;
  n: number;
  errors: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

interface Samples {
  latencies: number[];
  seconds: number;
  errors: number;
}

/** `total` requests by `concurrency` workers, stopping early after capMs; adds to samples. */
async function load(target: Target, path: string, concurrency: number, total: number, capMs: number, into: Samples): Promise<void> {
  let issued = 0;
  const start = performance.now();
  const worker = async () => {
    while (issued < total && performance.now() - start < capMs) {
      issued++;
      const t = performance.now();
      try {
        const r = await target.call(path);
        if (r.status !== 200) into.errors++;
      } catch {
        into.errors++;
      }
      into.latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  into.seconds += (performance.now() - start) / 1000;
}

function summarize(target: string, s: Samples): Result {
  const sorted = [...s.latencies].sort((a, b) => a - b);
  return { target, rps: sorted.length / s.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length, errors: s.errors };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** RSS after the process has been idle for settleMs (median of a few samples). */
async function idleRss(pid: number, settleMs: number): Promise<number> {
  await delay(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssMiB(pid));
    await delay(200);
  }
  return samples.sort((a, b) => a - b)[2] as number;
}

function startChild(command: string, args: string[]): { child: ChildProcess; stop: () => Promise<void> } {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, delay(5_000).then(() => child.kill("SIGKILL"))]);
  };
  child.once("exit", (code) => {
    if (code && code !== 0) process.stderr.write(`${command} exited with ${code}: ${stderr}\n`);
  });
  return { child, stop };
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "mcsa-bench-proxy-"));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    console.error("starting a local cluster…");
    const state = await up({ dir: join(dir, "clusters"), count: 1, log: (l) => console.error(`[clusters] ${l}`) });
    const info = state.clusters[0];
    if (!info) throw new Error("no cluster");
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);

    // A reader service account, one pod for the small GET, CONFIGMAPS configmaps for the large list.
    await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: "bench" } } });
    await rbac.createNamespacedRole({
      namespace: NAMESPACE,
      body: { metadata: { name: "bench" }, rules: [{ apiGroups: [""], resources: ["pods", "configmaps"], verbs: ["get", "list"] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: {
        metadata: { name: "bench" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "bench" },
        subjects: [{ kind: "ServiceAccount", name: "bench", namespace: NAMESPACE }],
      },
    });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: { metadata: { name: "bench-pod" }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } } });
    console.error(`creating ${CONFIGMAPS} configmaps…`);
    for (let i = 0; i < CONFIGMAPS; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, CONFIGMAPS - i) }, (_, j) =>
          core.createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name: `bench-${i + j}` }, data: { value: "x".repeat(256) } } }),
        ),
      );
    }
    const tr = await core.createNamespacedServiceAccountToken({ name: "bench", namespace: NAMESPACE, body: { spec: { expirationSeconds: 3600 } } });
    const token = tr.status?.token ?? "";

    // The sidecar, with three imports of the same service account.
    const secrets = join(dir, "secrets");
    const output = join(dir, "out");
    await mkdir(output, { recursive: true });
    const names = Array.from({ length: IMPORTS }, (_, i) => `bench-${i + 1}`);
    for (const name of names) {
      await atomicWrite(join(secrets, name), importSecretFiles({ name, token, caPem: info.caPem, server: info.server, namespace: NAMESPACE }), { mode: 0o444 });
    }
    const health = await freePort();
    const ports: number[] = [];
    for (const _ of names) ports.push(await freePort());
    const sidecar = await startSidecar(
      [`--secrets-dir=${secrets}`, `--output-dir=${output}`, `--health-port=${health}`, "--health-address=127.0.0.1", ...names.map((n, i) => `--import=${n}=${ports[i]}`)],
      health,
    );
    stops.push(() => sidecar.stop());
    const sidecarPid = sidecar.child.pid ?? 0;

    // kubectl proxy, with a kubeconfig holding the same token.
    const kubeconfig = join(dir, "bench.kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: info.server, "certificate-authority-data": Buffer.from(info.caPem).toString("base64") } }],
        users: [{ name: "u", user: { token } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u", namespace: NAMESPACE } }],
        "current-context": "c",
      }),
      { mode: 0o600 },
    );
    const kubectlPort = await freePort();
    const kubectlProxy = startChild(state.kubectl, ["proxy", `--port=${kubectlPort}`, "--address=127.0.0.1", `--kubeconfig=${kubeconfig}`]);
    stops.push(kubectlProxy.stop);

    // The same sidecar as the image runs it: the esbuild bundle of scripts/package.ts, started
    // through its hashbang (which asks for a 1 MiB young generation, see sidecar/main.ts).
    const compiled = (await bundle(join(dir, "bundle"))).sidecar;
    const jsOutput = join(dir, "out-js");
    await mkdir(jsOutput);
    const jsHealth = await freePort();
    const jsPorts: number[] = [];
    for (const _ of names) jsPorts.push(await freePort());
    const sidecarJs = await startSidecar(
      [`--secrets-dir=${secrets}`, `--output-dir=${jsOutput}`, `--health-port=${jsHealth}`, "--health-address=127.0.0.1", ...names.map((n, i) => `--import=${n}=${jsPorts[i]}`)],
      jsHealth,
      { command: compiled },
    );
    stops.push(() => sidecarJs.stop());

    // The floors: bare Node HTTP servers as CommonJS, as an ES module, as a .ts file, and as
    // CommonJS with node:https loaded (OpenSSL, which any proxy to an HTTPS remote needs).
    const serve = "createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1');";
    const bareFiles = { mjs: join(dir, "bare.mjs"), ts: join(dir, "bare.ts") };
    await writeFile(bareFiles.mjs, `import { createServer } from 'node:http';\n${serve}\n`);
    await writeFile(bareFiles.ts, `import { createServer } from 'node:http';\nconst _typed: number = 0;\n${serve}\n`);
    const floors = [
      { label: "bare Node HTTP server, CommonJS (the floor)", proc: startChild(process.execPath, ["-e", `const { createServer } = require('node:http'); ${serve}`]) },
      { label: "bare Node HTTP server, CommonJS, node:https loaded", proc: startChild(process.execPath, ["-e", `require('node:https'); const { createServer } = require('node:http'); ${serve}`]) },
      { label: "bare Node HTTP server, ES module", proc: startChild(process.execPath, [bareFiles.mjs]) },
      { label: "bare Node HTTP server, .ts file (type stripping)", proc: startChild(process.execPath, [bareFiles.ts]) },
    ];
    for (const f of floors) stops.push(f.proc.stop);

    const targets = [
      httpTarget("sidecar (.ts)", ports[0] as number),
      httpTarget(`sidecar (${BUNDLE})`, jsPorts[0] as number),
      httpTarget("kubectl proxy", kubectlPort),
      directTarget(info.server, info.caPem, token),
    ];
    const small = `/api/v1/namespaces/${NAMESPACE}/pods/bench-pod`;
    const large = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
    for (const t of targets) {
      await waitFor(`${t.name} to answer`, async () => (await t.call(small)).status === 200, 20_000, 100);
    }

    const rss = {
      sidecarIdle: await idleRss(sidecarPid, 3_000),
      sidecarJsIdle: rssMiB(sidecarJs.child.pid ?? 0),
      floors: floors.map((f) => ({ label: f.label, mib: rssMiB(f.proc.child.pid ?? 0) })),
      kubectlProxyIdle: rssMiB(kubectlProxy.child.pid ?? 0),
      sidecarPeak: 0,
      sidecarJsPeak: 0,
      kubectlProxyPeak: 0,
    };
    for (const f of floors) await f.proc.stop();

    const scale = quick ? 0.2 : 1;
    const cases = [
      { what: "small GET (one pod)", path: small, concurrency: 1, total: Math.round(1000 * scale), capMs: 20_000 },
      { what: "small GET (one pod)", path: small, concurrency: 32, total: Math.round(5000 * scale), capMs: 30_000 },
      { what: `large list (${CONFIGMAPS} configmaps)`, path: large, concurrency: 1, total: Math.round(100 * scale), capMs: 30_000 },
      { what: `large list (${CONFIGMAPS} configmaps)`, path: large, concurrency: 32, total: Math.round(400 * scale), capMs: 60_000 },
    ];
    const sampler = setInterval(() => {
      rss.sidecarPeak = Math.max(rss.sidecarPeak, rssMiB(sidecarPid));
      rss.sidecarJsPeak = Math.max(rss.sidecarJsPeak, rssMiB(sidecarJs.child.pid ?? 0));
      rss.kubectlProxyPeak = Math.max(rss.kubectlProxyPeak, rssMiB(kubectlProxy.child.pid ?? 0));
    }, 100);
    const rows: string[] = [];
    try {
      for (const c of cases) {
        // Rounds that take turns between the targets: the machine's background load drifts, and
        // every target should see the same drift.
        const samples = targets.map(() => ({ latencies: [], seconds: 0, errors: 0 }) as Samples);
        for (const t of targets) await load(t, c.path, c.concurrency, Math.max(20, Math.round(c.total / 10)), c.capMs, { latencies: [], seconds: 0, errors: 0 });
        for (let round = 0; round < ROUNDS; round++) {
          for (const [i, t] of targets.entries()) await load(t, c.path, c.concurrency, Math.round(c.total / ROUNDS), c.capMs / ROUNDS, samples[i] as Samples);
        }
        const results = targets.map((t, i) => summarize(t.name, samples[i] as Samples));
        const kp = results.find((r) => r.target === "kubectl proxy") as Result;
        const direct = results.find((r) => r.target === "direct") as Result;
        for (const r of results) {
          rows.push(
            `| ${c.what} | ${c.concurrency} | ${r.target} | ${r.n} | ${r.errors} | ${fmt(r.rps, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ` +
              `${fmt(r.rps / kp.rps, 2)} / ${fmt(r.p50 / kp.p50, 2)} / ${fmt(r.p99 / kp.p99, 2)} | ` +
              `${fmt(r.rps / direct.rps, 2)} / ${fmt(r.p50 / direct.p50, 2)} / ${fmt(r.p99 / direct.p99, 2)} |`,
          );
          console.error(`${c.what} c=${c.concurrency} ${r.target}: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, ${r.errors} errors`);
        }
      }
    } finally {
      clearInterval(sampler);
    }

    console.log("| request | concurrency | target | requests | errors | req/s | p50 ms | p99 ms | vs kubectl proxy (req/s / p50 / p99) | vs direct (req/s / p50 / p99) |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const row of rows) console.log(row);
    console.log("");
    console.log("| process | RSS MiB |");
    console.log("| --- | --- |");
    const floor = rss.floors[0]?.mib ?? NaN;
    const over = (mib: number) => rss.floors.map((f) => `${fmt((mib / f.mib - 1) * 100, 0)}%`).join(" / ");
    for (const f of rss.floors) console.log(`| ${f.label} | ${fmt(f.mib)} |`);
    console.log(`| sidecar, ${IMPORTS} imports, idle, \`node sidecar/main.ts\` | ${fmt(rss.sidecarIdle)} (over each floor above: ${over(rss.sidecarIdle)}) |`);
    console.log(`| sidecar, ${IMPORTS} imports, idle, ${BUNDLE} | ${fmt(rss.sidecarJsIdle)} (over each floor above: ${over(rss.sidecarJsIdle)}) |`);
    console.log(`| sidecar, peak under the load above, \`node sidecar/main.ts\` | ${fmt(rss.sidecarPeak)} (${fmt((rss.sidecarPeak / floor - 1) * 100, 0)}% over the floor) |`);
    console.log(`| sidecar, peak under the load above, ${BUNDLE} | ${fmt(rss.sidecarJsPeak)} (${fmt((rss.sidecarJsPeak / floor - 1) * 100, 0)}% over the floor) |`);
    console.log(`| kubectl proxy, idle / peak under load | ${fmt(rss.kubectlProxyIdle)} / ${fmt(rss.kubectlProxyPeak)} |`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await down(join(dir, "clusters"));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
