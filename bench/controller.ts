// Benchmark: the import controller with N imports (default 1000) against two local clusters.
// Measures the time from the controller's start until every import is Ready, and its memory
// (resident and peak). Run: npm run bench:controller [-- --imports N --concurrency C]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { CoreV1Api, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ServiceAccountImport, isReady } from "../common/api.ts";
import { ImportClient } from "../common/import-client.ts";
import { importGrant, importerFor } from "../common/grant.ts";
import { down, up } from "../harness/clusters.ts";
import { controllerKubeconfig, installController } from "../harness/install.ts";
import { adminConfig } from "../harness/kube.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { imports: { type: "string", default: "1000" }, concurrency: { type: "string", default: "8" } } });
const count = Number(values.imports);

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

function memoryKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

const dir = mkdtempSync(join(tmpdir(), "mcsa-bench-"));
const state = await up({ dir, count: 2 });
let manager: ReturnType<typeof spawn> | undefined;
try {
  await installController(state, "cluster1");
  const plugin = (args: string[]) =>
    new Promise<void>((done, fail) =>
      spawn(process.execPath, [join(ROOT, "plugin/main.ts"), "--kubeconfig", state.kubeconfig, ...args], { stdio: "inherit" }).on("exit", (code) =>
        code === 0 ? done() : fail(new Error(`kubectl mcsa ${args[0]} failed`)),
      ),
    );
  await plugin(["bootstrap", "--from", "cluster2", "--to", "cluster1"]);

  const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
  await core2.createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name: "pod-lister" } } });
  const remote = KubernetesObjectApi.makeApiClient(adminConfig(state, "cluster2"));
  const imports1 = new ImportClient(adminConfig(state, "cluster1"));
  const names = Array.from({ length: count }, (_, i) => `import-${String(i).padStart(4, "0")}`);
  const setupStart = Date.now();
  const importer = importerFor("cluster1");
  await pool(names, 16, async (name) => {
    const grant = importGrant({ importer, localNamespace: "default", importName: name, remoteNamespace: "default", serviceAccount: "pod-lister" });
    for (const object of [grant.anchor, grant.role, grant.roleBinding]) {
      await remote.patch(object, undefined, undefined, "bench", true, PatchStrategy.ServerSideApply);
    }
    const sai: ServiceAccountImport = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: "default" },
      spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister" },
    };
    await imports1.create(sai);
  });
  console.log(`set up ${count} imports and their grants in ${((Date.now() - setupStart) / 1000).toFixed(1)}s`);

  const kubeconfig = await controllerKubeconfig(state, "cluster1");
  const started = Date.now();
  manager = spawn(process.execPath, [join(ROOT, "manager/main.ts"), "--kubeconfig", kubeconfig, "--concurrency", values.concurrency!, "--log-level", "warn"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  let ready = 0;
  const deadline = Date.now() + 600_000;
  while (ready < count) {
    if (Date.now() > deadline) throw new Error(`only ${ready}/${count} imports Ready after 10 minutes`);
    await delay(500);
    const list = { items: await imports1.list("default") };
    ready = list.items.filter(isReady).length;
  }
  const seconds = (Date.now() - started) / 1000;
  const memory = memoryKiB(manager.pid!);
  console.log(`\n${count} imports Ready ${seconds.toFixed(1)}s after the controller started (concurrency ${values.concurrency}): ${(count / seconds).toFixed(0)} imports/s`);
  console.log(`controller memory: ${(memory.rss / 1024).toFixed(0)} MiB resident at the end, ${(memory.peak / 1024).toFixed(0)} MiB peak`);
} finally {
  manager?.kill("SIGTERM");
  await down(dir);
  rmSync(dir, { recursive: true, force: true });
}
