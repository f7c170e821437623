// Starts two real clusters once per e2e run and stops them at the end, also when the run is
// interrupted: a detached reaper stops them if this process dies without tearing down.
// cluster1 gets a real node (kubelet + containerd) unless MCSA_NO_NODE=1; after `down`, the
// teardown fails the run if anything is left on the machine (harness/node.ts nodeLeftovers).
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { type ClustersState, down, leftovers, up } from "../../harness/clusters.ts";

declare module "vitest" {
  export interface ProvidedContext {
    clusters: ClustersState;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), "mcsa-e2e-"));
  const reaper = spawn(process.execPath, [resolve(import.meta.dirname, "../../harness/reaper.ts"), String(process.pid), dir], {
    detached: true,
    stdio: "ignore",
  });
  reaper.unref();
  const started = Date.now();
  const withNode = process.env.MCSA_NO_NODE !== "1";
  let state: ClustersState;
  try {
    state = await up({ dir, count: 2, node: withNode ? {} : undefined, log: (line) => console.error(`[clusters] ${line}`) });
  } catch (error) {
    await down(dir);
    throw error;
  }
  console.error(`[clusters] ${state.clusters.map((c) => `${c.name} ${c.server}${c.node ? ` (node ${c.node.name})` : ""}`).join(", ")} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  project.provide("clusters", state);
  return async () => {
    await down(dir);
    const left = leftovers(dir, state);
    if (left.length > 0) throw new Error(`the e2e clusters left ${left.length} things on the machine:\n${left.join("\n")}`);
  };
}
