// A set of local clusters (cluster1, cluster2, …) sharing one directory: their data, logs, a
// state file that lets another process stop them, and a kubeconfig with one admin context each.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Binaries, cachedBinaries, ensureBinaries } from "./binaries.ts";
import { type ClusterInfo, startCluster, stopCluster } from "./cluster.ts";
import { kubeconfigFor } from "./kubeconfig.ts";
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

const serversOf = (c: ClusterInfo) => [c.etcd, c.apiserver, c.controllerManager];

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
  if (previous) log(`removing leftovers of stopped clusters in ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const binaries = await ensureBinaries(log);
  const names = Array.from({ length: count }, (_, i) => `cluster${i + 1}`);
  const started: ClusterInfo[] = [];
  const results = await Promise.allSettled(
    names.map(async (name) => {
      const info = await startCluster(name, join(dir, name), binaries);
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
  const binaries = state?.binaries ?? cachedBinaries();
  if (binaries) {
    const servers = [binaries.kubeApiserver, binaries.kubeControllerManager, binaries.etcd];
    await Promise.all(processesUsing(`${dir}/`, servers).map((p) => stopProcess(p.pid, p.binary)));
  }
  const existed = existsSync(dir);
  rmSync(dir, { recursive: true, force: true });
  return Boolean(state) || existed;
}
