// A set of local clusters (cluster1, cluster2, …) sharing one directory: their data, logs, a
// state file that lets another process stop them, and a kubeconfig with one admin context each.
// With a node, cluster1 also runs pods: a kubelet, containerd and kube-scheduler (harness/node.ts).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Binaries, cachedBinaries, ensureBinaries } from "./binaries.ts";
import { type ClusterInfo, startCluster, stopCluster } from "./cluster.ts";
import { kubeconfigFor } from "./kubeconfig.ts";
import { type NodeInfo, type NodeOptions, checkNodeCanStart, imagesOnNode, importImageToNode, nodeLeftovers, stopNode } from "./node.ts";
import { isRunning, processesUsing, stopProcess } from "./processes.ts";

export const DEFAULT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../.cache/clusters");

export interface ClustersState {
  dir: string;
  kubeconfig: string;
  kubectl: string;
  binaries: Binaries;
  clusters: ClusterInfo[];
}

const stateFile = (dir: string) => join(dir, "state.json");

export function readState(dir: string): ClustersState | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as ClustersState;
}

export function writeState(state: ClustersState): void {
  writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2), { mode: 0o600 });
}

const serversOf = (c: ClusterInfo) => [
  c.etcd,
  c.apiserver,
  c.controllerManager,
  ...(c.scheduler ? [c.scheduler] : []),
  ...(c.node ? [c.node.containerd, c.node.kubelet] : []),
];

/** Whether every process of every cluster in the state is alive. */
export function allRunning(state: ClustersState): boolean {
  return state.clusters.every((c) => serversOf(c).every((p) => isRunning(p.pid, p.binary)));
}

export function anyRunning(state: ClustersState): boolean {
  return state.clusters.some((c) => serversOf(c).some((p) => isRunning(p.pid, p.binary)));
}

export interface UpOptions {
  dir?: string;
  count?: number;
  /** Give cluster1 a real node (kubelet + containerd + kube-scheduler); one per machine. */
  node?: NodeOptions;
  log?: (line: string) => void;
}

export class ClustersAlreadyRunning extends Error {}

/**
 * Starts count clusters in parallel. Refuses if clusters of this directory still run; clears
 * the leftovers of clusters that died (a reboot, a kill) before starting anew.
 */
export async function up(options: UpOptions = {}): Promise<ClustersState> {
  const dir = resolve(options.dir ?? DEFAULT_DIR);
  const count = options.count ?? 2;
  const log = options.log ?? ((line: string) => console.error(line));
  if (!Number.isInteger(count) || count < 1 || count > 10) throw new Error(`--count must be an integer from 1 to 10, not ${count}`);
  const previous = readState(dir);
  if (previous && anyRunning(previous)) {
    throw new ClustersAlreadyRunning(
      `clusters already run in ${dir} (${previous.clusters.map((c) => `${c.name} at ${c.server}`).join(", ")}); ` +
        "stop them with `npm run clusters -- down`, or restart them with `npm run clusters -- up --restart`",
    );
  }
  // Before anything changes: a node that cannot start says why in one line.
  if (options.node) checkNodeCanStart();
  if (previous) log(`removing leftovers of stopped clusters in ${dir}`);
  if (existsSync(dir)) await down(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const binaries = await ensureBinaries(log);
  const names = Array.from({ length: count }, (_, i) => `cluster${i + 1}`);
  const started: ClusterInfo[] = [];
  const results = await Promise.allSettled(
    names.map(async (name) => {
      const node = options.node && name === "cluster1" ? options.node : undefined;
      const info = await startCluster(name, join(dir, name), binaries, { node, reachableFromPods: Boolean(options.node), log });
      started.push(info);
      return info;
    }),
  );
  const failure = results.find((r) => r.status === "rejected");
  if (failure) {
    await Promise.all(started.map(stopCluster));
    rmSync(dir, { recursive: true, force: true });
    throw (failure as PromiseRejectedResult).reason;
  }
  const clusters = results.map((r) => (r as PromiseFulfilledResult<ClusterInfo>).value);
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigFor(clusters), { mode: 0o600 });
  const state: ClustersState = { dir, kubeconfig, kubectl: binaries.kubectl, binaries, clusters };
  writeState(state);
  return state;
}

/** Stops the clusters of dir and removes their data. Returns false if nothing was there. */
export async function down(dirOption?: string): Promise<boolean> {
  const dir = resolve(dirOption ?? DEFAULT_DIR);
  const state = readState(dir);
  if (state) await Promise.all(state.clusters.map(stopCluster));
  // Also servers the state does not know: restarted since it was written (tests stop and start
  // API servers), or started by an `up` that was interrupted before it could write the state.
  // A node of an `up` interrupted before it wrote the state: found by its directory.
  if (existsSync(dir)) {
    for (const entry of readdirSync(dir)) if (existsSync(join(dir, entry, "node"))) await stopNode(join(dir, entry, "node"));
  }
  const binaries = state?.binaries ?? cachedBinaries();
  if (binaries) {
    const servers = [binaries.kubeApiserver, binaries.kubeControllerManager, binaries.kubeScheduler, binaries.etcd];
    await Promise.all(processesUsing(`${dir}/`, servers).map((p) => stopProcess(p.pid, p.binary)));
  }
  const existed = existsSync(dir);
  rmSync(dir, { recursive: true, force: true });
  return Boolean(state) || existed;
}

/** The node of a run (cluster1's), or a one-line error if these clusters were started without one. */
export function nodeOf(state: ClustersState): NodeInfo {
  const node = state.clusters.find((c) => c.node)?.node;
  if (!node) throw new Error(`the clusters in ${state.dir} have no node (started with --no-node or MCSA_NO_NODE=1): start them with one to run pods`);
  return node;
}

/** Imports an OCI image layout tar into the node's containerd (CRI namespace); pods use it with imagePullPolicy: Never. */
export function importImage(state: ClustersState, ociTarPath: string): void {
  importImageToNode(nodeOf(state), ociTarPath);
}

/** The image references the node holds. */
export function loadedImages(state: ClustersState): string[] {
  return imagesOnNode(nodeOf(state));
}

/**
 * What the clusters of dir (and any node) left on the machine, one line each: processes, mounts,
 * cgroups, iptables chains, links, directories, changed sysctls. Call it after down; empty is clean.
 * before: the state of the run, to compare sysctls and machine directories with how they were.
 */
export function leftovers(dir: string, before?: ClustersState): string[] {
  const machine = before?.clusters.find((c) => c.node)?.node?.machineBefore;
  return nodeLeftovers(dir, machine);
}
