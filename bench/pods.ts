// Benchmark in real pods on the harness's node (cluster1), with kubectl mcsa installed as its
// Deployment and cluster2's pod-lister imported:
//   1. pod create → app container running, for the same pod with and without the sidecar
//      (interleaved rounds; the time from the create call until the pod's status says running);
//   2. the sidecar container's memory as the kubelet accounts it (its memory cgroup: working set
//      = usage − inactive file, as kubectl top and evictions count it, and the cgroup's peak),
//      idle and under proxy load, beside `kubectl proxy` run in a pod of the same node with the
//      same import's kubeconfig and the same load (a Node app in the pod, on loopback).
//
//   npm run bench:pods [-- --rounds 10 --idle 20 --load 30 --concurrency 8]
//
// Needs root, containerd and runc (a node); serialise with other node users:
//   flock /tmp/mcsa-node.lock npm run bench:pods
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { IMPORT_LABEL, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SIDECAR_CONTAINER_NAME } from "../common/api.ts";
import { envVarName } from "../common/names.ts";
import { down, leftovers, up } from "../harness/clusters.ts";
import { adminConfig, createPodReader } from "../harness/kube.ts";
import {
  KUBECTL_IMAGE,
  MCSA_IMAGE,
  SHELL_IMAGE,
  type CgroupMemory,
  clientPod,
  containerMemory,
  containerProcessMemory,
  describePod,
  loadProjectImages,
  mib,
  serverForPods,
  waitForPod,
  waitForPodGone,
} from "../scripts/pods.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    idle: { type: "string", default: "20" },
    load: { type: "string", default: "30" },
    concurrency: { type: "string", default: "8" },
  },
});
const ROUNDS = Number(values.rounds);
const IDLE_S = Number(values.idle);
const LOAD_S = Number(values.load);
const CONCURRENCY = Number(values.concurrency);
const NAMESPACE = "bench";
const IMPORT = "cluster2-default-pod-lister";

/** The load, run by Node inside the pod: idle first, then CONCURRENCY loops of GETs for LOAD_S; prints what it did. */
const loadScript = `
const url = process.env.TARGET + "/api/v1/namespaces/default/pods";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
console.log("idle"); await sleep(${IDLE_S * 1000});
console.log("load"); const end = Date.now() + ${LOAD_S * 1000}; let ok = 0, failed = 0;
await Promise.all(Array.from({ length: ${CONCURRENCY} }, async () => { while (Date.now() < end) { try { const r = await fetch(url); await r.arrayBuffer(); r.ok ? ok++ : failed++; } catch { failed++; } } }));
console.log("done " + ok + " ok " + failed + " failed " + (ok / ${LOAD_S}).toFixed(0) + " req/s");
await sleep(3600_000);
`;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { median: q(0.5), p90: q(0.9), min: s[0]!, max: s[s.length - 1]! };
};

const dir = mkdtempSync(join(tmpdir(), "mcsa-bench-pods-"));
const state = await up({ dir, count: 2, node: {}, log: (l) => console.error(`[clusters] ${l}`) });
try {
  const plugin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(ROOT, "plugin/main.ts"), "--kubeconfig", state.kubeconfig, ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kubectl mcsa ${args[0]} failed: ${r.stderr.trim()}`);
    return r.stdout;
  };
  loadProjectImages(state, (l) => console.error(`[images] ${l}`));
  plugin("install", "--context", "cluster1", "--image", MCSA_IMAGE, "--image-pull-policy", "Never", "--wait");
  plugin("bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", "cluster2", "--server", serverForPods(state, "cluster2"));
  await createPodReader(state, "cluster2", "default", "pod-lister", ["list"]);
  const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
  const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
  for (let i = 0; i < 20; i++) {
    await core2.createNamespacedPod({ namespace: "default", body: { metadata: { name: `nginx-${i}` }, spec: { containers: [{ name: "nginx", image: "nginx" }] } } });
  }
  await core1.createNamespace({ body: { metadata: { name: NAMESPACE, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
  plugin("import", IMPORT, "--context", "cluster1", "-n", NAMESPACE, "--cluster", "cluster2", "--remote-namespace", "default", "--service-account", "pod-lister", "--remote-context", "cluster2", "--wait");

  // 1. Pod start, with and without the sidecar, interleaved.
  const sleeper = (name: string, withSidecar: boolean): V1Pod => {
    const pod = clientPod({ name, importName: IMPORT, image: SHELL_IMAGE, script: "exec sleep 3600" });
    if (!withSidecar) delete pod.metadata!.annotations;
    pod.spec!.terminationGracePeriodSeconds = 0;
    return pod;
  };
  const startTimes: Record<"without" | "with", number[]> = { without: [], with: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? (["without", "with"] as const) : (["with", "without"] as const)) {
      const name = `start-${kind}-${round}`;
      const t0 = performance.now();
      await core1.createNamespacedPod({ namespace: NAMESPACE, body: sleeper(name, kind === "with") });
      await waitForPod(core1, NAMESPACE, name, "its app container running", (p) => (p.status?.containerStatuses?.find((c) => c.name === name)?.state?.running ? true : undefined), 60_000);
      const ms = performance.now() - t0;
      if (round > 0) startTimes[kind].push(ms); // round 0 warms caches (first sandbox, first Node start)
      await core1.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
      await waitForPodGone(core1, NAMESPACE, name);
    }
  }

  // 2. Memory: the sidecar vs kubectl proxy, each with the same load app beside it.
  const secretName = (await core1.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: `${IMPORT_LABEL}=${IMPORT}` })).items[0]!.metadata!.name!;
  const loadContainer = (target: string) => ({
    name: "load",
    image: MCSA_IMAGE,
    imagePullPolicy: "Never" as const,
    command: ["node", "--input-type=module", "-e", loadScript],
    env: [{ name: "TARGET", value: target }],
  });
  const sidecarPod = clientPod({ name: "mem-sidecar", importName: IMPORT, image: MCSA_IMAGE, script: "" });
  sidecarPod.spec!.containers = [loadContainer(`$(${envVarName(IMPORT)})`)];
  const proxyPod: V1Pod = {
    metadata: { name: "mem-kubectl-proxy" },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: "kubectl-proxy",
          image: KUBECTL_IMAGE,
          imagePullPolicy: "Never",
          command: ["kubectl", "proxy", "--port=8001", "--kubeconfig=/etc/import/config"],
          volumeMounts: [{ name: "import", mountPath: "/etc/import", readOnly: true }],
        },
        loadContainer("http://127.0.0.1:8001"),
      ],
      volumes: [{ name: "import", secret: { secretName, defaultMode: 0o444 } }],
    },
  };
  type Sample = CgroupMemory & { vmRss: number; vmHwm: number };
  const memory: Record<string, { idle: Sample[]; load: Sample[]; log: string }> = {};
  for (const [pod, container] of [[sidecarPod, SIDECAR_CONTAINER_NAME], [proxyPod, "kubectl-proxy"]] as const) {
    const name = pod.metadata!.name!;
    await core1.createNamespacedPod({ namespace: NAMESPACE, body: pod });
    await waitForPod(core1, NAMESPACE, name, "its load container running", (p) => (p.status?.containerStatuses?.find((c) => c.name === "load")?.state?.running ? true : undefined));
    const logOf = async () => (await core1.readNamespacedPodLog({ name, namespace: NAMESPACE, container: "load" })) as string;
    const sample = async (): Promise<Sample> => {
      const live = await core1.readNamespacedPod({ name, namespace: NAMESPACE });
      const proc = containerProcessMemory(live, container);
      return { ...containerMemory(live, container), vmRss: proc.rss, vmHwm: proc.peak };
    };
    const result = { idle: [] as Sample[], load: [] as Sample[], log: "" };
    // Idle: the second half of the idle phase, after start-up settled.
    await delay((IDLE_S / 2) * 1000);
    while (!(await logOf()).includes("load")) {
      result.idle.push(await sample());
      await delay(500);
    }
    while (!(await logOf()).includes("done")) {
      result.load.push(await sample());
      await delay(500);
    }
    result.load.push(await sample());
    result.log = (await logOf()).trim().split("\n").pop()!;
    memory[container] = result;
    const last = await core1.readNamespacedPod({ name, namespace: NAMESPACE });
    if (last.status?.phase !== "Running") throw new Error(`${name} stopped during the run: ${describePod(last)}`);
    await core1.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
    await waitForPodGone(core1, NAMESPACE, name);
  }

  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  console.log(`\nPod create → app container running (${ROUNDS} rounds each, interleaved, after one warm-up round)`);
  console.log("| pod | median | p90 | min | max |\n| --- | --- | --- | --- | --- |");
  for (const kind of ["without", "with"] as const) {
    const t = stats(startTimes[kind]);
    console.log(`| ${kind} the sidecar | ${s(t.median)} | ${s(t.p90)} | ${s(t.min)} | ${s(t.max)} |`);
  }
  console.log(`\nMemory cgroup of the proxy container (idle ${IDLE_S / 2}-${IDLE_S} s after start; load: ${CONCURRENCY} concurrent GETs of cluster2's pods for ${LOAD_S} s)`);
  console.log(
    "| container | cgroup working set, idle | cgroup working set, max under load | cgroup peak (max_usage) | cgroup rss idle / max under load | process VmRSS idle / VmHWM after load | load |\n| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const [container, m] of Object.entries(memory)) {
    const median = (xs: number[]) => stats(xs).median;
    const max = (xs: number[]) => Math.max(...xs);
    console.log(
      `| ${container} | ${mib(median(m.idle.map((x) => x.workingSet)))} | ${mib(max(m.load.map((x) => x.workingSet)))} | ${mib(max(m.load.map((x) => x.peak)))} | ` +
        `${mib(median(m.idle.map((x) => x.rss)))} / ${mib(max(m.load.map((x) => x.rss)))} | ${mib(median(m.idle.map((x) => x.vmRss)))} / ${mib(max(m.load.map((x) => x.vmHwm)))} | ${m.log} |`,
    );
  }
} finally {
  await down(dir);
  const left = leftovers(dir, state);
  rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) {
    console.error(`left on the machine:\n${left.join("\n")}`);
    process.exitCode = 1;
  } else {
    console.error("nothing left on the machine");
  }
}
