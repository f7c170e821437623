// One local cluster: a real etcd and a real kube-apiserver on free loopback ports, with a
// per-cluster CA, an admin client certificate in system:masters, and TokenRequest enabled; and,
// for one cluster of the machine, a real node (containerd + kubelet) and kube-scheduler.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { createCA, createSigningKey, issue } from "../common/pki.ts";
import { authenticationConfig, serializeAuthenticationConfig } from "./auth-config.ts";
import type { Binaries } from "./binaries.ts";
import { kubeconfigFor } from "./kubeconfig.ts";
import { type NodeInfo, type NodeOptions, POD_CIDR, startNode, stopNode } from "./node.ts";
import { freePort, isRunning, logTail, processesUsing, startDetached, stopProcess } from "./processes.ts";

export interface ClusterInfo {
  name: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The service-account issuer; equals server, so discovery is served at the same address. */
  issuer: string;
  dir: string;
  caPem: string;
  adminCertPem: string;
  adminKeyPem: string;
  etcd: ServerProcess;
  apiserver: ServerProcess;
  /** Runs the controllers that imports, Deployments, nodes and service accounts need (CONTROLLERS). */
  controllerManager: ServerProcess;
  /** Only with a node. */
  scheduler?: ServerProcess;
  /** A real node registered to this cluster (kubelet + containerd), if it has one. */
  node?: NodeInfo;
  /** The API server's URL as the node's pods reach it (the pod network's gateway), when a node runs. */
  podServer?: string;
  /**
   * The API server's audit log (JSON lines, Metadata level): a witness of what reached the server,
   * as whom, with which credential (user.extra["authentication.kubernetes.io/credential-id"]).
   */
  auditLog: string;
  /**
   * The API server's --authentication-config file (AuthenticationConfiguration v1; no JWT
   * authenticator at start). The server reloads it without a restart: change it with
   * writeAuthenticationConfig (harness/auth-config.ts), which waits for the reload.
   */
  authenticationConfig: string;
}

export interface ServerProcess {
  pid: number;
  binary: string;
  args: string[];
  log: string;
}

const READY_TIMEOUT_MS = 120_000;

/**
 * What kube-controller-manager runs: the garbage collector and namespace controller (imports rely
 * on them), what Deployments need, node lifecycle (lifts the not-ready taint), the "default"
 * service account and kube-root-ca.crt of every namespace (projected tokens), Service endpoints
 * (the API server reaches webhook Services through them) and the pod garbage collector.
 */
export const CONTROLLERS = [
  "garbage-collector-controller",
  "namespace-controller",
  "deployment-controller",
  "replicaset-controller",
  "node-lifecycle-controller",
  "serviceaccount-controller",
  "root-ca-certificate-publisher-controller",
  "endpoints-controller",
  "endpointslice-controller",
  "endpointslice-mirroring-controller",
  "pod-garbage-collector-controller",
];

/** The API server's client identity towards kubelets; bound to system:kubelet-api-admin. */
const KUBELET_CLIENT = "kube-apiserver-kubelet-client";

export const nodeNameOf = (cluster: string) => `${cluster}-node`;

/** The host as the node's pods see it: the bridge's gateway address on the pod network. */
export const POD_GATEWAY = POD_CIDR.replace(/\.0\/\d+$/, ".1");
/** The kubernetes Service's ClusterIP (first address of --service-cluster-ip-range). */
const KUBERNETES_SERVICE_IP = "10.0.0.1";

export interface StartOptions {
  /** Give this cluster a real node (one per machine). */
  node?: NodeOptions;
  /**
   * Pods of the run's node call this API server (in-cluster clients, and another cluster's imports):
   * it listens on every address and its certificate names the pod network's gateway.
   */
  reachableFromPods?: boolean;
  log?: (line: string) => void;
}

export async function startCluster(name: string, clusterDir: string, binaries: Binaries, options: StartOptions = {}): Promise<ClusterInfo> {
  const pki = join(clusterDir, "pki");
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  const [etcdClientPort, etcdPeerPort, apiserverPort, kcmPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const server = `https://127.0.0.1:${apiserverPort}`;

  const ca = await createCA(`${name}-ca`);
  const serving = await issue(ca, {
    commonName: "kube-apiserver",
    usage: "server",
    ipAddresses: ["127.0.0.1", KUBERNETES_SERVICE_IP, ...(options.reachableFromPods ? [POD_GATEWAY] : [])],
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
  });
  const admin = await issue(ca, { commonName: "admin", organizations: ["system:masters"], usage: "client" });
  const kubeletClient = await issue(ca, { commonName: KUBELET_CLIENT, usage: "client" });
  const signing = await createSigningKey();
  const file = (fileName: string, content: string) => {
    const path = join(pki, fileName);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const caFile = file("ca.crt", ca.cert);
  const servingCert = file("apiserver.crt", serving.cert);
  const servingKey = file("apiserver.key", serving.key);
  const saKey = file("sa.key", signing.privateKey);
  const saPub = file("sa.pub", signing.publicKey);
  const kubeletClientCert = file("apiserver-kubelet-client.crt", kubeletClient.cert);
  const kubeletClientKey = file("apiserver-kubelet-client.key", kubeletClient.key);
  const auditLog = join(clusterDir, "audit.log");
  const auditPolicy = join(clusterDir, "audit-policy.yaml");
  writeFileSync(
    auditPolicy,
    ["apiVersion: audit.k8s.io/v1", "kind: Policy", "omitStages: [RequestReceived]", "rules:", "  - level: Metadata", ""].join("\n"),
  );

  const etcdArgs = [
    `--name=${name}`,
    `--data-dir=${join(clusterDir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${etcdClientPort}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdClientPort}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
    `--initial-cluster=${name}=http://127.0.0.1:${etcdPeerPort}`,
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
  const authenticationConfigFile = join(clusterDir, "authentication-config.yaml");
  writeFileSync(authenticationConfigFile, serializeAuthenticationConfig(authenticationConfig()), { mode: 0o600 });
  const apiserverArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClientPort}`,
    // Pods reach the host through the bridge's gateway address, not its loopback.
    `--bind-address=${options.reachableFromPods ? "0.0.0.0" : "127.0.0.1"}`,
    "--advertise-address=127.0.0.1",
    // A loopback address cannot back the kubernetes Service's endpoints; nothing here needs them.
    "--endpoint-reconciler-type=none",
    `--secure-port=${apiserverPort}`,
    `--tls-cert-file=${servingCert}`,
    `--tls-private-key-file=${servingKey}`,
    `--client-ca-file=${caFile}`,
    // As a real cluster: kubelets are authorised by the Node authorizer and NodeRestriction.
    "--authorization-mode=Node,RBAC",
    `--kubelet-client-certificate=${kubeletClientCert}`,
    `--kubelet-client-key=${kubeletClientKey}`,
    `--kubelet-certificate-authority=${caFile}`,
    "--kubelet-preferred-address-types=InternalIP",
    // No kube-proxy: the API server reaches webhook and aggregated Services through their endpoints.
    "--enable-aggregator-routing=true",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--allow-privileged=true",
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    // No pod gets a kube-api-access volume unasked (controller-runtime's envtest does the same):
    // pods that need a token mount a projected one themselves, as kubectl mcsa's manager does.
    "--disable-admission-plugins=ServiceAccount",
    "--enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
    "--profiling=false",
    `--authentication-config=${authenticationConfigFile}`,
    `--audit-policy-file=${auditPolicy}`,
    `--audit-log-path=${auditLog}`,
    "--audit-log-mode=blocking",
    "--audit-log-maxsize=200",
    "--v=1",
  ];

  const adminKubeconfig = file(
    "admin.kubeconfig",
    kubeconfigFor([{ name, server, caPem: ca.cert, adminCertPem: admin.cert, adminKeyPem: admin.key }]),
  );
  const kcmArgs = [
    `--kubeconfig=${adminKubeconfig}`,
    `--authentication-kubeconfig=${adminKubeconfig}`,
    `--authorization-kubeconfig=${adminKubeconfig}`,
    `--controllers=${CONTROLLERS.join(",")}`,
    `--root-ca-file=${caFile}`,
    // Lifts the new node's not-ready taint within a second of it being Ready (default 5 s).
    "--node-monitor-period=1s",
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    `--secure-port=${kcmPort}`,
    "--v=1",
  ];

  const etcdLog = join(clusterDir, "etcd.log");
  const apiserverLog = join(clusterDir, "kube-apiserver.log");
  const info: ClusterInfo = {
    name,
    server,
    ...(options.reachableFromPods ? { podServer: `https://${POD_GATEWAY}:${apiserverPort}` } : {}),
    issuer: server,
    auditLog,
    authenticationConfig: authenticationConfigFile,
    dir: clusterDir,
    caPem: ca.cert,
    adminCertPem: admin.cert,
    adminKeyPem: admin.key,
    etcd: { pid: startDetached(binaries.etcd, etcdArgs, etcdLog), binary: binaries.etcd, args: etcdArgs, log: etcdLog },
    apiserver: { pid: 0, binary: binaries.kubeApiserver, args: apiserverArgs, log: apiserverLog },
    controllerManager: {
      pid: 0,
      binary: binaries.kubeControllerManager,
      args: kcmArgs,
      log: join(clusterDir, "kube-controller-manager.log"),
    },
  };
  try {
    info.apiserver.pid = startDetached(binaries.kubeApiserver, apiserverArgs, apiserverLog);
    await waitReady(info);
    await allowIssuerDiscovery(info);
    await allowKubeletAccess(info);
    const kcm = info.controllerManager;
    kcm.pid = startDetached(kcm.binary, kcm.args, kcm.log);
    if (options.node) await startClusterNode(info, binaries, ca, options.node, options.log ?? (() => {}));
  } catch (error) {
    await stopCluster(info);
    throw error;
  }
  return info;
}

/** The scheduler and a node for the cluster: each with its own client certificate and kubeconfig. */
async function startClusterNode(
  info: ClusterInfo,
  binaries: Binaries,
  ca: Awaited<ReturnType<typeof createCA>>,
  options: NodeOptions,
  log: (line: string) => void,
): Promise<void> {
  const nodeName = nodeNameOf(info.name);
  const nodeDir = join(info.dir, "node");
  mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const kubeconfigAs = async (fileName: string, commonName: string, organizations: string[] = []) => {
    const cert = await issue(ca, { commonName, organizations, usage: "client" });
    const path = join(info.dir, "pki", fileName);
    writeFileSync(path, kubeconfigFor([{ name: info.name, server: info.server, caPem: ca.cert, adminCertPem: cert.cert, adminKeyPem: cert.key }]), { mode: 0o600 });
    return path;
  };
  const schedulerKubeconfig = await kubeconfigAs("scheduler.kubeconfig", "system:kube-scheduler");
  const schedulerPort = await freePort();
  const schedulerArgs = [
    `--kubeconfig=${schedulerKubeconfig}`,
    `--authentication-kubeconfig=${schedulerKubeconfig}`,
    `--authorization-kubeconfig=${schedulerKubeconfig}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    `--secure-port=${schedulerPort}`,
    "--v=1",
  ];
  const schedulerLog = join(info.dir, "kube-scheduler.log");
  info.scheduler = { pid: startDetached(binaries.kubeScheduler, schedulerArgs, schedulerLog), binary: binaries.kubeScheduler, args: schedulerArgs, log: schedulerLog };

  const nodeKubeconfig = await kubeconfigAs("node.kubeconfig", `system:node:${nodeName}`, ["system:nodes"]);
  const node = await startNode({
    name: nodeName,
    dir: nodeDir,
    kubeconfig: nodeKubeconfig,
    credentials: {
      caFile: join(info.dir, "pki", "ca.crt"),
      // For the node's InternalIP (startNode finds it), so that the API server can verify the kubelet.
      servingFor: (address) => issue(ca, { commonName: `system:node:${nodeName}`, usage: "server", ipAddresses: [address], dnsNames: [nodeName] }),
    },
    kubeletBinary: binaries.kubelet,
    options,
    log,
    nodeStatus: async () => {
      const res = await adminRequest(info, "GET", `/api/v1/nodes/${nodeName}`);
      if (res.status !== 200) return undefined;
      const n = JSON.parse(res.body) as { spec?: { taints?: { key: string }[] }; status?: { conditions?: { type: string; status: string }[] } };
      return {
        ready: n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
        tainted: n.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes.io/")) ?? false,
      };
    },
  });
  info.node = node;
  routeKubernetesService(info);
}

/**
 * In-cluster clients (client-go, client-node) call $KUBERNETES_SERVICE_HOST:443, the kubernetes
 * Service's ClusterIP. Without kube-proxy nothing routes it: one DNAT rule, in a KUBE- chain that
 * stopNode removes with the kubelet's, sends it from the pods to this API server.
 */
function routeKubernetesService(info: ClusterInfo): void {
  const port = new URL(info.server).port;
  const chain = "KUBE-MCSA-SERVICES";
  const rules = [
    ["-N", chain],
    ["-A", "PREROUTING", "-j", chain],
    ["-A", chain, "-s", POD_CIDR, "-d", `${KUBERNETES_SERVICE_IP}/32`, "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", `${POD_GATEWAY}:${port}`],
  ];
  for (const rule of rules) {
    const r = spawnSync("/usr/sbin/iptables", ["-w", "-t", "nat", ...rule], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${info.name}: could not route the kubernetes Service to the API server (iptables ${rule.join(" ")}): ${(r.stderr || String(r.error)).trim()}`);
  }
}

export async function stopCluster(info: ClusterInfo): Promise<void> {
  const nodeDir = join(info.dir, "node");
  if (info.node || existsSync(nodeDir)) await stopNode(nodeDir, info.scheduler ? [info.scheduler] : []);
  else if (info.scheduler) await stopProcess(info.scheduler.pid, info.scheduler.binary);
  await stopProcess(info.controllerManager.pid, info.controllerManager.binary);
  await stopProcess(info.apiserver.pid, info.apiserver.binary);
  await stopProcess(info.etcd.pid, info.etcd.binary);
}

/**
 * Stops only the API server, keeping etcd and its data: the remote API is "down". Found by its
 * arguments, not only its recorded pid: another test file's copy of the state may have restarted it.
 */
export async function stopApiserver(info: ClusterInfo): Promise<void> {
  const running = processesUsing(`${info.dir}/`, [info.apiserver.binary]);
  await Promise.all([info.apiserver, ...running].map((p) => stopProcess(p.pid, info.apiserver.binary)));
}

/** Starts the API server again on the same port, with the same keys and data. */
export async function restartApiserver(info: ClusterInfo): Promise<void> {
  await stopApiserver(info);
  info.apiserver.pid = startDetached(info.apiserver.binary, info.apiserver.args, info.apiserver.log);
  await waitReady(info);
}

/** A second API server of a cluster (harness/cluster.ts startApiserverReplica). */
export interface ApiserverReplica extends ServerProcess {
  /** https://127.0.0.1:<its port> (the cluster's certificate names 127.0.0.1, so its CA verifies it). */
  server: string;
  dir: string;
}

/**
 * A second kube-apiserver of the cluster, as in a highly available control plane: the same etcd,
 * keys, certificates and service-account issuer, on its own port, with its own directory (a copy
 * of the cluster's pki) and audit log. Whoever reaches the cluster through it alone sees the remote
 * down when it stops, while the cluster's own API server (and every other test) goes on.
 * dir must not be inside the cluster's directory: stopApiserver finds the cluster's API server by it.
 */
export async function startApiserverReplica(info: ClusterInfo, dir: string): Promise<ApiserverReplica> {
  if (dir.startsWith(`${info.dir}/`)) throw new Error(`the replica's directory ${dir} must be outside ${info.dir}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  cpSync(join(info.dir, "pki"), join(dir, "pki"), { recursive: true });
  cpSync(join(info.dir, "audit-policy.yaml"), join(dir, "audit-policy.yaml"));
  const port = await freePort();
  // The replica trusts what the cluster trusts: it reads the cluster's own --authentication-config (one file to change).
  const args = info.apiserver.args.map((a) =>
    a.startsWith("--secure-port=")
      ? `--secure-port=${port}`
      : a.startsWith("--audit-log-path=")
        ? `--audit-log-path=${join(dir, "audit.log")}`
        : a.startsWith("--authentication-config=")
          ? a
          : a.replaceAll(`${info.dir}/`, `${dir}/`),
  );
  const log = join(dir, "kube-apiserver.log");
  const replica: ApiserverReplica = { pid: 0, binary: info.apiserver.binary, args, log, server: `https://127.0.0.1:${port}`, dir };
  await restartApiserverReplica(replica, info);
  return replica;
}

/** Stops a replica (startApiserverReplica); etcd and the cluster's own API server go on. */
export async function stopApiserverReplica(replica: ApiserverReplica): Promise<void> {
  const running = processesUsing(`${replica.dir}/`, [replica.binary]);
  await Promise.all([replica, ...running].map((p) => stopProcess(p.pid, replica.binary)));
}

/** Starts a stopped replica again on the same port. */
export async function restartApiserverReplica(replica: ApiserverReplica, info: ClusterInfo): Promise<void> {
  await stopApiserverReplica(replica);
  replica.pid = startDetached(replica.binary, replica.args, replica.log);
  await waitReady({ ...info, server: replica.server, apiserver: replica });
}

/** A request to the cluster as its admin; resolves with the status code and body. */
export function adminRequest(
  info: ClusterInfo,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${info.server}${path}`,
      {
        method,
        ca: info.caPem,
        cert: info.adminCertPem,
        key: info.adminKeyPem,
        headers: payload ? { "content-type": "application/json" } : {},
        timeout: 5_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => done({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${info.server}${path} timed out`)));
    req.on("error", fail);
    req.end(payload);
  });
}

async function waitReady(info: ClusterInfo): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    for (const [label, proc] of [["etcd", info.etcd], ["kube-apiserver", info.apiserver]] as const) {
      if (!isRunning(proc.pid, proc.binary)) {
        throw new Error(`${info.name}: ${label} exited during start-up; last lines of ${proc.log}:\n${logTail(proc.log)}`);
      }
    }
    try {
      const res = await adminRequest(info, "GET", "/readyz");
      if (res.status === 200) return;
      last = `readyz answered ${res.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await delay(250);
  }
  throw new Error(
    `${info.name}: kube-apiserver not ready after ${READY_TIMEOUT_MS / 1000}s (${last}); last lines of ${info.apiserver.log}:\n${logTail(info.apiserver.log)}`,
  );
}

/** Binds a ClusterRole to a user or group (kept if it exists); what says what it is for, in errors. */
async function bindClusterRole(info: ClusterInfo, name: string, role: string, subject: { kind: "User" | "Group"; name: string }, what: string): Promise<void> {
  const res = await adminRequest(info, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", ...subject }],
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`${info.name}: could not ${what} (${res.status}): ${res.body}`);
}

/** Lets the API server, as KUBELET_CLIENT, use kubelets' APIs: logs, exec, port-forward (as kubeadm does). */
const allowKubeletAccess = (info: ClusterInfo) =>
  bindClusterRole(info, "kube-apiserver-kubelet-api-admin", "system:kubelet-api-admin", { kind: "User", name: KUBELET_CLIENT }, "let the API server reach kubelets");

/**
 * Lets anyone read the service-account issuer's discovery documents, so that another cluster
 * can be configured to trust this one's tokens (it fetches them without credentials).
 */
const allowIssuerDiscovery = (info: ClusterInfo) =>
  bindClusterRole(
    info,
    "service-account-issuer-discovery-unauthenticated",
    "system:service-account-issuer-discovery",
    { kind: "Group", name: "system:unauthenticated" },
    "open issuer discovery",
  );
