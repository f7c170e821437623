// Service account imports mounted in a pod, one directory each under
// /var/run/secrets/admiralty.io/serviceaccountimports/<import>/ (the original's path):
//
//   token      the remote token (absent in proxy-only pods)
//   ca.crt     the remote API server's CA bundle
//   server     the remote API server's URL
//   namespace  the remote service account's namespace
//   config     a kubeconfig for this import (the mcsa sidecar's points at the pod's local proxy)
//
// Written by the mcsa sidecar as plain files, or, with the original project, a Secret volume in
// the kubelet's layout (`token -> ..data/token`, `..data` swapped on update). Either way every
// read goes through the path, so an update is seen by the next read.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { ClientConfigError, whyUnreadable } from "./errors.ts";
import { kubeConfigOf, mergeKubeconfigFiles } from "./kubeconfig.ts";
import { TokenFileAuthenticator, type TokenFileOptions } from "./token-file.ts";

/** Where imports are mounted in a pod. */
export const IMPORTS_DIR = "/var/run/secrets/admiralty.io/serviceaccountimports";
/** Environment variable that moves IMPORTS_DIR (e.g. to a local sidecar's output, for development). */
export const IMPORTS_DIR_ENV = "MCSA_IMPORTS_DIR";

export interface ImportLookup {
  /** Where imports are mounted (default: $MCSA_IMPORTS_DIR, else IMPORTS_DIR). */
  importsDir?: string;
  /** Where MCSA_IMPORTS_DIR is read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What the functions of this package return. */
export interface ConfigAndNamespace {
  /** A client-node KubeConfig whose current context is this cluster; its credentials follow rotation. */
  config: KubeConfig;
  /** The namespace to work in: the remote service account's, the context's, or the pod's own. */
  namespace: string;
  /** Where it came from. */
  source: "import" | "kubeconfig" | "in-cluster";
  /** The import's name, the context's name, or "in-cluster". */
  name: string;
}

export function importsDir(lookup: ImportLookup = {}): string {
  return lookup.importsDir ?? (lookup.env ?? process.env)[IMPORTS_DIR_ENV] ?? IMPORTS_DIR;
}

const kind = (path: string): "file" | "dir" | "missing" | "other" => {
  try {
    const s = statSync(path); // follows symlinks: the kubelet's keys are symlinks
    return s.isFile() ? "file" : s.isDirectory() ? "dir" : "other";
  } catch {
    return "missing";
  }
};

/** Names of the mounted imports, sorted; none when the directory does not exist. */
export function importNames(lookup: ImportLookup = {}): string[] {
  const dir = importsDir(lookup);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new ClientConfigError("FileUnreadable", `cannot list the service account imports in ${dir}: ${whyUnreadable(error)}`, { path: dir, cause: error });
  }
  // Dot entries are not imports: `..data` and the timestamped dirs of a volume mounted here whole.
  return entries.filter((e) => !e.startsWith(".") && kind(join(dir, e)) === "dir").sort();
}

/** Whether an import of that name is mounted. */
export function importMounted(name: string, lookup: ImportLookup = {}): boolean {
  return validName(name) && kind(join(importsDir(lookup), name)) === "dir";
}

const validName = (name: string): boolean => name !== "" && !name.startsWith(".") && !name.includes("/") && !name.includes("\0");

function readSmall(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new ClientConfigError("FileUnreadable", `cannot read ${what} ${path}: ${whyUnreadable(error)}`, { path, cause: error });
  }
}

/** Throws ImportNotMounted, listing what is mounted. */
export function notMounted(name: string, lookup: ImportLookup, extra = ""): never {
  const dir = importsDir(lookup);
  const mounted = importNames(lookup);
  throw new ClientConfigError(
    "ImportNotMounted",
    `service account import ${JSON.stringify(name)} is not mounted in ${dir} (${mounted.length === 0 ? "none is" : `mounted: ${mounted.join(", ")}`})${extra}`,
    { path: join(dir, name) },
  );
}

/**
 * The config of one mounted import. With a `token` file: the remote server, verified with
 * `ca.crt`, and the token read again whenever the file is replaced. Without (proxy-only pods):
 * the import's `config`, which points at the pod's local proxy and needs no credential.
 */
export function importConfig(name: string, lookup: ImportLookup & TokenFileOptions = {}): ConfigAndNamespace {
  if (!importMounted(name, lookup)) notMounted(name, lookup);
  const dir = join(importsDir(lookup), name);
  const namespace = readSmall(join(dir, "namespace"), `the namespace of import ${JSON.stringify(name)},`);
  const token = join(dir, "token");
  if (kind(token) === "file") {
    const server = readSmall(join(dir, "server"), `the server URL of import ${JSON.stringify(name)},`);
    // Read now, so that an unreadable file fails here rather than at the first request.
    readSmall(join(dir, "ca.crt"), `the CA bundle of import ${JSON.stringify(name)},`);
    if (readSmall(token, `the token of import ${JSON.stringify(name)},`) === "") {
      throw new ClientConfigError("FileUnreadable", `cannot read the token of import ${JSON.stringify(name)}, ${token}: it is empty`, { path: token });
    }
    const auth = new TokenFileAuthenticator(lookup).register(name, token);
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name, server, caFile: join(dir, "ca.crt"), skipTLSVerify: false }],
      users: [{ name }],
      contexts: [{ name, cluster: name, user: name, namespace }],
      currentContext: name,
    });
    config.addAuthenticator(auth);
    return { config, namespace, source: "import", name };
  }
  const kubeconfig = join(dir, "config");
  if (kind(kubeconfig) === "file") {
    const merged = mergeKubeconfigFiles([kubeconfig], lookup);
    return { config: kubeConfigOf(merged), namespace, source: "import", name };
  }
  throw new ClientConfigError(
    "ImportIncomplete",
    `service account import ${JSON.stringify(name)} in ${dir} has neither a token nor a config file: is its sidecar running?`,
    { path: dir },
  );
}
