// What the demo, the real-pod e2e test and the pod benchmark share: the project's images loaded into
// the harness's node, the getting-started story's pods, bounded waits on pods, and a container's
// memory as the kubelet accounts it (its cgroup).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { type CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { IMPORT_ANNOTATION, POD_IMPORTS_DIR } from "../common/api.ts";
import { isNotFound } from "../common/kube.ts";
import { envVarName } from "../common/names.ts";
import { type ClustersState, importImage } from "../harness/clusters.ts";

const ROOT = resolve(import.meta.dirname, "..");

/** The images `npm run images -- build` makes (images/build.ts). */
export const MCSA_IMAGE = "localhost/kubectl-mcsa:dev";
export const SHELL_IMAGE = "localhost/mcsa-shell:dev";
export const KUBECTL_IMAGE = "localhost/mcsa-kubectl:dev";

/**
 * One archive per line of `npm run images -- build`: "<ref> <digest> <size> MiB <built|reused> <s>s <tar>".
 * Pure, so that a change of that output fails a unit test rather than the demo.
 */
export function parseBuiltImages(output: string): { ref: string; tar: string }[] {
  return output
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 3 && fields[fields.length - 1]!.endsWith(".tar"))
    .map((fields) => ({ ref: fields[0]!, tar: fields[fields.length - 1]! }));
}

/**
 * Builds the project's images (or reuses them: images/build.ts caches by content) and loads them
 * into the node of the run. A child process: scripts/ sits below images/ in the layers.
 */
export function loadProjectImages(state: ClustersState, log: (line: string) => void = () => {}): { ref: string; tar: string }[] {
  const started = Date.now();
  const result = spawnSync(process.execPath, [join(ROOT, "images", "build.ts"), "build"], { encoding: "utf8", maxBuffer: 16 * 2 ** 20 });
  if (result.status !== 0) {
    const last = (result.stderr || result.stdout || String(result.error)).trim().split("\n").pop();
    throw new Error(`building the images failed (npm run images -- build): ${last}`);
  }
  const images = parseBuiltImages(result.stdout);
  if (images.length === 0) throw new Error(`npm run images -- build named no image archive:\n${result.stdout}`);
  log(`images built or reused in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  for (const image of images) {
    const t = Date.now();
    importImage(state, image.tar);
    log(`${image.ref} loaded into the node in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }
  return images;
}

/** A cluster's API server URL as pods on the run's node reach it (the harness gives it when a node runs). */
export function serverForPods(state: ClustersState, clusterName: string): string {
  const target = state.clusters.find((c) => c.name === clusterName);
  if (!target?.podServer) throw new Error(`cluster ${clusterName} of ${state.dir} is not reachable from pods: start the clusters with a node`);
  return target.podServer;
}

/** Where an import's files are inside the app container. */
export const importFile = (importName: string, file: string) => `${POD_IMPORTS_DIR}/${importName}/${file}`;

export interface ClientPodOptions {
  name: string;
  importName: string;
  image: string;
  /** A POSIX shell script; the import's proxy URL is in $MCSA_<IMPORT>_URL, its kubeconfig in $KUBECONFIG. */
  script: string;
  restartPolicy?: "Never" | "Always";
  labels?: Record<string, string>;
}

/** An annotated pod whose one container runs a shell script: the webhook injects the sidecar. */
export function clientPod(options: ClientPodOptions): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: options.name, labels: options.labels, annotations: { [IMPORT_ANNOTATION]: options.importName } },
    spec: {
      restartPolicy: options.restartPolicy ?? "Never",
      // The shell as PID 1 ignores SIGTERM: keep deletions short.
      terminationGracePeriodSeconds: 1,
      containers: [{ name: options.name, image: options.image, imagePullPolicy: "Never", command: ["sh", "-c", options.script] }],
    },
  };
}

/**
 * The getting-started app: says whether the sidecar's files were there when it started, lists the
 * remote cluster's pods with kubectl and its KUBECONFIG, then through the proxy URL with wget
 * (printing the pods' names), and exits non-zero if any step fails.
 */
export function listingScript(importName: string, namespace = "default"): string {
  const url = envVarName(importName);
  return [
    "set -eo pipefail",
    'if [ -s "$KUBECONFIG" ]; then echo "at start: $KUBECONFIG is there"; else echo "at start: $KUBECONFIG is missing"; exit 1; fi',
    `echo '$ kubectl get pods -n ${namespace}'`,
    `kubectl get pods -n ${namespace}`,
    `echo '$ wget -qO- $${url}/api/v1/namespaces/${namespace}/pods   (the pods\u2019 names)'`,
    // Each item's metadata starts with its name in the API server's JSON (pretty-printed for wget: squeeze it).
    `wget -qO- "$${url}/api/v1/namespaces/${namespace}/pods" | tr -d ' \\n' | grep -o '"metadata":{"name":"[^"]*"' | sed 's/.*"name":"//; s/"$//'`,
  ].join("\n");
}

/**
 * An app that calls the remote through the proxy once a second, forever, and logs one line per
 * call: "<unix seconds> ok", or "<unix seconds> <wget's error>" (e.g. "... 401 Unauthorized").
 */
export function pollingScript(importName: string, namespace = "default"): string {
  const url = envVarName(importName);
  return [
    "while true; do",
    `  if out=$(wget -q -O /dev/null "$${url}/api/v1/namespaces/${namespace}/pods" 2>&1); then echo "$(date +%s) ok"; else echo "$(date +%s) $out"; fi`,
    "  sleep 1",
    "done",
  ].join("\n");
}

/** Polls a pod until done says what it waited for (a value), failing with the pod's state. */
export async function waitForPod<T>(
  core: CoreV1Api,
  namespace: string,
  name: string,
  what: string,
  done: (pod: V1Pod) => T | undefined,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Pod | undefined;
  for (;;) {
    last = await core.readNamespacedPod({ name, namespace });
    const value = done(last);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`pod ${namespace}/${name}: timed out after ${timeoutMs / 1000}s waiting for ${what}; it is ${describePod(last)}`);
    await delay(100);
  }
}

/** Until the pod is gone from the API (the kubelet confirmed its containers stopped). */
export async function waitForPodGone(core: CoreV1Api, namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const pod = await core.readNamespacedPod({ name, namespace });
      if (Date.now() > deadline) throw new Error(`pod ${namespace}/${name} still there ${timeoutMs / 1000}s after its deletion: ${describePod(pod)}`);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    await delay(100);
  }
}

/** One line: phase and each container's state, for failure messages. */
export function describePod(pod: V1Pod): string {
  const status = pod.status ?? {};
  const containers = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])].map((c) => {
    const state = c.state?.running ? "running" : c.state?.terminated ? `terminated(${c.state.terminated.reason ?? ""} ${c.state.terminated.exitCode})` : `waiting(${c.state?.waiting?.reason ?? ""}${c.state?.waiting?.message ? `: ${c.state.waiting.message}` : ""})`;
    return `${c.name} ${state}${c.ready ? " ready" : ""}`;
  });
  const unscheduled = status.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  return `${status.phase ?? "?"}${unscheduled ? ` (not scheduled: ${unscheduled.message})` : ""}${containers.length ? `; ${containers.join(", ")}` : ""}`;
}

/** When a container started running, from its status (undefined until it runs or ran). */
export function containerStartedAt(pod: V1Pod, container: string): Date | undefined {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const status = all.find((c) => c.name === container);
  const at = status?.state?.running?.startedAt ?? status?.state?.terminated?.startedAt;
  return at ? new Date(at) : undefined;
}

// ---------------------------------------------------------------------------------------------
// cgroups: what the kubelet accounts (cgroupfs driver: /sys/fs/cgroup/<controller>/kubepods/[<qos>/]pod<uid>/<container id>)

function findDir(root: string, name: string, depth = 3): string | undefined {
  if (!existsSync(root) || depth < 0) return undefined;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    if (entry.name === name) return join(root, entry.name);
    const found = findDir(join(root, entry.name), name, depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** The pod's cgroup directory under one controller (cgroup v1), or undefined once it is gone. */
export function podCgroup(podUid: string, controller = "memory"): string | undefined {
  return findDir(join("/sys/fs/cgroup", controller, "kubepods"), `pod${podUid}`, 2);
}

/** Pids in the pod's cgroup and below: its containers' processes (and the sandbox's). */
export function podProcesses(podUid: string): number[] {
  const dir = podCgroup(podUid, "pids") ?? podCgroup(podUid, "memory");
  if (!dir) return [];
  const pids: number[] = [];
  const walk = (d: string) => {
    try {
      pids.push(...readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number));
      for (const entry of readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) walk(join(d, entry.name));
    } catch {
      // Removed while we looked.
    }
  };
  walk(dir);
  return pids;
}

export interface CgroupMemory {
  /** memory.usage_in_bytes: what the limit is enforced against. */
  usage: number;
  /** usage minus inactive file pages: the kubelet's and `kubectl top`'s working set. */
  workingSet: number;
  /** memory.max_usage_in_bytes: the peak since the container started. */
  peak: number;
  /** total_rss from memory.stat: anonymous memory of the container's processes. */
  rss: number;
}

/** Pure: the figures out of a cgroup v1 memory controller's files. */
export function parseCgroupMemory(usage: string, maxUsage: string, stat: string): CgroupMemory {
  const fields = new Map(stat.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 2).map(([k, v]) => [k!, Number(v)]));
  const used = Number(usage.trim());
  const inactiveFile = fields.get("total_inactive_file") ?? fields.get("inactive_file") ?? 0;
  return { usage: used, workingSet: Math.max(0, used - inactiveFile), peak: Number(maxUsage.trim()), rss: fields.get("total_rss") ?? fields.get("rss") ?? 0 };
}

/** A running container's memory cgroup directory; its id comes from the pod's status. */
function containerCgroup(pod: V1Pod, container: string): string {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const id = all.find((c) => c.name === container)?.containerID?.replace(/^[a-z]+:\/\//, "");
  if (!id) throw new Error(`container ${container} of pod ${pod.metadata?.name} has no id yet: ${describePod(pod)}`);
  const podDir = podCgroup(pod.metadata!.uid!);
  const dir = podDir && join(podDir, id);
  if (!dir || !existsSync(dir)) throw new Error(`no memory cgroup for container ${container} (${id}) of pod ${pod.metadata?.name}`);
  return dir;
}

/** A running container's memory cgroup figures. */
export function containerMemory(pod: V1Pod, container: string): CgroupMemory {
  const dir = containerCgroup(pod, container);
  const read = (file: string) => readFileSync(join(dir, file), "utf8");
  return parseCgroupMemory(read("memory.usage_in_bytes"), read("memory.max_usage_in_bytes"), read("memory.stat"));
}

/** The resident set (VmRSS) and its peak (VmHWM) of a container's main process, in bytes, from /proc. */
export function containerProcessMemory(pod: V1Pod, container: string): { rss: number; peak: number } {
  const pid = readFileSync(join(containerCgroup(pod, container), "cgroup.procs"), "utf8").split("\n").filter(Boolean)[0];
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** The host pids of a running container's processes (its cgroup's), the main process first. */
export function containerPids(pod: V1Pod, container: string): number[] {
  return readFileSync(join(containerCgroup(pod, container), "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
}

/**
 * Sends a signal to a running container's main process from the node, as the kubelet's runtime
 * does when it stops the container, but leaving the rest of the pod running.
 */
export function signalContainer(pod: V1Pod, container: string, signal: NodeJS.Signals): number {
  const [pid] = containerPids(pod, container);
  if (pid === undefined) throw new Error(`container ${container} of pod ${pod.metadata?.name} has no process: ${describePod(pod)}`);
  process.kill(pid, signal);
  return pid;
}

/** Seconds since the machine booted (/proc/uptime): the clock a pod's shell and the test share, to 10 ms. */
export function uptimeSeconds(): number {
  return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
}

/**
 * An app that keeps `loops` requests in flight through the import's proxy, each a watch the remote
 * API server ends after 2 + loop seconds (so the loops do not end in step). One line per request
 * start ("<loop> <n> start <uptime>") and end ("<loop> <n> end <started> <ended> ok" or
 * "... fail <wget's error>"), so that requests sent and answered can be counted (parseRequestLog).
 * A failed request is retried after 0.2 s.
 */
export function watchLoadScript(importName: string, loops = 4, namespace = "default"): string {
  const url = envVarName(importName);
  return [
    "up() { read u _ < /proc/uptime; echo $u; }",
    "loop() {",
    "  n=0",
    "  while true; do",
    "    n=$((n+1)); s=$(up); echo \"$1 $n start $s\"",
    `    if out=$(wget -q -O /dev/null "$${url}/api/v1/namespaces/${namespace}/pods?watch=1&timeoutSeconds=$((2+$1))" 2>&1); then r=ok; else r="fail $out"; fi`,
    "    echo \"$1 $n end $s $(up) $r\"",
    '    [ "$r" = ok ] || usleep 200000',
    "  done",
    "}",
    `for i in $(seq 1 ${loops}); do loop $i & done`,
    "wait",
  ].join("\n");
}

export interface LoggedRequest {
  loop: number;
  n: number;
  started: number;
  ended?: number;
  /** "ok", or wget's error; undefined while in flight. */
  outcome?: string;
}

/** Pure: the requests of a watchLoadScript log, by loop and number. */
export function parseRequestLog(log: string): LoggedRequest[] {
  const requests = new Map<string, LoggedRequest>();
  for (const line of log.split("\n")) {
    const start = /^(\d+) (\d+) start ([\d.]+)$/.exec(line.trim());
    if (start) {
      requests.set(`${start[1]} ${start[2]}`, { loop: Number(start[1]), n: Number(start[2]), started: Number(start[3]) });
      continue;
    }
    const end = /^(\d+) (\d+) end ([\d.]+) ([\d.]+) (ok|fail.*)$/.exec(line.trim());
    if (end) {
      const key = `${end[1]} ${end[2]}`;
      requests.set(key, { loop: Number(end[1]), n: Number(end[2]), started: Number(end[3]), ended: Number(end[4]), outcome: end[5] === "ok" ? "ok" : end[5]!.replace(/^fail\s*/, "") });
    }
  }
  return [...requests.values()].sort((a, b) => a.started - b.started);
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
