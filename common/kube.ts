// Connecting to API servers the way kubectl does (--kubeconfig, --context, --cluster, --user,
// KUBECONFIG, in-cluster), and turning client errors into one line that says what happened, never
// carrying a token.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { load as loadYaml } from "js-yaml";
import { TokenFileAuthenticator } from "../client/src/index.ts";
import { redactTokens } from "./redact.ts";

export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  /** kubectl's --cluster and --user: override the context's. */
  cluster?: string;
  user?: string;
}

import { UserError } from "./errors.ts";

export { UserError };

/**
 * client-node 2.0 builds a new undici Agent for every request, so every call opens (and keeps)
 * a new TLS connection: slow, and memory grows with the request count. Reuse one per cluster and
 * user of this KubeConfig; credentials that change (tokens) travel in headers, not in the agent.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher: (cluster: unknown, options: unknown) => unknown };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, options) => {
    const key = JSON.stringify([kc.getCurrentContext(), (cluster as { server?: string } | null)?.server]);
    if (!cache.has(key)) cache.set(key, create(cluster, options));
    return cache.get(key);
  };
  return kc;
}

type Named = { name: string; [key: string]: unknown };
/** A kubeconfig file as YAML holds it (kubectl's field names). */
export interface RawKubeconfig {
  clusters: Named[];
  users: Named[];
  contexts: Named[];
  "current-context"?: string;
}

/** The files kubectl reads, in its order: --kubeconfig alone, else KUBECONFIG's list, else ~/.kube/config. */
export function kubeconfigPaths(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): { paths: string[]; explicit: boolean } {
  if (flag) return { paths: [flag], explicit: true };
  const list = env.KUBECONFIG;
  if (list) {
    const seen = new Set<string>();
    const paths = list.split(delimiter).filter((p) => p !== "" && !seen.has(p) && seen.add(p));
    return { paths, explicit: false };
  }
  return { paths: [join(home, ".kube", "config")], explicit: false };
}

/** Relative file references in a kubeconfig are relative to that file, as kubectl resolves them. */
function resolvePaths(raw: RawKubeconfig, file: string): void {
  const base = dirname(resolve(file));
  const fix = (holder: Record<string, unknown> | undefined, key: string, onlyWithSeparator = false) => {
    const value = holder?.[key];
    if (typeof value !== "string" || value === "" || isAbsolute(value)) return;
    if (onlyWithSeparator && !value.includes("/")) return; // a command looked up in PATH
    holder![key] = join(base, value);
  };
  for (const c of raw.clusters) fix(c.cluster as Record<string, unknown>, "certificate-authority");
  for (const u of raw.users) {
    const user = u.user as Record<string, unknown> | undefined;
    for (const key of ["client-certificate", "client-key", "tokenFile"]) fix(user, key);
    fix(user?.exec as Record<string, unknown> | undefined, "command", true);
  }
}

function parseKubeconfigFile(file: string): RawKubeconfig {
  let doc: unknown;
  try {
    doc = loadYaml(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UserError(`reading kubeconfig ${file}: ${(error as Error).message.split("\n")[0]}`);
  }
  const obj = (doc ?? {}) as Record<string, unknown>;
  const list = (key: string) => (Array.isArray(obj[key]) ? (obj[key] as Named[]).filter((e) => e && typeof e.name === "string") : []);
  const raw: RawKubeconfig = { clusters: list("clusters"), users: list("users"), contexts: list("contexts") };
  if (typeof obj["current-context"] === "string" && obj["current-context"]) raw["current-context"] = obj["current-context"];
  resolvePaths(raw, file);
  return raw;
}

/**
 * kubectl's merge of several files: for each cluster, user and context name, and for the current
 * context, the first file that sets it wins; later files only add what is new.
 */
export function mergeKubeconfigs(files: RawKubeconfig[]): RawKubeconfig {
  const merged: RawKubeconfig = { clusters: [], users: [], contexts: [] };
  for (const file of files) {
    for (const key of ["clusters", "users", "contexts"] as const) {
      for (const entry of file[key]) if (!merged[key].some((e) => e.name === entry.name)) merged[key].push(entry);
    }
    if (merged["current-context"] === undefined && file["current-context"]) merged["current-context"] = file["current-context"];
  }
  return merged;
}

/** Reads the files kubectl would, skipping missing ones of the KUBECONFIG list as kubectl does. */
export function readKubeconfigs(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, home = homedir()): { raw: RawKubeconfig; found: number } {
  const { paths, explicit } = kubeconfigPaths(flags.kubeconfig, env, home);
  if (explicit && !existsSync(paths[0]!)) throw new UserError(`kubeconfig file ${paths[0]} not found`);
  const present = paths.filter((p) => existsSync(p));
  return { raw: mergeKubeconfigs(present.map(parseKubeconfigFile)), found: present.length };
}

/** What kubectl picks: the context, and the cluster, user and namespace it (or a flag) names. */
export interface Selection {
  context: string;
  cluster: string;
  user: string;
  namespace?: string;
}

export function selectContext(raw: RawKubeconfig, flags: ConnectionFlags): Selection {
  const contextName = flags.context || raw["current-context"];
  if (flags.context && !raw.contexts.some((c) => c.name === flags.context)) {
    const known = raw.contexts.map((c) => c.name);
    throw new UserError(
      `context "${flags.context}" not found in kubeconfig` + (known.length ? ` (known contexts: ${known.join(", ")})` : " (it has no contexts)"),
    );
  }
  const context = (raw.contexts.find((c) => c.name === contextName)?.context ?? {}) as { cluster?: string; user?: string; namespace?: string };
  const cluster = flags.cluster || context.cluster || "";
  const user = flags.user || context.user || "";
  if (!contextName && !flags.cluster) throw new UserError("no current context in kubeconfig: pass --context, or set one with kubectl config use-context");
  if (contextName && !raw.contexts.some((c) => c.name === contextName) && !flags.cluster) {
    throw new UserError(`the current context "${contextName}" is not in the kubeconfig: pass --context, or fix it with kubectl config use-context`);
  }
  if (flags.cluster && !raw.clusters.some((c) => c.name === flags.cluster)) throw new UserError(`cluster "${flags.cluster}" not found in kubeconfig`);
  if (flags.user && !raw.users.some((u) => u.name === flags.user)) throw new UserError(`user "${flags.user}" not found in kubeconfig`);
  if (!raw.clusters.some((c) => c.name === cluster)) {
    throw new UserError(`context "${contextName}" names cluster "${cluster}", which is not in the kubeconfig`);
  }
  return { context: contextName || cluster, cluster, user, ...(context.namespace ? { namespace: context.namespace } : {}) };
}

function toKubeConfig(raw: RawKubeconfig, selection: Selection): KubeConfig {
  const contexts = raw.contexts.filter((c) => c.name !== selection.context);
  // The selected context, with --cluster/--user applied, as the one current context.
  const chosen: Named = { name: selection.context, context: { cluster: selection.cluster, user: selection.user, ...(selection.namespace ? { namespace: selection.namespace } : {}) } };
  // client-node's "token-file" is not kubectl's: kubectl ignores that key, so the plugin does too.
  const users = raw.users.map((u) => {
    const user = { ...(u.user as Record<string, unknown> | undefined) };
    delete user["token-file"];
    return { ...u, user };
  });
  if (!users.some((u) => u.name === selection.user)) users.push({ name: selection.user, user: {} });
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify({ clusters: raw.clusters, users, contexts: [...contexts, chosen], "current-context": selection.context }));
  // kubectl's tokenFile, which client-node ignores (it knows only a "token-file" key, read once):
  // the app library's authenticator reads the file when a request needs it, again as soon as it is
  // replaced (a kubelet-rotated projected token) and at least once a minute, as client-go does.
  const tokenFiles = new TokenFileAuthenticator();
  for (const user of kc.getUsers()) {
    const path = (users.find((u) => u.name === user.name)?.user as { tokenFile?: string } | undefined)?.tokenFile;
    if (!path) continue;
    tokenFiles.register(user.name, path);
    // The file wins over a static token, as in client-go.
    (user as { token?: string }).token = undefined;
  }
  kc.addAuthenticator(tokenFiles);
  return kc;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** client-go's in-cluster config, as a kubeconfig: the service's address, the mounted CA and token file. */
export function inClusterKubeconfig(host: string, port: string, dir = SERVICE_ACCOUNT_DIR): RawKubeconfig {
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    clusters: [{ name: "in-cluster", cluster: { server, "certificate-authority": join(dir, "ca.crt") } }],
    users: [{ name: "in-cluster", user: { tokenFile: join(dir, "token") } }],
    contexts: [{ name: "in-cluster", context: { cluster: "in-cluster", user: "in-cluster", ...(namespace ? { namespace } : {}) } }],
    "current-context": "in-cluster",
  };
}

/** One loader for the plugin and the in-cluster process: what kubectl would connect to. */
export function loadKubeConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeConfig {
  const { raw, found } = readKubeconfigs(flags, env, home);
  const empty = raw.contexts.length === 0 && raw.clusters.length === 0;
  if (empty && !flags.context && !flags.cluster) {
    // kubectl (client-go) uses the in-cluster config when no kubeconfig says anything.
    if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
      const raw = inClusterKubeconfig(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT);
      return reuseConnections(toKubeConfig(raw, selectContext(raw, {})));
    }
    if (found === 0) throw new UserError("no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config");
  }
  return reuseConnections(toKubeConfig(raw, selectContext(raw, flags)));
}

/** The namespace of the current context, as kubectl picks it when -n is not given. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
}

/** The HTTP status of a failed API call, or undefined for a network-level failure. */
export function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusCode(error) === 404;
}

export function isConflict(error: unknown): boolean {
  return statusCode(error) === 409;
}

/** The API server's own message of a failed call (its Status), else the error's message. */
export function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    let message: string | undefined;
    if (typeof body === "string") {
      try {
        message = (JSON.parse(body) as { message?: string }).message;
      } catch {
        message = body.trim() || undefined;
      }
    } else if (body && typeof body === "object") {
      message = (body as { message?: string }).message;
    }
    return redactTokens(message ?? `HTTP ${error.code}`);
  }
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return redactTokens([e?.message ?? String(error), cause].filter(Boolean).join(": "));
}

/** "<what>: <server's message>" with a hint for the usual statuses. */
export function describeApiError(error: unknown, what: string, server?: string): string {
  const code = statusCode(error);
  const message = apiMessage(error);
  if (code === undefined) return `${what}: cannot reach ${server ?? "the API server"}: ${message}`;
  if (code === 401) return `${what}: unauthorized (401): the credentials were rejected: ${message}`;
  if (code === 403) return `${what}: forbidden (403): ${message}`;
  return `${what}: ${message}`;
}
