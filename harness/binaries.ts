// The real kube-apiserver, kubectl and etcd that local clusters run, built from Go modules
// pinned under tools/ and cached outside git, keyed by version. Built only when missing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TOOLS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../tools");

export interface Binaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  kubeScheduler: string;
  kubelet: string;
  etcd: string;
  kubernetesVersion: string;
  etcdVersion: string;
}

export function cacheDir(): string {
  if (process.env.MCSA_CACHE_DIR) return resolve(process.env.MCSA_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "kubectl-mcsa");
}

/** The version a tools/ module requires of a module, read from its go.mod. */
export function requiredVersion(moduleDir: string, modulePath: string): string {
  const gomod = readFileSync(join(TOOLS_DIR, moduleDir, "go.mod"), "utf8");
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(gomod);
  if (!match?.[1]) throw new Error(`tools/${moduleDir}/go.mod does not require ${modulePath}`);
  return match[1];
}

export interface BuildTarget {
  moduleDir: string;
  ldflags: string;
  dir: string;
  packages: string[];
  outputs: string[];
  label: string;
}

function targets(): { kube: BuildTarget; etcd: BuildTarget; kubernetesVersion: string; etcdVersion: string } {
  const kubernetesVersion = requiredVersion("kube", "k8s.io/kubernetes");
  const etcdVersion = requiredVersion("etcd", "go.etcd.io/etcd/server/v3");
  const bin = join(cacheDir(), "bin");
  return {
    kubernetesVersion,
    etcdVersion,
    kube: {
      moduleDir: "kube",
      ldflags: kubernetesLdflags(kubernetesVersion),
      dir: join(bin, `kubernetes-${kubernetesVersion}`),
      packages: [
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kubectl",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kubelet",
      ],
      outputs: ["kube-apiserver", "kube-controller-manager", "kubectl", "kube-scheduler", "kubelet"],
      label: `kube-apiserver, kube-controller-manager, kubectl, kube-scheduler and kubelet ${kubernetesVersion}`,
    },
    etcd: {
      moduleDir: "etcd",
      ldflags: "",
      dir: join(bin, `etcd-${etcdVersion}`),
      packages: ["go.etcd.io/etcd/server/v3"],
      outputs: ["etcd"],
      label: `etcd ${etcdVersion}`,
    },
  };
}

/** Paths of the binaries if they are all built, without building anything. */
export function cachedBinaries(): Binaries | undefined {
  const t = targets();
  const b = binariesIn(t);
  return [b.kubeApiserver, b.kubeControllerManager, b.kubectl, b.kubeScheduler, b.kubelet, b.etcd].every((p) => existsSync(p))
    ? b
    : undefined;
}

function binariesIn(t: ReturnType<typeof targets>): Binaries {
  return {
    kubeApiserver: join(t.kube.dir, "kube-apiserver"),
    kubeControllerManager: join(t.kube.dir, "kube-controller-manager"),
    kubectl: join(t.kube.dir, "kubectl"),
    kubeScheduler: join(t.kube.dir, "kube-scheduler"),
    kubelet: join(t.kube.dir, "kubelet"),
    etcd: join(t.etcd.dir, "etcd"),
    kubernetesVersion: t.kubernetesVersion,
    etcdVersion: t.etcdVersion,
  };
}

/**
 * Stamps the version into the binaries as Kubernetes' own build does; without it a server reports
 * v0.0.0-master, and clients (the webhook's native-sidecar check, kubectl's skew warning) misjudge it.
 */
function kubernetesLdflags(version: string): string {
  const [major, minor] = version.replace(/^v/, "").split(".");
  const vars = { gitVersion: version, gitMajor: major, gitMinor: minor, gitTreeState: "clean" };
  return ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
    .flatMap((pkg) => Object.entries(vars).map(([k, v]) => `-X ${pkg}.${k}=${v}`))
    .join(" ");
}

export function findGo(): string {
  for (const candidate of ["go", "/usr/local/go/bin/go"]) {
    const r = spawnSync(candidate, ["version"], { encoding: "utf8" });
    if (r.status === 0) return candidate;
  }
  throw new Error(
    "Go toolchain not found: install Go 1.26 or newer (https://go.dev/doc/install) and put `go` on PATH; " +
      "it builds kube-apiserver, kubectl and etcd for the local clusters",
  );
}

export async function build(go: string, target: BuildTarget, log: (line: string) => void): Promise<void> {
  if (target.outputs.every((o) => existsSync(join(target.dir, o)))) return;
  const tmp = `${target.dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const started = Date.now();
  log(`building ${target.label} into ${target.dir} (once; the first build of Kubernetes takes ~10 min on 2 cores)`);
  const child = spawn(go, ["build", "-trimpath", `-ldflags=${target.ldflags}`, "-o", `${tmp}/`, ...target.packages], {
    cwd: join(TOOLS_DIR, target.moduleDir),
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, CGO_ENABLED: process.env.CGO_ENABLED ?? "0" },
  });
  const code = await new Promise<number | null>((done, fail) => {
    child.on("error", fail);
    child.on("exit", done);
  });
  if (code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`go build of ${target.label} failed (exit ${code}); see the output above`);
  }
  // go names etcd's binary after its module path ("server"): give it its usual name.
  for (const [i, output] of target.outputs.entries()) {
    const built = join(tmp, target.packages[i]!.replace(/\/v\d+$/, "").split("/").pop()!);
    if (!existsSync(join(tmp, output)) && existsSync(built)) renameSync(built, join(tmp, output));
  }
  rmSync(target.dir, { recursive: true, force: true });
  renameSync(tmp, target.dir);
  log(`built ${target.label} in ${Math.round((Date.now() - started) / 1000)}s`);
}

/** Builds what is missing (serially: two cores are not enough for two Go builds at once). */
export async function ensureBinaries(log: (line: string) => void = (l) => console.error(l)): Promise<Binaries> {
  const cached = cachedBinaries();
  if (cached) return cached;
  const go = findGo();
  const t = targets();
  await build(go, t.etcd, log);
  await build(go, t.kube, log);
  return binariesIn(t);
}
