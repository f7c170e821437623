// npm run demo: the whole story on two local clusters, in real pods. It starts cluster1 with a real
// node (containerd + kubelet) and cluster2 without one, loads the project's images into the node,
// installs kubectl mcsa in cluster1 (the manager runs as its Deployment; the API server calls the
// webhook through its Service), bootstraps cluster2 -> cluster1, imports pod-lister, and runs the
// original README's annotated multicluster-client pod: the webhook injects the sidecar, and the
// app lists cluster2's pods with its KUBECONFIG and through the proxy URL. It ends with the app's
// logs, stops everything and checks that nothing is left on the machine.
//   --keep                       leave the clusters up, and say how to stop them
//   --local-process              for machines that cannot run a kubelet: the in-cluster process and
//                                the sidecar run as local processes (pods are admitted, never run)
//   --kubeconfig F --local-context A --remote-context B   (with --local-process) two existing clusters
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, dumpYaml } from "@kubernetes/client-node";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SIDECAR_CONTAINER_NAME, SYSTEM_NAMESPACE } from "../common/api.ts";
import { CONTROLLER_SERVICE_ACCOUNT } from "../common/manifests.ts";
import { isConflict } from "../common/kube.ts";
import { type ClustersState, down, leftovers, up } from "../harness/clusters.ts";
import { cachedBinaries, ensureBinaries } from "../harness/binaries.ts";
import { NODE_PACKAGES, NodeUnavailable, checkNodeCanStart } from "../harness/node.ts";
import { KUBECTL_IMAGE, MCSA_IMAGE, clientPod, describePod, listingScript, loadProjectImages, serverForPods, waitForPod } from "./pods.ts";

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

interface Flags {
  keep: boolean;
  "local-process": boolean;
  kubeconfig?: string;
  "local-context"?: string;
  "remote-context"?: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keep: { type: "boolean", default: false },
      "local-process": { type: "boolean", default: false },
      kubeconfig: { type: "string" },
      "local-context": { type: "string" },
      "remote-context": { type: "string" },
    },
  });
  if (values.kubeconfig !== undefined) {
    if (!values["local-process"]) {
      throw new Error("with --kubeconfig, add --local-process: real pods need the images on the clusters' nodes, and the demo loads them only into its own node");
    }
    if (!values["local-context"] || !values["remote-context"]) {
      throw new Error("with --kubeconfig, name both --local-context (imports) and --remote-context (is imported from)");
    }
  }
  if (values["local-process"]) return localProcessDemo(values);
  installMissingPackages();
  try {
    checkNodeCanStart();
  } catch (error) {
    // Another run's node is a reason to wait, not to switch paths: its message says how to stop it.
    if (error instanceof NodeUnavailable && !error.message.startsWith("a node already runs")) {
      throw new Error(`this machine cannot run a kubelet (${error.message.split(/[:;]/)[0]}): \`npm run demo -- --local-process\` runs the same story with the in-cluster process and the sidecar as local processes`, { cause: error });
    }
    throw error;
  }
  return realPodsDemo(values);
}

/**
 * The demo sets the machine up, as .ci/run does: the node's Debian packages and busybox-static
 * (the app's image), installed when missing and we are root with apt-get. Otherwise the node check
 * below says what is missing and how to go on.
 */
function installMissingPackages(): void {
  const wanted = [...NODE_PACKAGES, "busybox-static"];
  const installed = (pkg: string) => spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" }).stdout?.includes("install ok installed");
  const missing = wanted.filter((pkg) => !installed(pkg));
  if (missing.length === 0 || process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"]).status !== 0) return;
  step(`install the Debian packages a node needs: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", ...missing]]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (exit ${r.status}); install ${missing.join(" ")} by hand, or run npm run demo -- --local-process`);
  }
}

function contextConfig(kubeconfig: string, context: string): KubeConfig {
  const c = new KubeConfig();
  c.loadFromFile(kubeconfig);
  c.setCurrentContext(context);
  return c;
}

/** In the remote cluster: the service account pod-lister (may only list pods in default) and a pod to list. */
async function remoteStory(remote: KubeConfig): Promise<void> {
  const core2 = remote.makeApiClient(CoreV1Api);
  const rbac2 = remote.makeApiClient(RbacAuthorizationV1Api);
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
  console.log("  serviceaccount/pod-lister, role/pod-lister, rolebinding/pod-lister, pod/nginx (cluster2 has no node: the pod is only an object there)");
}

/** The story in real pods on the harness's node. */
async function realPodsDemo(values: Flags): Promise<void> {
  const started = Date.now();
  let state: ClustersState | undefined;
  const work = mkdtempSync(join(tmpdir(), "mcsa-demo-"));
  try {
    step("Start two local clusters: cluster1 with a real node (containerd + kubelet + kube-scheduler), cluster2 API only");
    state = await up({ dir: DEMO_DIR, count: 2, node: {}, log: (l) => console.log(`  ${l}`) });
    for (const c of state.clusters) console.log(`  ${c.name}: ${c.server}${c.node ? ` (node ${c.node.name})` : ""}`);
    const kubectl = state.kubectl;
    const flags = ["--kubeconfig", state.kubeconfig];
    const k1 = (...args: string[]) => show([kubectl, ...flags, "--context", "cluster1", ...args], { kubectl });

    step("Load the project's images into cluster1's node (built without Docker: npm run images -- build)");
    loadProjectImages(state, (l) => console.log(`  ${l}`));

    step("Install kubectl mcsa in cluster1: the manager runs as its Deployment, the webhook is called through its Service");
    show(["mcsa", "install", ...flags, "--context", "cluster1", "--image", MCSA_IMAGE, "--image-pull-policy", "Never", "--wait"]);
    k1("-n", SYSTEM_NAMESPACE, "get", "deployment,pods,endpoints", "-o", "wide");

    step("Bootstrap: let cluster1's controller import from cluster2");
    show(["mcsa", "bootstrap", ...flags, "--from", "cluster2", "--to", "cluster1", "--name", "cluster2", "--server", serverForPods(state, "cluster2")]);

    step("In cluster2: service account pod-lister (may only list pods in default) and a pod to list");
    await remoteStory(contextConfig(state.kubeconfig, "cluster2"));

    step("Import pod-lister of cluster2 into cluster1's default namespace");
    show(["mcsa", "import", IMPORT, ...flags, "--context", "cluster1", "-n", "default", "--cluster", "cluster2", "--remote-namespace", "default", "--service-account", "pod-lister", "--remote-context", "cluster2", "--wait"]);
    show(["mcsa", "get", ...flags, "--context", "cluster1"]);

    step("Run the original README's annotated pod in cluster1: the webhook injects the sidecar, the app lists cluster2's pods");
    k1("label", "namespace", "default", `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`, "--overwrite");
    const podFile = join(work, "multicluster-client.yaml");
    const podYaml = dumpYaml(clientPod({ name: "multicluster-client", importName: IMPORT, image: KUBECTL_IMAGE, script: listingScript(IMPORT) }), { lineWidth: -1 });
    writeFileSync(podFile, podYaml);
    console.log(`  ${podFile}:\n${podYaml.trimEnd().replace(/^/gm, "    ")}`);
    const created = Date.now();
    k1("apply", "-f", podFile);
    const core1 = contextConfig(state.kubeconfig, "cluster1").makeApiClient(CoreV1Api);
    const finished = await waitForPod(core1, "default", "multicluster-client", "the app to complete", (p) =>
      p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined,
    180_000);
    if (finished.status?.phase === "Failed") {
      k1("logs", "multicluster-client", "-c", "multicluster-client");
      throw new Error(`the app failed: ${describePod(finished)} (its logs are above)`);
    }
    console.log(`  created → Succeeded in ${((Date.now() - created) / 1000).toFixed(1)}s`);
    k1(
      "get", "pod", "multicluster-client", "-o",
      `jsonpath={range .status.initContainerStatuses[*]}init container {.name} (native sidecar): exit {.state.terminated.exitCode}{"\\n"}{end}{range .status.containerStatuses[*]}container {.name}: exit {.state.terminated.exitCode}{"\\n"}{end}`,
    );

    step("The app's logs");
    k1("logs", "multicluster-client", "-c", "multicluster-client");
    console.log(`  (the ${SIDECAR_CONTAINER_NAME} container wrote the kubeconfig the app used, and proxied its wget with the imported token)`);
    console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    if (values.keep) console.log(`\n  clusters left up: kubeconfig ${state.kubeconfig}; stop them with: npm run clusters -- down --dir ${DEMO_DIR}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (!values.keep) {
      await down(DEMO_DIR);
      const left = leftovers(DEMO_DIR, state);
      if (left.length > 0) {
        console.error(`\nleft on the machine after down:\n${left.map((l) => `  ${l}`).join("\n")}`);
        process.exitCode = 1;
      } else {
        console.log("\n(cleaned up: clusters and node stopped, their data removed; nothing left on the machine: no process, mount, cgroup, iptables chain, bridge or directory)");
      }
    }
  }
}

/** The story with the in-cluster process and the sidecar as local processes: for machines that cannot run a kubelet. */
async function localProcessDemo(values: Flags): Promise<void> {
  const existing = values.kubeconfig !== undefined;
  const started = Date.now();
  console.log("(local-process path: no kubelet here, so the in-cluster process and the injected sidecar run as local processes; npm run demo without --local-process runs them in real pods)");
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
      step("Start two local clusters (real etcd + kube-apiserver each, no node)");
      state = await up({ dir: DEMO_DIR, count: 2, log: (l) => console.log(`  ${l}`) });
      for (const c of state.clusters) console.log(`  ${c.name}: ${c.server}`);
      kubeconfig = state.kubeconfig;
      kubectl = state.kubectl;
      local = "cluster1";
      remote = "cluster2";
    }
    const flags = ["--kubeconfig", kubeconfig];
    const kc = (context: string) => contextConfig(kubeconfig, context);

    step(`Install kubectl mcsa in ${local} (its Deployment is not waited for: no node runs it here)`);
    show(["mcsa", "install", ...flags, "--context", local, "--wait=false"]);

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
    const webhookCA = join(work, "webhook-ca.pem");
    const manager = spawn(
      process.execPath,
      [join(ROOT, "manager/main.ts"), "--kubeconfig", controllerConfig, "--cluster-check-interval", "5s", "--webhook-listen", "127.0.0.1:0", "--webhook-ca-out", webhookCA],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
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
        const text = logLines.join("");
        if (text.includes("import controller started") && text.includes('"msg":"webhook listening"')) {
          clearTimeout(timer);
          ready();
        }
      });
      manager.on("exit", (code) => fail(new Error(`the controller exited (${code}):\n${logLines.join("")}`)));
    });
    const webhookUrl = /"msg":"webhook listening"[^\n]*"url":"([^"]+)"/.exec(logLines.join(""))![1]!;
    console.log(`  controller and webhook running (pid ${manager.pid}), webhook at ${webhookUrl}; JSON logs: ${controllerLog}${values.keep ? "" : " (removed at the end)"}`);
    show(["mcsa", "install", ...flags, "--context", local, "--webhook-url", webhookUrl, "--webhook-ca-file", webhookCA]);

    step(`Bootstrap: let ${local}'s controller import from ${remote}`);
    show(["mcsa", "bootstrap", ...flags, "--from", remote, "--to", local, "--name", "cluster2"]);

    step(`In ${remote}: service account pod-lister (may only list pods in default) and a pod to list`);
    await remoteStory(kc(remote));

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

    step(`Admit the original README's annotated pod in ${local}: the webhook injects the sidecar`);
    show([kubectl, ...flags, "--context", local, "label", "namespace", "default", "multicluster-service-account=enabled", "--overwrite"], { kubectl });
    const podFile = join(work, "pod.yaml");
    writeFileSync(
      podFile,
      [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: multicluster-client",
        "  annotations:",
        `    multicluster.admiralty.io/service-account-import.name: ${IMPORT}`,
        "spec:",
        "  restartPolicy: Never",
        "  containers:",
        "  - name: multicluster-client",
        "    image: quay.io/admiralty/multicluster-service-account-example-multicluster-client:latest",
      ].join("\n"),
    );
    // The API server loads webhook configurations through an informer: wait until ours intercepts.
    const core1 = kc(local).makeApiClient(CoreV1Api);
    const probeDeadline = Date.now() + 30_000;
    for (;;) {
      const probe = await core1.createNamespacedPod({
        namespace: "default",
        dryRun: "All",
        body: { metadata: { name: "probe", annotations: { "multicluster.admiralty.io/service-account-import.name": IMPORT } }, spec: { containers: [{ name: "c", image: "x" }] } },
      });
      if (probe.spec?.initContainers?.length) break;
      if (Date.now() > probeDeadline) throw new Error("the webhook did not intercept pod creation within 30s");
      await new Promise((r) => setTimeout(r, 250));
    }
    show([kubectl, ...flags, "--context", local, "apply", "-f", podFile], { kubectl });
    show(
      [kubectl, ...flags, "--context", local, "get", "pod", "multicluster-client", "-o",
        "jsonpath={range .spec.initContainers[*]}init container {.name} (restartPolicy {.restartPolicy}){\"\\n\"}{end}{range .spec.containers[*]}container {.name}: {range .env[*]}{.name}={.value} {end}{\"\\n\"}{end}"],
      { kubectl },
    );

    step("Run the pod's sidecar as the webhook injected it (no kubelet here: a local process with kubelet's volume layout)");
    const sidecarDir = join(work, "pod");
    const sidecar = spawn(process.execPath, [join(ROOT, "sidecar/local.ts"), ...flags, "--context", local, "-n", "default", "multicluster-client", "--dir", sidecarDir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(sidecar);
    const sidecarOut: string[] = [];
    sidecar.stdout!.on("data", (d: Buffer) => sidecarOut.push(d.toString()));
    sidecar.stderr!.on("data", (d: Buffer) => sidecarOut.push(d.toString()));
    const sidecarDeadline = Date.now() + 60_000;
    while (!/is ready/.test(sidecarOut.join(""))) {
      if (sidecar.exitCode !== null || Date.now() > sidecarDeadline) throw new Error(`the sidecar did not become ready:\n${sidecarOut.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ready = sidecarOut.join("");
    console.log(ready.split("\n").filter((l) => !l.startsWith("{") && /is ready|KUBECONFIG=|import |files:/.test(l)).map((l) => `  ${l.trim()}`).join("\n"));
    const podKubeconfig = /KUBECONFIG=(\S+)/.exec(ready)![1]!;
    const proxyUrl = /import \S+: (http:\/\/127\.0\.0\.1:\d+)/.exec(ready)![1]!;

    step(`List ${remote}'s pods three ways, as the app in the pod would`);
    console.log("  a) kubectl with the pod's KUBECONFIG (it points at the local proxy: no token to re-read on rotation)");
    show([kubectl, "--kubeconfig", podKubeconfig, "get", "pods", "-n", "default"], { kubectl });
    console.log("  b) kubectl through the pod's local proxy, with no credentials at all");
    show([kubectl, "--server", proxyUrl, "get", "pods", "-n", "default"], { kubectl });
    console.log("  c) a tiny Node app that only knows the proxy URL from its environment");
    const app = [
      "const url = process.env.MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL;",
      "const res = await fetch(`${url}/api/v1/namespaces/default/pods`);",
      "const list = await res.json();",
      "console.log(`GET ${url}/api/v1/namespaces/default/pods -> ${res.status}: ${list.items.map((p) => p.metadata.name).join(', ')}`);",
    ].join(" ");
    const appRun = spawnSync(process.execPath, ["--input-type=module", "-e", app], {
      encoding: "utf8",
      env: { ...process.env, MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL: proxyUrl },
    });
    if (appRun.status !== 0) throw new Error(`the app failed: ${appRun.stderr}`);
    console.log(`  ${appRun.stdout.trim()}`);

    step("Summary");
    console.log(`  ${remote}'s pods listed from ${local}'s import: ${listing.trim().split("\n").length - 1} pod(s), four ways (import kubeconfig, pod kubeconfig, proxy, app)`);
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
