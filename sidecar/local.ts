// sidecar-local: runs the sidecar of a stored pod on this machine, as the kubelet would run it.
//
//   npm run sidecar-local -- --kubeconfig FILE --context NAME -n NAMESPACE POD [--dir DIR] [--port-offset N]
//
// Reads the pod, finds its `mcsa-sidecar` container (init or regular), lays out the volumes
// that container mounts under DIR/root/<mountPath> (Secret volumes with the kubelet's
// `..data` layout, kept up to date from a watch on the Secret; emptyDirs as directories),
// rewrites the container's path arguments into DIR/root, and runs `node sidecar/main.ts` with
// them. Prints where the files are and each import's proxy address; stops it on SIGINT/SIGTERM.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CoreV1Api, type KubeConfig, Watch, type V1Container, type V1Pod, type V1Secret, type V1Volume } from "@kubernetes/client-node";
import { SIDECAR_CONTAINER_NAME } from "../common/api.ts";
import { formatImportArg, importArgsOf } from "../common/import-arg.ts";
import { loadKubeConfig } from "../common/kube.ts";
import { envVarName } from "../common/names.ts";
import { backoffMs } from "../common/schedule.ts";
import { atomicWrite } from "./kubelet-layout.ts";

const USAGE = `Usage: npm run sidecar-local -- [--kubeconfig FILE] [--context NAME] [-n NAMESPACE] POD [--dir DIR] [--port-offset N]
  Runs the mcsa-sidecar container of a stored pod locally, with its volumes laid out under DIR.`;

export interface Mount {
  mountPath: string;
  /** Where it lives locally. */
  localPath: string;
}

/** `path` as seen from inside the container, mapped into root; undefined if no mount is on or under it. */
function mapPath(path: string, mounts: readonly Mount[], root: string): string | undefined {
  const clean = path.replace(/\/+$/, "") || "/";
  const relevant = mounts.some((m) => m.mountPath === clean || m.mountPath.startsWith(`${clean}/`) || clean.startsWith(`${m.mountPath}/`));
  return relevant ? join(root, clean) : undefined;
}

/**
 * The container's args for a local run: every absolute path that is a mount path, inside one, or
 * a parent of one (like --secrets-dir) moves under root; every port moves by portOffset.
 */
export function localArgs(args: readonly string[], mounts: readonly Mount[], root: string, portOffset: number): string[] {
  return args.map((arg) => {
    const m = /^(--[a-z-]+=)(.*)$/.exec(arg);
    const [prefix, value] = m ? [m[1] as string, m[2] as string] : ["", arg];
    if (value.startsWith("/")) {
      const mapped = mapPath(value, mounts, root);
      return mapped === undefined ? arg : `${prefix}${mapped}`;
    }
    if (portOffset !== 0 && prefix === "--health-port=" && /^\d+$/.test(value)) return `${prefix}${Number(value) + portOffset}`;
    const [imp] = importArgsOf([arg]);
    if (portOffset !== 0 && imp) return formatImportArg({ name: imp.name, port: imp.port + portOffset });
    return arg;
  });
}

/** A Secret's files as the kubelet projects them for a volume: `items` pick and rename keys. */
export function secretFiles(secret: V1Secret, volume: V1Volume): { files: Record<string, Buffer>; mode: number } {
  const source = volume.secret ?? {};
  const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = Buffer.from(v, "utf8");
  const mode = source.defaultMode ?? 0o644;
  if (!source.items || source.items.length === 0) return { files: data, mode };
  const files: Record<string, Buffer> = {};
  for (const item of source.items) {
    const value = data[item.key];
    if (value === undefined) throw new Error(`Secret ${secret.metadata?.name} has no key ${JSON.stringify(item.key)} that volume ${volume.name} asks for`);
    if (item.path.includes("/")) throw new Error(`volume ${volume.name}: nested item paths (${item.path}) are not supported locally`);
    files[item.path] = value;
  }
  return { files, mode };
}

export function findSidecar(pod: V1Pod): V1Container | undefined {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.find((c) => c.name === SIDECAR_CONTAINER_NAME);
}

/**
 * Keeps a Secret volume's directory in step with the Secret, replaying the kubelet's atomic swap.
 * List, then watch from the list's resourceVersion; a watch that ends (timeout, or 410 Gone after
 * an API server restart) lists again. Failures back off exponentially up to 30 s, and the count is
 * reset only by a successful list, so a dead or restarting API server is never hammered.
 */
function followSecret(kc: KubeConfig, namespace: string, volume: V1Volume, dirs: string[], signal: AbortSignal, log: (line: string) => void): Promise<void> {
  const name = volume.secret?.secretName ?? "";
  const core = kc.makeApiClient(CoreV1Api);
  const watch = new Watch(kc);
  const apply = async (secret: V1Secret) => {
    const { files, mode } = secretFiles(secret, volume);
    for (const dir of dirs) if (await atomicWrite(dir, files, { mode })) log(`updated ${dir} from Secret ${namespace}/${name} (resourceVersion ${secret.metadata?.resourceVersion})`);
  };
  const fieldSelector = `metadata.name=${name}`;
  return (async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        // A fresh list on every (re)start: nothing is missed between two watches, and the list's
        // resourceVersion is one the server can still watch from (an object's own may be too old).
        const list = await core.listNamespacedSecret({ namespace, fieldSelector });
        failures = 0;
        const secret = list.items[0];
        if (secret) await apply(secret);
        else log(`Secret ${namespace}/${name} does not exist (yet); the kubelet would keep the pod waiting, we keep watching`);
        const ended = await new Promise<"done" | "gone">((resolveWatch, rejectWatch) => {
          let request: { abort(): void } | undefined;
          let gone = false;
          const stop = () => request?.abort();
          signal.addEventListener("abort", stop, { once: true });
          watch
            .watch(
              `/api/v1/namespaces/${namespace}/secrets`,
              // Shorter than the client's 30 s inactivity timeout: the server ends the watch cleanly.
              { fieldSelector, resourceVersion: list.metadata?.resourceVersion, timeoutSeconds: 20 },
              (type, object: V1Secret & { code?: number }) => {
                if (type === "ADDED" || type === "MODIFIED") apply(object).catch((error: Error) => log(`cannot update ${name}: ${error.message}`));
                if (type === "DELETED") log(`Secret ${namespace}/${name} was deleted; the kubelet keeps the last contents, so do we`);
                if (type === "ERROR") {
                  gone = true;
                  request?.abort();
                }
              },
              (error: unknown) => {
                signal.removeEventListener("abort", stop);
                if (error && !gone && !signal.aborted) rejectWatch(error instanceof Error ? error : new Error(String(error)));
                else resolveWatch(gone ? "gone" : "done");
              },
            )
            .then((r: { abort(): void }) => (request = r), rejectWatch);
        });
        if (ended === "gone") {
          log(`watch of Secret ${namespace}/${name}: resourceVersion too old (the API server restarted?); listing again`);
          // Even a server that answers every fresh watch with 410 gets at most two requests a second.
          await delay(backoffMs(1, 500), undefined, { signal }).catch(() => undefined);
        }
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        const wait = backoffMs(failures, 500, 30_000);
        log(`watch of Secret ${namespace}/${name}: ${(error as Error).message}; retrying in ${wait} ms`);
        await delay(wait, undefined, { signal }).catch(() => undefined);
      }
    }
  })();
}

async function waitReady(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with code ${child.exitCode} before it was ready`);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((ok, fail) => {
        get({ host: "127.0.0.1", port, path: "/readyz?verbose", timeout: 2_000 }, (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => ok({ status: res.statusCode ?? 0, body: text }));
        })
          .on("timeout", function (this: { destroy(e: Error): void }) {
            this.destroy(new Error("timeout"));
          })
          .on("error", fail);
      });
      if (status === 200) return;
      last = body.trim().replace(/\n/g, "; ");
    } catch (error) {
      last = (error as Error).message;
    }
    await delay(100);
  }
  throw new Error(`the sidecar was not ready after ${timeoutMs / 1000}s: ${last}`);
}

export async function runLocal(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      kubeconfig: { type: "string" },
      context: { type: "string" },
      namespace: { type: "string", short: "n" },
      dir: { type: "string" },
      "port-offset": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const podName = positionals[0];
  if (positionals.length !== 1 || !podName) throw new Error(`expected exactly one POD\n${USAGE}`);
  const portOffset = values["port-offset"] === undefined ? 0 : Number(values["port-offset"]);
  if (!Number.isInteger(portOffset)) throw new Error(`--port-offset must be an integer, not ${values["port-offset"]}`);
  const log = (line: string) => process.stderr.write(`[sidecar-local] ${line}\n`);

  const kc = loadKubeConfig({ kubeconfig: values.kubeconfig, context: values.context });
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const core = kc.makeApiClient(CoreV1Api);
  const pod = await core.readNamespacedPod({ name: podName, namespace });
  const container = findSidecar(pod);
  if (!container) {
    throw new Error(`pod ${namespace}/${podName} has no container named ${SIDECAR_CONTAINER_NAME}: was it created in a namespace where the webhook acts, with the import annotation?`);
  }

  const dir = resolve(values.dir ?? (await mkdtemp(join(tmpdir(), `mcsa-local-${podName}-`))));
  const root = join(dir, "root");
  const mounts: Mount[] = [];
  const secretDirs = new Map<string, { volume: V1Volume; dirs: string[] }>();
  for (const vm of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((v) => v.name === vm.name);
    if (!volume) throw new Error(`container ${container.name} mounts volume ${vm.name}, which the pod does not declare`);
    if (vm.subPath || vm.subPathExpr) throw new Error(`volume mount ${vm.name}: subPath is not supported locally`);
    const localPath = join(root, vm.mountPath);
    mounts.push({ mountPath: vm.mountPath.replace(/\/+$/, ""), localPath });
    if (volume.secret) {
      const entry = secretDirs.get(volume.name) ?? { volume, dirs: [] };
      entry.dirs.push(localPath);
      secretDirs.set(volume.name, entry);
    } else if (volume.emptyDir) {
      await mkdir(localPath, { recursive: true, mode: 0o777 });
    } else {
      throw new Error(`volume ${volume.name}: only secret and emptyDir volumes can be laid out locally`);
    }
  }

  const abort = new AbortController();
  const followers: Promise<void>[] = [];
  for (const { volume, dirs } of secretDirs.values()) {
    // The first layout before the sidecar starts, as the kubelet mounts volumes before containers.
    const secret = await core.readNamespacedSecret({ name: volume.secret?.secretName ?? "", namespace });
    const { files, mode } = secretFiles(secret, volume);
    for (const d of dirs) {
      await mkdir(dirname(d), { recursive: true });
      await atomicWrite(d, files, { mode });
    }
    followers.push(followSecret(kc, namespace, volume, dirs, abort.signal, log));
  }

  const args = localArgs(container.args ?? [], mounts, root, portOffset);
  const main = join(import.meta.dirname, "main.ts");
  log(`starting node ${main} ${args.join(" ")}`);
  const child = spawn(process.execPath, [main, ...args], { stdio: ["ignore", "inherit", "inherit"] });
  const exited = new Promise<number>((done) => child.once("exit", (code, signal) => done(code ?? (signal ? 1 : 0))));
  const stop = () => {
    if (child.exitCode === null) child.kill("SIGTERM");
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);

  const health = Number(/^--health-port=(\d+)$/.exec(args.find((a) => a.startsWith("--health-port=")) ?? "")?.[1] ?? 17000 + portOffset);
  try {
    await waitReady(health, child, 60_000);
    const output = args.find((a) => a.startsWith("--output-dir="))?.slice("--output-dir=".length) ?? "";
    const lines = [
      `mcsa-sidecar of pod ${namespace}/${podName} is ready (pid ${child.pid}); Ctrl-C stops it.`,
      `  files:      ${output}`,
      `  KUBECONFIG=${join(output, "kubeconfig")}`,
      ...importArgsOf(args).map((i) => `  import ${i.name}: http://127.0.0.1:${i.port}  (${envVarName(i.name)}; files in ${join(output, "serviceaccountimports", i.name)})`),
      `  health:     http://127.0.0.1:${health}/readyz  /metrics`,
    ];
    console.log(lines.join("\n"));
  } catch (error) {
    log((error as Error).message);
    stop();
  }
  const code = await exited;
  abort.abort();
  await Promise.all(followers);
  return code;
}

if (import.meta.main) {
  try {
    process.exit(await runLocal(process.argv.slice(2)));
  } catch (error) {
    process.stderr.write(`sidecar-local: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
