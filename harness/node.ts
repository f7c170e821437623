// A real node for a local cluster: its own containerd (with runc and a CNI bridge) and a kubelet
// that registers with the cluster's API server as system:node:<name>. One per machine: the
// kubelet and the CNI plugins write to fixed machine paths (kubepods cgroups, iptables chains,
// /var/lib/cni, /run/netns, /var/log/containers), which stopNode removes again.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { join, resolve } from "node:path";
import { cacheDir } from "./binaries.ts";
import type { ServerProcess } from "./cluster.ts";
import { freePort, isRunning, logTail, startDetached, stopProcess } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** The Debian packages a node needs; `.ci/run` installs them, the harness only checks. */
export const NODE_PACKAGES = ["containerd", "runc", "containernetworking-plugins", "iptables"] as const;
export const APT_INSTALL = `apt-get install -y ${NODE_PACKAGES.join(" ")}`;
export const DEFAULT_SANDBOX_IMAGE = "localhost/pause:dev";
export const CNI_BIN_DIR = "/usr/lib/cni";
/** The pods' network: clear of this machine's routes (192.0.2.0/24) and of the Service range. */
export const POD_CIDR = "10.88.0.0/16";
export const BRIDGE = "mcsa0";

/** What must be on the machine for a node, with the package that provides it. */
export const NODE_REQUIREMENTS: { path: string; pkg: (typeof NODE_PACKAGES)[number] }[] = [
  { path: "/usr/bin/containerd", pkg: "containerd" },
  { path: "/usr/bin/containerd-shim-runc-v2", pkg: "containerd" },
  { path: "/usr/bin/ctr", pkg: "containerd" },
  { path: "/usr/sbin/runc", pkg: "runc" },
  { path: `${CNI_BIN_DIR}/bridge`, pkg: "containernetworking-plugins" },
  { path: `${CNI_BIN_DIR}/host-local`, pkg: "containernetworking-plugins" },
  { path: `${CNI_BIN_DIR}/loopback`, pkg: "containernetworking-plugins" },
  { path: "/usr/sbin/iptables", pkg: "iptables" },
  { path: "/usr/sbin/ip6tables", pkg: "iptables" },
];

/** Sysctls the kubelet (kernel tunables) and the bridge plugin (ip_forward) change; stopNode restores them. */
export const TOUCHED_SYSCTLS = [
  "net/ipv4/ip_forward",
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];

/** Machine paths the kubelet, containerd's shims and the CNI plugins create outside the node's directory. */
export const MACHINE_PATHS = ["/var/lib/cni", "/var/log/containers", "/var/log/pods", "/var/lib/kubelet", "/run/containerd", "/run/netns"];

export interface NodeInfo {
  name: string;
  /** The node's InternalIP, where its kubelet listens: the machine's own address (a kubelet refuses loopback). */
  address: string;
  dir: string;
  containerdSocket: string;
  sandboxImage: string;
  podCidr: string;
  bridge: string;
  containerd: ServerProcess;
  kubelet: ServerProcess;
  /** Seconds from the kubelet's start to the Node being Ready and free of the not-ready taint. */
  readySeconds: number;
  /** Sysctls and machine directories as they were before the node: stopNode restores them. */
  machineBefore: MachineBefore;
}

/** What the machine looked like before the node started: written first, so that any `down` can undo it. */
export interface MachineBefore {
  sysctls: Record<string, string>;
  missingPaths: string[];
}

export interface NodeOptions {
  sandboxImage?: string;
}

export class NodeUnavailable extends Error {}

/**
 * Why a node cannot start here, as one line that says what to do, or undefined if it can.
 * Pure: takes what exists and who we are.
 */
export function nodeBlocker(facts: { uid: number; exists: (path: string) => boolean; runningKubelet?: { pid: number; dir: string } }): string | undefined {
  if (facts.uid !== 0) return "a node needs root (it runs containerd, runc and a kubelet); run as root, or start the clusters without one: `npm run clusters -- up --no-node`";
  const missing = [...new Set(NODE_REQUIREMENTS.filter((r) => !facts.exists(r.path)).map((r) => r.pkg))];
  if (missing.length > 0) {
    return `a node needs the Debian package${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: run \`${APT_INSTALL}\` (.ci/run does), or start the clusters without a node: \`npm run clusters -- up --no-node\``;
  }
  if (facts.runningKubelet) {
    const { pid, dir } = facts.runningKubelet;
    return `a node already runs on this machine (kubelet pid ${pid}, clusters in ${dir}) and only one can: stop it with \`npm run clusters -- down --dir ${dir}\`, or start without a node: \`npm run clusters -- up --no-node\``;
  }
  return undefined;
}

/** A running kubelet anywhere on the machine, and the clusters directory it belongs to if it is ours. */
export function runningKubelet(): { pid: number; dir: string } | undefined {
  for (const p of listProcesses()) {
    if (p.comm !== "kubelet") continue;
    const root = p.args.find((a) => a.startsWith("--root-dir="))?.slice("--root-dir=".length);
    // <clusters dir>/<cluster>/node/kubelet
    return { pid: p.pid, dir: root ? resolve(root, "../../..") : "(not a kubectl-mcsa node)" };
  }
  return undefined;
}

export function checkNodeCanStart(): void {
  const blocker = nodeBlocker({ uid: process.getuid?.() ?? -1, exists: existsSync, runningKubelet: runningKubelet() });
  if (blocker) throw new NodeUnavailable(blocker);
}

export interface NodeCredentials {
  /** The cluster CA: kubelet clients (the API server) must present a certificate it issued. */
  caFile: string;
  /** Issues the kubelet's serving certificate (PEM cert and key) for the node's address, from the cluster CA. */
  servingFor: (address: string) => Promise<{ cert: string; key: string }>;
}

/**
 * The machine's address towards its default route (else its first non-loopback IPv4): the kubelet
 * refuses a loopback node IP, and the API server reaches the kubelet at the node's InternalIP.
 */
export function machineAddress(): string {
  const route = spawnSync("ip", ["-o", "-4", "route", "get", "192.0.2.255"], { encoding: "utf8" }).stdout ?? "";
  const src = / src (\d+\.\d+\.\d+\.\d+)/.exec(route)?.[1];
  if (src && !src.startsWith("127.")) return src;
  const any = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  if (!any) throw new NodeUnavailable("a node needs a non-loopback IPv4 address for its kubelet (the kubelet refuses 127.0.0.1); start the clusters without one: `npm run clusters -- up --no-node`");
  return any.address;
}

/** The kubelet's configuration file (KubeletConfiguration v1beta1), as YAML-compatible JSON. */
export function kubeletConfiguration(p: {
  address: string;
  socket: string;
  port: number;
  healthzPort: number;
  caFile: string;
  servingCert: string;
  servingKey: string;
  podLogsDir: string;
}): string {
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // This machine kind runs cgroup v1 and has no systemd.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${p.socket}`,
    imageServiceEndpoint: `unix://${p.socket}`,
    address: p.address,
    port: p.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: p.healthzPort,
    tlsCertFile: p.servingCert,
    tlsPrivateKeyFile: p.servingKey,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: p.caFile } },
    authorization: { mode: "Webhook" },
    // Default 1 min: a Secret update would take over a minute to reach a running container.
    syncFrequency: "10s",
    podLogsDir: p.podLogsDir,
    // A shared, mostly full disk: never evict or collect images because of it.
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    maxPods: 50,
    serializeImagePulls: false,
    shutdownGracePeriod: "0s",
  };
  return JSON.stringify(config, null, 2);
}

/** containerd's own configuration: every path under dir, CRI set up for this machine. */
export function containerdConfig(p: { dir: string; socket: string; cniConfDir: string; sandboxImage: string }): string {
  const q = JSON.stringify;
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    "version = 2",
    `root = ${q(join(p.dir, "root"))}`,
    `state = ${q(join(p.dir, "state"))}`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    "[grpc]",
    `  address = ${q(p.socket)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(join(p.dir, "opt"))}`,
    `${cri}]`,
    `  sandbox_image = ${q(p.sandboxImage)}`,
    // This machine's root lacks CAP_SYS_RESOURCE: a negative oom_score_adj makes every sandbox fail.
    "  restrict_oom_score_adj = true",
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `${cri}.containerd.runtimes.runc.options]`,
    `  Root = ${q(join(p.dir, "runc"))}`,
    "  SystemdCgroup = false",
    `${cri}.cni]`,
    `  bin_dir = ${q(CNI_BIN_DIR)}`,
    `  conf_dir = ${q(p.cniConfDir)}`,
    "  max_conf_num = 1",
    "",
  ].join("\n");
}

/** The CNI network: one bridge with a gateway address (so the host reaches pods) that is the pods' default route, no masquerade. */
export function cniConflist(p: { ipamDir: string; bridge?: string; podCidr?: string }): string {
  return JSON.stringify(
    {
      cniVersion: "0.4.0",
      name: "mcsa",
      plugins: [
        {
          type: "bridge",
          bridge: p.bridge ?? BRIDGE,
          isGateway: true,
          // A default route through the host: pods reach Service IPs (the kubernetes Service's DNAT) and the host's addresses.
          isDefaultGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: p.podCidr ?? POD_CIDR }]], dataDir: p.ipamDir },
        },
      ],
    },
    null,
    2,
  );
}

const sysctlPath = (name: string) => join("/proc/sys", name);

function readMachineBefore(): MachineBefore {
  const sysctls: Record<string, string> = {};
  for (const name of TOUCHED_SYSCTLS) {
    try {
      sysctls[name] = readFileSync(sysctlPath(name), "utf8").trim();
    } catch {
      // Not on this kernel.
    }
  }
  return { sysctls, missingPaths: MACHINE_PATHS.filter((p) => !existsSync(p)) };
}

/**
 * The machine as it was before a node first changed it, kept outside any run's directory until a
 * stop has restored it: a node that crashed leaves it behind, and the next node keeps it (the
 * values it would read now are the crashed node's).
 */
export const machineRecord = () => join(cacheDir(), "node-machine-before.json");

function recordMachineBefore(): MachineBefore {
  const existing = machineBeforeRecorded();
  if (existing) return existing;
  const before = readMachineBefore();
  mkdirSync(cacheDir(), { recursive: true });
  writeFileSync(machineRecord(), JSON.stringify(before, null, 2));
  return before;
}

export function machineBeforeRecorded(): MachineBefore | undefined {
  try {
    return JSON.parse(readFileSync(machineRecord(), "utf8")) as MachineBefore;
  } catch {
    return undefined;
  }
}

/**
 * Starts containerd and the kubelet, and waits until the Node is Ready and schedulable.
 * kubeconfig is the node's (client certificate CN=system:node:<name>, O=system:nodes); nodeStatus
 * asks the API server, as admin, about the Node.
 */
export async function startNode(p: {
  name: string;
  dir: string;
  kubeconfig: string;
  credentials: NodeCredentials;
  kubeletBinary: string;
  options?: NodeOptions;
  log: (line: string) => void;
  nodeStatus: () => Promise<{ ready: boolean; tainted: boolean } | undefined>;
}): Promise<NodeInfo> {
  const dir = p.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // First of all: what we are about to change, so that stopNode can restore it even after a crash.
  const before = recordMachineBefore();

  const containerdDir = join(dir, "containerd");
  const socket = join(containerdDir, "containerd.sock");
  const cniConfDir = join(dir, "cni", "net.d");
  const podLogsDir = join(dir, "pod-logs");
  for (const d of [containerdDir, cniConfDir, podLogsDir, join(dir, "kubelet"), join(dir, "pki")]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const sandboxImage = p.options?.sandboxImage ?? DEFAULT_SANDBOX_IMAGE;
  const containerdConfigFile = join(containerdDir, "config.toml");
  writeFileSync(containerdConfigFile, containerdConfig({ dir: containerdDir, socket, cniConfDir, sandboxImage }));
  writeFileSync(join(cniConfDir, "10-mcsa.conflist"), cniConflist({ ipamDir: join(dir, "cni", "networks") }));

  const pki = join(dir, "pki");
  const file = (name: string, content: string) => {
    const path = join(pki, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const address = machineAddress();
  const serving = await p.credentials.servingFor(address);
  const servingCert = file("kubelet.crt", serving.cert);
  const servingKey = file("kubelet.key", serving.key);
  const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
  const kubeletConfigFile = join(dir, "kubelet-config.json");
  writeFileSync(
    kubeletConfigFile,
    kubeletConfiguration({ address, socket, port, healthzPort, caFile: p.credentials.caFile, servingCert, servingKey, podLogsDir }),
  );

  const containerdArgs = ["--config", containerdConfigFile, "--log-level", "warn"];
  const kubeletArgs = [
    `--config=${kubeletConfigFile}`,
    `--kubeconfig=${p.kubeconfig}`,
    `--root-dir=${join(dir, "kubelet")}`,
    `--cert-dir=${pki}`,
    `--hostname-override=${p.name}`,
    `--node-ip=${address}`,
    "--v=1",
  ];
  const info: NodeInfo = {
    name: p.name,
    address,
    dir,
    containerdSocket: socket,
    sandboxImage,
    podCidr: POD_CIDR,
    bridge: BRIDGE,
    containerd: { pid: 0, binary: "/usr/bin/containerd", args: containerdArgs, log: join(dir, "containerd.log") },
    kubelet: { pid: 0, binary: p.kubeletBinary, args: kubeletArgs, log: join(dir, "kubelet.log") },
    readySeconds: 0,
    machineBefore: before,
  };
  info.containerd.pid = startDetached(info.containerd.binary, containerdArgs, info.containerd.log);
  // A process that exits ends the wait at once, with one line that says why (waitFor would retry a throw).
  const exited = (proc: ServerProcess, what: string) =>
    new NodeUnavailable(
      `${what} exited while the node started (${lastError(proc.log)}; log: ${proc.log}): fix that, or start the clusters without a node: \`npm run clusters -- up --no-node\``,
    );
  const listening = await waitFor(
    `containerd to listen on ${socket}`,
    async () => (!isRunning(info.containerd.pid, info.containerd.binary) ? "exited" : (await canConnect(socket)) && "listening") || undefined,
    30_000,
    50,
  ).catch((error: Error) => {
    throw new NodeUnavailable(`${error.message}; see ${info.containerd.log}, or start the clusters without a node: \`npm run clusters -- up --no-node\``);
  });
  if (listening === "exited") throw exited(info.containerd, "containerd");

  const kubeletStarted = Date.now();
  info.kubelet.pid = startDetached(info.kubelet.binary, kubeletArgs, info.kubelet.log);
  const outcome = await waitFor(
    `node ${p.name} to be Ready and schedulable`,
    async () => {
      if (!isRunning(info.containerd.pid, info.containerd.binary)) return "containerd";
      if (!isRunning(info.kubelet.pid, info.kubelet.binary)) return "kubelet";
      const status = await p.nodeStatus();
      return status?.ready && !status.tainted ? "ready" : undefined;
    },
    90_000,
    100,
  ).catch((error: Error) => {
    throw new NodeUnavailable(`${error.message}; see ${info.kubelet.log}`);
  });
  if (outcome === "containerd") throw exited(info.containerd, "containerd");
  if (outcome === "kubelet") throw exited(info.kubelet, "the kubelet");
  info.readySeconds = (Date.now() - kubeletStarted) / 1000;
  p.log(`node ${p.name} Ready ${info.readySeconds.toFixed(1)}s after the kubelet started`);
  return info;
}

/** The log's last error line (klog "E…" or containerd level=error/fatal), else its last line, on one line. */
function lastError(logFile: string): string {
  const lines = logTail(logFile, 40).split("\n");
  const error = lines.filter((l) => /^[EF]\d{4} |level=(error|fatal)/.test(l)).pop() ?? lines.pop() ?? "";
  return error.replace(/\s+/g, " ").trim().slice(0, 300) || "no output";
}

function canConnect(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((done) => {
    const s = connect(socket);
    s.once("connect", () => {
      s.destroy();
      done(true);
    });
    s.once("error", () => done(false));
  });
}

interface Proc {
  pid: number;
  comm: string;
  args: string[];
}

function listProcesses(): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (/^\d+ \(.*\) Z /.test(stat)) continue;
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
      found.push({ pid: Number(entry), comm, args });
    } catch {
      // Ended while we looked.
    }
  }
  return found;
}

/** Processes whose command line mentions dir (kubelet, containerd, shims, scheduler, servers). */
export function processesMentioning(dir: string): Proc[] {
  const prefix = `${resolve(dir)}/`;
  return listProcesses().filter((p) => p.pid !== process.pid && p.args.some((a) => a.includes(prefix)));
}

/** Every cgroup directory named kubepods (and below), deepest first, in every hierarchy. */
function kubepodsCgroups(): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) walk(join(d, entry.name));
    found.push(d);
  };
  for (const hierarchy of cgroupHierarchies()) {
    const top = join(hierarchy, "kubepods");
    if (existsSync(top)) walk(top);
  }
  return found;
}

function cgroupHierarchies(): string[] {
  const root = "/sys/fs/cgroup";
  if (!existsSync(root)) return [];
  if (existsSync(join(root, "cgroup.procs"))) return [root]; // cgroup v2 only
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.isSymbolicLink())
    .map((e) => join(root, e.name));
}

function pidsIn(cgroups: string[]): number[] {
  const pids = new Set<number>();
  for (const cg of cgroups) {
    try {
      for (const line of readFileSync(join(cg, "cgroup.procs"), "utf8").split("\n")) if (line) pids.add(Number(line));
    } catch {
      // Removed meanwhile.
    }
  }
  return [...pids];
}

function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points under the node's directory, and the pods' network namespaces, most recent first. */
function nodeMounts(dir: string | undefined, machineWide = true): string[] {
  const prefixes = machineWide ? ["/run/netns/cni-", "/var/run/netns/cni-", "/var/lib/kubelet/", "/run/containerd/"] : [];
  if (dir) prefixes.push(`${resolve(dir)}/`);
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => unescapeMount(line.split(" ")[4]!));
  return points.filter((m) => prefixes.some((p) => m.startsWith(p) || `${m}/` === p)).reverse();
}

/**
 * A restore script (iptables-restore --noflush format) that removes every KUBE-* and CNI-* chain
 * and every rule that jumps to one, or undefined if there are none. Pure: takes iptables-save output.
 */
export function iptablesCleanupScript(saved: string): string | undefined {
  const ours = (chain: string) => /^(KUBE-|CNI-)/.test(chain);
  const out: string[] = [];
  let table = "";
  let deletes: string[] = [];
  let chains: string[] = [];
  const flush = () => {
    if (table && (deletes.length > 0 || chains.length > 0)) {
      out.push(`*${table}`, ...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), "COMMIT");
    }
    deletes = [];
    chains = [];
  };
  for (const line of saved.split("\n")) {
    if (line.startsWith("*")) {
      flush();
      table = line.slice(1).trim();
    } else if (line.startsWith(":")) {
      const chain = line.slice(1).split(" ")[0]!;
      if (ours(chain)) chains.push(chain);
    } else if (line.startsWith("-A ")) {
      const chain = line.split(" ")[1]!;
      const target = / -[jg] (\S+)/.exec(line)?.[1] ?? "";
      if (!ours(chain) && ours(target)) deletes.push(`-D ${line.slice(3)}`);
    }
  }
  flush();
  return out.length > 0 ? `${out.join("\n")}\n` : undefined;
}

const IPTABLES = [
  { save: "/usr/sbin/iptables-save", restore: "/usr/sbin/iptables-restore" },
  { save: "/usr/sbin/ip6tables-save", restore: "/usr/sbin/ip6tables-restore" },
];

function ourChains(): string[] {
  const found: string[] = [];
  for (const { save } of IPTABLES) {
    if (!existsSync(save)) continue;
    const r = spawnSync(save, [], { encoding: "utf8" });
    let table = "";
    for (const line of (r.stdout ?? "").split("\n")) {
      if (line.startsWith("*")) table = line.slice(1);
      const m = /^:((?:KUBE-|CNI-)\S*)/.exec(line);
      if (m) found.push(`${save.includes("ip6") ? "ip6tables" : "iptables"} -t ${table} ${m[1]}`);
    }
  }
  return found;
}

function ourLinks(bridge: string): string[] {
  const r = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
  return (r.stdout ?? "")
    .split("\n")
    .map((l) => /^\d+: ([^:@]+)[@:]/.exec(l)?.[1])
    .filter((name): name is string => Boolean(name) && (name === bridge || /^veth/.test(name!)));
}

/**
 * Everything a node (or the clusters of dir) may leave on the machine, one line per leftover:
 * processes, mounts, cgroups, iptables chains, network links, directories and changed sysctls.
 * Empty when the machine is clean. before: the machine before the node (default: the record a
 * node keeps until it is stopped; present after a stop means the stop did not finish). While the
 * node of other clusters runs, the machine-wide traces are its own: only what mentions dir counts.
 */
export function nodeLeftovers(dir?: string, before: MachineBefore | undefined = machineBeforeRecorded()): string[] {
  const found: string[] = [];
  const own = dir ? `${resolve(dir)}/` : undefined;
  const kubelet = runningKubelet();
  const machineWide = !kubelet || (own !== undefined && `${kubelet.dir}/` === own);
  const nodeComms = new Set(["kubelet", "containerd", "containerd-shim", "kube-scheduler"]);
  for (const p of listProcesses()) {
    if (p.pid === process.pid) continue;
    if ((machineWide && nodeComms.has(p.comm)) || (own && p.args.some((a) => a.includes(own)))) {
      found.push(`process ${p.pid} ${p.args.join(" ").slice(0, 160)}`);
    }
  }
  for (const m of nodeMounts(dir, machineWide)) found.push(`mount ${m}`);
  if (dir && existsSync(dir)) found.push(`directory ${resolve(dir)}`);
  if (!machineWide) return found;
  if (existsSync(machineRecord())) found.push(`file ${machineRecord()} (a node's record of the machine, not yet restored)`);
  for (const pid of pidsIn(kubepodsCgroups())) found.push(`process ${pid} in a kubepods cgroup`);
  for (const cg of kubepodsCgroups()) found.push(`cgroup ${cg}`);
  for (const chain of ourChains()) found.push(`iptables chain ${chain}`);
  for (const link of ourLinks(BRIDGE)) found.push(`network link ${link}`);
  for (const path of before?.missingPaths ?? MACHINE_PATHS) if (existsSync(path)) found.push(`directory ${path}`);
  if (existsSync("/run/netns")) for (const ns of readdirSync("/run/netns")) if (ns.startsWith("cni-")) found.push(`network namespace /run/netns/${ns}`);
  for (const [name, value] of Object.entries(before?.sysctls ?? {})) {
    const now = readFileSync(sysctlPath(name), "utf8").trim();
    if (now !== value) found.push(`sysctl ${name.replaceAll("/", ".")} = ${now} (was ${value})`);
  }
  return found;
}

async function stopGroup(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone.
      }
    }
  };
  const alive = () => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z /.test(safeRead(`/proc/${pid}/stat`));
  if (!alive()) return;
  signal("SIGTERM");
  try {
    await waitFor(`process ${pid} to stop`, () => !alive() || undefined, graceMs, 50);
  } catch {
    signal("SIGKILL");
    await waitFor(`process ${pid} to die`, () => !alive() || undefined, 5_000, 50);
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Stops the node of nodeDir and removes all it left on the machine. Works from the directory
 * alone (a crashed or interrupted `up` has no state file): processes are found by their
 * arguments, containers by their cgroups. Idempotent.
 */
export async function stopNode(nodeDir: string, extraBinaries: ServerProcess[] = []): Promise<void> {
  const dir = resolve(nodeDir);
  const before = machineBeforeRecorded();
  // 1. Who starts pods: scheduler and kubelet (the scheduler is passed by the cluster).
  for (const p of extraBinaries) await stopProcess(p.pid, p.binary);
  const mentioning = () => processesMentioning(dir);
  const kubelets = mentioning().filter((p) => p.comm === "kubelet");
  await Promise.all(kubelets.map((p) => stopGroup(p.pid)));
  // 2. The containers: every process in a kubepods cgroup.
  for (let round = 0; round < 20; round++) {
    const pids = pidsIn(kubepodsCgroups());
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // 3. The shims, then containerd itself (and anything else still mentioning the directory).
  const shims = mentioning().filter((p) => p.comm.startsWith("containerd-shim"));
  await Promise.all(shims.map((p) => stopGroup(p.pid, 2_000)));
  await Promise.all(mentioning().filter((p) => p.comm === "containerd").map((p) => stopGroup(p.pid)));
  await Promise.all(mentioning().map((p) => stopGroup(p.pid)));
  // 4. Mounts (pod volumes, the kubelet's bind mount of its root, rootfs overlays, sandbox shm, netns).
  for (let round = 0; round < 5; round++) {
    const mounts = nodeMounts(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
  }
  for (const netns of ["/run/netns"]) {
    if (!existsSync(netns)) continue;
    for (const ns of readdirSync(netns)) if (ns.startsWith("cni-")) rmSync(join(netns, ns), { force: true });
  }
  // 5. cgroups, deepest first.
  for (const cg of kubepodsCgroups()) {
    try {
      rmdirSync(cg);
    } catch {
      // Still busy or gone; the leftover check reports it.
    }
  }
  // 6. iptables chains, v4 and v6.
  for (const { save, restore } of IPTABLES) {
    if (!existsSync(save)) continue;
    const script = iptablesCleanupScript(spawnSync(save, [], { encoding: "utf8" }).stdout ?? "");
    if (script) spawnSync(restore, ["--noflush"], { input: script, stdio: ["pipe", "ignore", "ignore"] });
  }
  // 7. The bridge and any veth still on it.
  for (const link of ourLinks(BRIDGE)) spawnSync("ip", ["link", "delete", link], { stdio: "ignore" });
  // 8. Sysctls and machine paths, as they were.
  for (const [name, value] of Object.entries(before?.sysctls ?? {})) {
    try {
      if (readFileSync(sysctlPath(name), "utf8").trim() !== value) writeFileSync(sysctlPath(name), value);
    } catch {
      // Read-only here.
    }
  }
  removeContainerLogLinks(dir);
  for (const path of before?.missingPaths ?? []) rmSync(path, { recursive: true, force: true });
  rmSync(machineRecord(), { force: true });
}

/** /var/log/containers holds the kubelet's symlinks to pod logs; remove those into our directory. */
function removeContainerLogLinks(dir: string): void {
  const logs = "/var/log/containers";
  if (!existsSync(logs)) return;
  for (const entry of readdirSync(logs)) {
    const path = join(logs, entry);
    try {
      if (readlinkSync(path).startsWith(`${dir}/`)) rmSync(path, { force: true });
    } catch {
      // Not a link.
    }
  }
}

/** ctr against the node's containerd, in the CRI's namespace. */
function ctr(node: Pick<NodeInfo, "containerdSocket">, args: string[]): string {
  const r = spawnSync("/usr/bin/ctr", ["--address", node.containerdSocket, "--namespace", "k8s.io", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ctr ${args.join(" ")} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  return r.stdout;
}

/** Imports an OCI image layout tar into the node's containerd; pods then use it with imagePullPolicy: Never. */
export function importImageToNode(node: Pick<NodeInfo, "containerdSocket">, ociTarPath: string): void {
  if (!existsSync(ociTarPath)) throw new Error(`no image tar at ${ociTarPath}`);
  ctr(node, ["images", "import", ociTarPath]);
}

/** The image references the node's containerd holds. */
export function imagesOnNode(node: Pick<NodeInfo, "containerdSocket">): string[] {
  return ctr(node, ["images", "list", "--quiet"]).split("\n").filter(Boolean);
}
