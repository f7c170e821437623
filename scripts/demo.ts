// npm run demo: the whole story on two clusters. By default it starts two local clusters (real
// etcd + kube-apiserver), runs the in-cluster process locally, bootstraps cluster2 -> cluster1,
// imports pod-lister and lists cluster2's pods with the imported identity; then cleans up.
//   --keep                       leave the clusters and the controller's state up, and say how to stop them
//   --kubeconfig F --local-context A --remote-context B   use two existing clusters instead
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import { CONTROLLER_SERVICE_ACCOUNT } from "../common/manifests.ts";
import { isConflict } from "../common/kube.ts";
import { type ClustersState, down, up } from "../test/clusters/clusters.ts";
import { cachedBinaries, ensureBinaries } from "../test/clusters/binaries.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DEMO_DIR = join(ROOT, ".cache", "demo");
const IMPORT = "cluster2-default-pod-lister";
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let stepNumber = 0;

function step(title: string): void {
  console.log(`\n${bold(`${++stepNumber}. ${title}`)}`);
}

function show(command: string[], options: { kubectl?: string } = {}): string {
  const [program, ...args] = command;
  const display = program === "mcsa" ? ["kubectl", "mcsa", ...args] : command.map((c) => (c === options.kubectl ? "kubectl" : c));
  console.log(`$ ${display.join(" ")}`);
  const result =
    program === "mcsa"
      ? spawnSync(process.execPath, [join(ROOT, "plugin/main.ts"), ...args], { encoding: "utf8" })
      : spawnSync(program!, args, { encoding: "utf8" });
  process.stdout.write(result.stdout.replace(/^/gm, "  ").replace(/ {2}$/, ""));
  if (result.status !== 0) {
    process.stderr.write(result.stderr);
    throw new Error(`\`${display.join(" ")}\` failed (exit ${result.status})`);
  }
  return result.stdout;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keep: { type: "boolean", default: false },
      kubeconfig: { type: "string" },
      "local-context": { type: "string" },
      "remote-context": { type: "string" },
    },
  });
  const existing = values.kubeconfig !== undefined;
  if (existing && (!values["local-context"] || !values["remote-context"])) {
    throw new Error("with --kubeconfig, name both --local-context (imports) and --remote-context (is imported from)");
  }
  const started = Date.now();
  let state: ClustersState | undefined;
  let kubeconfig: string;
  let local = values["local-context"] ?? "cluster1";
  let remote = values["remote-context"] ?? "cluster2";
  let kubectl: string;
  const children: ChildProcess[] = [];
  const work = mkdtempSync(join(tmpdir(), "mcsa-demo-"));
  try {
    if (existing) {
      kubeconfig = resolve(values.kubeconfig!);
      kubectl = (cachedBinaries() ?? (await ensureBinaries())).kubectl;
    } else {
      step("Start two local clusters (real etcd + kube-apiserver each)");
      state = await up({ dir: DEMO_DIR, count: 2, log: (l) => console.log(`  ${l}`) });
      for (const c of state.clusters) console.log(`  ${c.name}: ${c.server}`);
      kubeconfig = state.kubeconfig;
      kubectl = state.kubectl;
      local = "cluster1";
      remote = "cluster2";
    }
    const flags = ["--kubeconfig", kubeconfig];
    const kc = (context: string) => {
      const c = new KubeConfig();
      c.loadFromFile(kubeconfig);
      c.setCurrentContext(context);
      return c;
    };

    step(`Install kubectl mcsa in ${local}`);
    show(["mcsa", "install", ...flags, "--context", local]);

    step(`Run the in-cluster controller as its own service account (here: a local process)`);
    const token = await kc(local).makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: CONTROLLER_SERVICE_ACCOUNT,
      namespace: SYSTEM_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const cluster = kc(local).getCurrentCluster()!;
    const controllerConfig = join(work, "controller.kubeconfig");
    const ca = cluster.caData ?? "";
    writeFileSync(
      controllerConfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: local, cluster: { server: cluster.server, "certificate-authority-data": ca } }],
        users: [{ name: "controller", user: { token: token.status!.token } }],
        contexts: [{ name: local, context: { cluster: local, user: "controller" } }],
        "current-context": local,
      }),
      { mode: 0o600 },
    );
    const controllerLog = join(work, "controller.log");
    const manager = spawn(process.execPath, [join(ROOT, "controller/main.ts"), "--kubeconfig", controllerConfig, "--cluster-check-interval", "5s"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(manager);
    const logLines: string[] = [];
    const logFile = createWriteStream(controllerLog);
    manager.stderr!.on("data", (d: Buffer) => {
      logLines.push(d.toString());
      logFile.write(d);
    });
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`the controller did not start in 30s:\n${logLines.join("")}`)), 30_000);
      manager.stderr!.on("data", () => {
        if (logLines.join("").includes("import controller started")) {
          clearTimeout(timer);
          ready();
        }
      });
      manager.on("exit", (code) => fail(new Error(`the controller exited (${code}):\n${logLines.join("")}`)));
    });
    console.log(`  controller running (pid ${manager.pid}); its JSON logs go to ${controllerLog}${values.keep ? "" : " (removed at the end)"}`);

    step(`Bootstrap: let ${local}'s controller import from ${remote}`);
    show(["mcsa", "bootstrap", ...flags, "--from", remote, "--to", local, "--name", "cluster2"]);

    step(`In ${remote}: service account pod-lister (may only list pods in default) and a pod to list`);
    const core2 = kc(remote).makeApiClient(CoreV1Api);
    const rbac2 = kc(remote).makeApiClient(RbacAuthorizationV1Api);
    const ignoreExisting = (e: unknown) => {
      if (!isConflict(e)) throw e;
    };
    await core2.createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name: "pod-lister" } } }).catch(ignoreExisting);
    await rbac2
      .createNamespacedRole({ namespace: "default", body: { metadata: { name: "pod-lister" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list"] }] } })
      .catch(ignoreExisting);
    await rbac2
      .createNamespacedRoleBinding({
        namespace: "default",
        body: {
          metadata: { name: "pod-lister" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-lister" },
          subjects: [{ kind: "ServiceAccount", name: "pod-lister", namespace: "default" }],
        },
      })
      .catch(ignoreExisting);
    await core2
      .createNamespacedPod({ namespace: "default", body: { metadata: { name: "nginx", labels: { app: "nginx" } }, spec: { containers: [{ name: "nginx", image: "nginx" }] } } })
      .catch(ignoreExisting);
    console.log("  serviceaccount/pod-lister, role/pod-lister, rolebinding/pod-lister, pod/nginx");

    step(`Import pod-lister of ${remote} into ${local}'s default namespace`);
    show(["mcsa", "import", IMPORT, ...flags, "--context", local, "-n", "default", "--cluster", "cluster2", "--remote-namespace", "default", "--service-account", "pod-lister", "--remote-context", remote, "--wait"]);
    show(["mcsa", "get", ...flags, "--context", local]);
    show(["mcsa", "check", IMPORT, ...flags, "--context", local]);

    step(`List ${remote}'s pods with the imported identity (its kubeconfig, as a pod gets it)`);
    const importConfig = join(work, "import.kubeconfig");
    const printed = spawnSync(process.execPath, [join(ROOT, "plugin/main.ts"), "kubeconfig", IMPORT, ...flags, "--context", local], { encoding: "utf8" });
    if (printed.status !== 0) throw new Error(printed.stderr);
    writeFileSync(importConfig, printed.stdout, { mode: 0o600 });
    const listing = show([kubectl, "--kubeconfig", importConfig, "get", "pods", "-n", "default"], { kubectl });
    console.log("  and it may not read secrets there:");
    const forbidden = spawnSync(kubectl, ["--kubeconfig", importConfig, "get", "secrets", "-n", "default"], { encoding: "utf8" });
    console.log(`  ${forbidden.stderr.trim()}`);
    if (forbidden.status === 0) throw new Error("the imported identity could read secrets: least privilege is broken");

    step("Summary");
    console.log(`  ${remote}'s pods listed from ${local}'s import: ${listing.trim().split("\n").length - 1} pod(s)`);
    console.log(`  token: short-lived (1h), bound to a grant in ${remote}, renewed by the controller at ~80% of its life`);
    console.log(`  done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    if (values.keep && state) {
      console.log(`\n  clusters left up: kubeconfig ${state.kubeconfig}; stop them with: npm run clusters -- down --dir ${DEMO_DIR}`);
    }
  } finally {
    for (const child of children) child.kill("SIGTERM");
    if (!values.keep) rmSync(work, { recursive: true, force: true });
    if (state && !values.keep) {
      await down(DEMO_DIR);
      console.log("\n(cleaned up: clusters stopped, their data removed)");
    }
  }
}

main().catch((error: Error) => {
  console.error(`demo failed: ${error.message}`);
  process.exitCode = 1;
});
