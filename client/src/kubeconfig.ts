// Kubeconfig files as kubectl finds and merges them, loaded into a client-node KubeConfig whose
// `tokenFile` users work: their token is read from the file and read again when it changes.
//
// Which files: the `kubeconfigs` option, else $KUBECONFIG (a path list; files that do not exist
// are skipped, as client-go does), else ~/.kube/config if it exists. Merging is client-go's: the
// first file that defines a name wins, and the current context is the first file's that sets one.
// (client-node's own loadFromDefault throws on a name defined twice.)

import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { KubeConfig, loadYaml, type Cluster, type Context, type User } from "@kubernetes/client-node";
import { ClientConfigError, whyUnreadable } from "./errors.ts";
import { TokenFileAuthenticator, type TokenFileOptions } from "./token-file.ts";

export interface KubeconfigLookup {
  /** Kubeconfig files to use instead of $KUBECONFIG or ~/.kube/config; each must exist. */
  kubeconfigs?: readonly string[];
  /** Where KUBECONFIG and HOME are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** The kubeconfig files kubectl would read, in precedence order; empty if there are none. */
export function kubeconfigFiles(lookup: KubeconfigLookup = {}): string[] {
  if (lookup.kubeconfigs !== undefined) return [...lookup.kubeconfigs];
  const env = lookup.env ?? process.env;
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== "") return list.split(delimiter).filter((f) => f !== "" && isFile(f));
  const home = env.HOME ?? (lookup.env === undefined ? homedir() : undefined);
  const config = home === undefined ? undefined : join(home, ".kube", "config");
  return config !== undefined && isFile(config) ? [config] : [];
}

interface RawUser {
  name?: unknown;
  user?: { tokenFile?: unknown; "token-file"?: unknown } | null;
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new ClientConfigError("FileUnreadable", `cannot read the kubeconfig ${path}: ${whyUnreadable(error)}`, { path, cause: error });
  }
}

/** One file's clusters, users and contexts, its current context, and its users' token files. */
function loadOne(path: string): { kc: KubeConfig; tokenFiles: Map<string, string> } {
  const text = readText(path);
  const kc = new KubeConfig();
  let raw: { users?: unknown } | null;
  try {
    raw = loadYaml<{ users?: unknown } | null>(text);
    kc.loadFromString(text);
  } catch (error) {
    throw new ClientConfigError("InvalidKubeconfig", `the kubeconfig ${path} is not valid: ${(error as Error).message.split("\n")[0]}`, { path, cause: error });
  }
  kc.makePathsAbsolute(dirname(path));
  const tokenFiles = new Map<string, string>();
  for (const u of Array.isArray(raw?.users) ? (raw.users as RawUser[]) : []) {
    // `tokenFile` is the standard key (client-go, kubectl); `token-file` is client-node's own.
    const file = u?.user?.tokenFile ?? u?.user?.["token-file"];
    if (typeof u?.name === "string" && typeof file === "string" && file !== "") {
      // Relative to the kubeconfig's directory, as client-go resolves it.
      tokenFiles.set(u.name, isAbsolute(file) ? file : join(dirname(path), file));
    }
  }
  return { kc, tokenFiles };
}

function firstWins<T extends { name: string }>(lists: T[][]): T[] {
  const out = new Map<string, T>();
  for (const list of lists) for (const item of list) if (!out.has(item.name)) out.set(item.name, item);
  return [...out.values()];
}

/** Merged kubeconfig contents, and the authenticator its token-file users need. */
export interface MergedKubeconfig {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | undefined;
  auth: TokenFileAuthenticator;
}

/** Loads and merges kubeconfig files, client-go's way (the first definition of a name wins). */
export function mergeKubeconfigFiles(files: readonly string[], options: TokenFileOptions = {}): MergedKubeconfig {
  const loaded = files.map(loadOne);
  const auth = new TokenFileAuthenticator(options);
  const tokenFiles = new Map<string, string>();
  for (const { tokenFiles: t } of loaded) for (const [user, file] of t) if (!tokenFiles.has(user)) tokenFiles.set(user, file);
  const users = firstWins(loaded.map(({ kc }) => kc.getUsers())).map((user): User => {
    const file = tokenFiles.get(user.name);
    if (file === undefined) return user;
    auth.register(user.name, file);
    // A token file wins over an inline token, as in client-go; client-node read `token-file`
    // into `token` once, which would otherwise be sent forever.
    const { token: _once, ...rest } = user;
    return rest;
  });
  return {
    clusters: firstWins<Cluster>(loaded.map(({ kc }) => kc.getClusters())),
    users,
    contexts: firstWins<Context>(loaded.map(({ kc }) => kc.getContexts())),
    currentContext: loaded.map(({ kc }) => kc.getCurrentContext()).find((c) => typeof c === "string" && c !== ""),
    auth,
  };
}

/** A KubeConfig of merged contents, its current context `context` (default: the files'). */
export function kubeConfigOf(merged: MergedKubeconfig, context: string | undefined = merged.currentContext): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: merged.clusters, users: merged.users, contexts: merged.contexts, currentContext: context });
  kc.addAuthenticator(merged.auth);
  return kc;
}

/**
 * Loads and merges kubeconfig files into one KubeConfig whose `tokenFile` (and `token-file`)
 * users read their token from the file, again whenever it changes.
 */
export function loadKubeconfigFiles(files: readonly string[], options: TokenFileOptions = {}): KubeConfig {
  return kubeConfigOf(mergeKubeconfigFiles(files, options));
}

/**
 * kubectl's kubeconfig, tokenFile-aware: the files of kubeconfigFiles(lookup), merged. Throws
 * ClientConfigError NoConfiguration when there is none (client-node would invent localhost:8080).
 */
export function loadKubeconfig(lookup: KubeconfigLookup & TokenFileOptions = {}): KubeConfig {
  const files = kubeconfigFiles(lookup);
  if (files.length === 0) {
    throw new ClientConfigError("NoConfiguration", "no kubeconfig found: set KUBECONFIG or create ~/.kube/config");
  }
  return loadKubeconfigFiles(files, lookup);
}
