// AdmissionReviews per second and latency of the webhook server over HTTPS with keep-alive, beside
// a floor: a minimal Node HTTPS server that parses the review and answers "allowed" (what any
// webhook in Node must at least do). Each server runs in its own process pinned to core 0; this
// process generates the load from core 1. The webhook uses an in-memory Lookup (no API server):
// the figures are the webhook's own cost (TLS, HTTP, parse, mutate, diff, log), not the cluster's.
//
//   npm run bench:webhook -- [--requests 20000] [--warmup 2000] [--concurrency 1,16] [--rounds 10]
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { Agent, request } from "node:https";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { API_VERSION, KIND, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, type ServiceAccountImport } from "../common/api.ts";
import { createLogger } from "../common/log.ts";
import { createCA, issue } from "../common/pki.ts";
import { StaticLookup } from "../webhook/lookup.ts";
import { KEEP_ALIVE_TIMEOUT_MS, WebhookServer } from "../webhook/server.ts";

const ROOT = resolve(import.meta.dirname, "..");
const FIXTURE = join(ROOT, "test/unit/webhook/fixtures/readme-pod.json");

function readyImport(name: string, namespace: string): ServiceAccountImport {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace },
    spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister" },
    status: {
      secrets: [{ name: `${name}-token-x7k2p` }],
      conditions: [{ type: "Ready", status: "True", reason: "TokenIssued", message: "ok", lastTransitionTime: new Date().toISOString() }],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// server side (child process)

async function serve(kind: string, dir: string): Promise<void> {
  const cert = readFileSync(join(dir, "tls.crt"), "utf8");
  const key = readFileSync(join(dir, "tls.key"), "utf8");
  let port: number;
  if (kind === "webhook") {
    const lookup = new StaticLookup(
      { labelled: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE }, plain: {} },
      [readyImport("cluster2-default-pod-lister", "labelled")],
    );
    // Info level, as deployed: one log line per injected pod, written to stderr (here /dev/null).
    const server = new WebhookServer({ host: "127.0.0.1", port: 0, cert, key, lookup, mutate: { image: "ghcr.io/kubectl-mcsa/mcsa:v0.1.0", nativeSidecar: true }, log: createLogger("bench") });
    await server.listen();
    port = server.port;
  } else {
    const server = createServer({ cert, key, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: { uid: string } };
        const body = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: review.request.uid, allowed: true } });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  }
  process.stdout.write(`listening ${port}\n`);
}

// ---------------------------------------------------------------------------------------------
// load side

interface Result {
  scenario: string;
  concurrency: number;
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
}

function startServer(kind: string, dir: string, pinned: boolean): Promise<{ child: ChildProcess; port: number }> {
  const args = [process.execPath, resolve(import.meta.filename), "--serve", kind, "--dir", dir];
  const child = pinned ? spawn("taskset", ["-c", "0", ...args], { stdio: ["ignore", "pipe", "ignore"] }) : spawn(args[0]!, args.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
  return new Promise((resolvePort, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolvePort({ child, port: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

function post(agent: Agent, port: number, ca: string, body: Buffer): Promise<string> {
  return new Promise((done, fail) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/mutate-pods?timeout=5s", method: "POST", agent, ca, headers: { "content-type": "application/json", "content-length": body.length } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => (res.statusCode === 200 ? done(text) : fail(new Error(`HTTP ${res.statusCode}: ${text}`))));
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

async function load(port: number, ca: string, body: Buffer, total: number, concurrency: number, check: (response: string) => void): Promise<{ latencies: number[]; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, keepAliveMsecs: 60_000 });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const t0 = performance.now();
      const response = await post(agent, port, ca, body);
      latencies.push(performance.now() - t0);
      if (latencies.length === 1) check(response);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, seconds };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      dir: { type: "string" },
      requests: { type: "string", default: "20000" },
      warmup: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "1,16" },
      rounds: { type: "string", default: "10" },
    },
  });
  if (values.serve) return serve(values.serve, values.dir!);

  const requests = Number(values.requests);
  const warmup = Number(values.warmup);
  const levels = values.concurrency!.split(",").map(Number);
  const rounds = Number(values.rounds);
  if (!(requests > 0 && requests <= 1_000_000) || !(warmup >= 0) || levels.some((c) => !(c >= 1 && c <= 256)) || !(rounds >= 1 && rounds <= 100)) {
    throw new Error("--requests 1..1000000, --warmup >= 0, --concurrency a list of 1..256, --rounds 1..100");
  }
  let pinned = false;
  if (cpus().length >= 2) {
    try {
      execFileSync("taskset", ["-a", "-cp", "1", String(process.pid)], { stdio: "ignore" });
      pinned = true;
    } catch {
      pinned = false;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "mcsa-bench-webhook-"));
  const ca = await createCA("bench-ca");
  const pair = await issue(ca, { commonName: "bench", usage: "server", ipAddresses: ["127.0.0.1"] });
  writeFileSync(join(dir, "tls.crt"), pair.cert);
  writeFileSync(join(dir, "tls.key"), pair.key, { mode: 0o600 });

  const fixture = JSON.parse(readFileSync(FIXTURE, "utf8")) as { request: { namespace: string; object: { metadata: { namespace?: string } } } };
  const inNamespace = (namespace: string) => {
    const review = structuredClone(fixture);
    review.request.namespace = namespace;
    review.request.object.metadata.namespace = namespace;
    return Buffer.from(JSON.stringify(review));
  };
  const patched = inNamespace("labelled");
  const skipped = inNamespace("plain");
  const expectPatch = (r: string) => {
    if (!r.includes('"patchType":"JSONPatch"')) throw new Error(`expected a patch, got ${r.slice(0, 200)}`);
  };
  const expectAllowed = (r: string) => {
    if (!r.includes('"allowed":true') || r.includes("patchType")) throw new Error(`expected a plain allow, got ${r.slice(0, 200)}`);
  };
  const scenarios = [
    { name: "floor: minimal Node HTTPS server, parse + allow", server: "floor", body: patched, check: expectAllowed },
    { name: "webhook: README pod, 1 import, patched", server: "webhook", body: patched, check: expectPatch },
    { name: "webhook: same pod, unlabelled namespace, allowed unchanged", server: "webhook", body: skipped, check: expectAllowed },
  ];

  console.log(
    `webhook benchmark: ${requests} requests per scenario and concurrency in ${rounds} interleaved rounds, after ${warmup} warm-up, review body ${patched.length} bytes, ` +
      `servers ${pinned ? "pinned to core 0, load from core 1" : "NOT pinned (taskset unavailable or one core)"}, Node ${process.version}`,
  );
  // All servers up at once, scenarios interleaved in rounds: a machine whose load changes during
  // the run (other work on the second core) then weighs on every scenario alike.
  const servers = new Map<string, { child: ChildProcess; port: number }>();
  const results: Result[] = [];
  try {
    for (const kind of new Set(scenarios.map((s) => s.server))) servers.set(kind, await startServer(kind, dir, pinned));
    for (const concurrency of levels) {
      const samples = scenarios.map(() => ({ latencies: [] as number[], seconds: 0 }));
      for (const [i, scenario] of scenarios.entries()) {
        await load(servers.get(scenario.server)!.port, ca.cert, scenario.body, warmup, concurrency, scenario.check);
        samples[i]!.latencies.length = 0;
      }
      const perRound = Math.ceil(requests / rounds);
      for (let round = 0; round < rounds; round++) {
        for (const [i, scenario] of scenarios.entries()) {
          const { latencies, seconds } = await load(servers.get(scenario.server)!.port, ca.cert, scenario.body, perRound, concurrency, scenario.check);
          samples[i]!.latencies.push(...latencies);
          samples[i]!.seconds += seconds;
        }
      }
      for (const [i, scenario] of scenarios.entries()) {
        const { latencies, seconds } = samples[i]!;
        latencies.sort((a, b) => a - b);
        const result = {
          scenario: scenario.name,
          concurrency,
          requests: latencies.length,
          perSecond: latencies.length / seconds,
          p50: percentile(latencies, 50),
          p99: percentile(latencies, 99),
        };
        results.push(result);
        console.log(`  ${result.scenario} @${concurrency}: ${result.perSecond.toFixed(0)}/s, p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms`);
      }
    }
  } finally {
    for (const { child } of servers.values()) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }

  console.log("\n| scenario | concurrency | reviews/s | p50 ms | p99 ms | throughput vs floor | p50 vs floor |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const floor = results.find((f) => f.scenario.startsWith("floor") && f.concurrency === r.concurrency)!;
    console.log(
      `| ${r.scenario} | ${r.concurrency} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ` +
        `${(r.perSecond / floor.perSecond).toFixed(2)}× | ${(r.p50 / floor.p50).toFixed(2)}× |`,
    );
  }
}

main().catch((error: Error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
