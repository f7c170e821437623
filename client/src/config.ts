// The original multicluster-service-account's client configuration functions (its Go package
// pkg/config), for @kubernetes/client-node. Each returns a KubeConfig and a namespace.
//
// Generic ones fall back, in this order: a mounted service account import, then kubeconfig
// contexts (KUBECONFIG, ~/.kube/config), then the pod's own service account (in-cluster). So one
// program runs unchanged in a pod with imports, on a laptop with a kubeconfig, and in a pod without.
// The ServiceAccountImport ones only look at mounted imports.
//
// Differences from the original, each to fail clearly instead of picking a cluster silently:
// configAndNamespace() with several imports mounted throws (the original fell back to the
// kubeconfig); an import that is mounted but unreadable throws instead of falling back.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { ClientConfigError } from "./errors.ts";
import { importConfig, importMounted, importNames, importsDir, notMounted, type ConfigAndNamespace, type ImportLookup } from "./imports.ts";
import { kubeConfigOf, kubeconfigFiles, mergeKubeconfigFiles, type KubeconfigLookup, type MergedKubeconfig } from "./kubeconfig.ts";
import { TokenFileAuthenticator, type TokenFileOptions } from "./token-file.ts";

export type { ConfigAndNamespace };

/** Where the generic functions look; every field has the default a pod or a laptop wants. */
export interface ConfigOptions extends ImportLookup, KubeconfigLookup, TokenFileOptions {
  /** Prefix of the pod's service-account directory (tests); default "" (the real path). */
  inClusterRoot?: string;
}

/** The in-cluster entry's name in allNamedConfigsAndNamespaces(). */
export const IN_CLUSTER = "in-cluster";
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

// ---------------------------------------------------------------------------------------------
// Imports only

/**
 * The only mounted service account import. Throws ClientConfigError NoImportMounted when there is
 * none, SeveralImportsMounted when there are several (name one: namedServiceAccountImport…).
 */
export function serviceAccountImportConfigAndNamespace(options: ConfigOptions = {}): ConfigAndNamespace {
  const names = importNames(options);
  if (names.length === 1) return importConfig(names[0] as string, options);
  if (names.length === 0) {
    throw new ClientConfigError(
      "NoImportMounted",
      `no service account import is mounted in ${importsDir(options)}: annotate the pod with multicluster.admiralty.io/service-account-import.name, in a namespace labelled multicluster-service-account=enabled`,
      { path: importsDir(options) },
    );
  }
  throw severalMounted(names, options);
}

/** The mounted service account import named `name`; throws ClientConfigError ImportNotMounted if it is not. */
export function namedServiceAccountImportConfigAndNamespace(name: string, options: ConfigOptions = {}): ConfigAndNamespace {
  return importConfig(name, options);
}

/** Every mounted service account import, by name (sorted); empty when none is mounted. */
export function allServiceAccountImportConfigsAndNamespaces(options: ConfigOptions = {}): Map<string, ConfigAndNamespace> {
  return new Map(importNames(options).map((name) => [name, importConfig(name, options)]));
}

function severalMounted(names: string[], options: ConfigOptions): ClientConfigError {
  return new ClientConfigError(
    "SeveralImportsMounted",
    `${names.length} service account imports are mounted in ${importsDir(options)} (${names.join(", ")}): pick one with namedConfigAndNamespace(name)`,
    { path: importsDir(options) },
  );
}

// ---------------------------------------------------------------------------------------------
// Generic: imports, then kubeconfig contexts, then in-cluster

function kubeconfig(options: ConfigOptions): MergedKubeconfig | undefined {
  const files = kubeconfigFiles(options);
  return files.length === 0 ? undefined : mergeKubeconfigFiles(files, options);
}

function fromContext(merged: MergedKubeconfig, context: string): ConfigAndNamespace {
  const ctx = merged.contexts.find((c) => c.name === context);
  if (!ctx) throw new ClientConfigError("InvalidKubeconfig", `the kubeconfig's current context ${JSON.stringify(context)} is not one of its contexts`);
  if (!merged.clusters.some((c) => c.name === ctx.cluster)) {
    throw new ClientConfigError("InvalidKubeconfig", `kubeconfig context ${JSON.stringify(context)} names cluster ${JSON.stringify(ctx.cluster)}, which the kubeconfig does not define`);
  }
  return { config: kubeConfigOf(merged, context), namespace: ctx.namespace || "default", source: "kubeconfig", name: context };
}

/** The pod's own service account, as client-go's InClusterConfig finds it; undefined outside a pod. */
export function inClusterConfigAndNamespace(options: ConfigOptions = {}): ConfigAndNamespace | undefined {
  const env = options.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const dir = `${options.inClusterRoot ?? ""}${SERVICE_ACCOUNT_DIR}`;
  const token = join(dir, "token");
  if (!host || !port || !existsSync(token)) return undefined;
  const namespaceFile = join(dir, "namespace");
  const namespace = (existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8").trim() : "") || "default";
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: IN_CLUSTER, server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`, caFile: join(dir, "ca.crt"), skipTLSVerify: false }],
    users: [{ name: IN_CLUSTER }],
    contexts: [{ name: IN_CLUSTER, cluster: IN_CLUSTER, user: IN_CLUSTER, namespace }],
    currentContext: IN_CLUSTER,
  });
  // The kubelet rotates the projected token; read it again when it does.
  config.addAuthenticator(new TokenFileAuthenticator(options).register(IN_CLUSTER, token));
  return { config, namespace, source: "in-cluster", name: IN_CLUSTER };
}

const NOTHING_FOUND = (options: ConfigOptions) =>
  `no service account import is mounted in ${importsDir(options)}, no kubeconfig was found (KUBECONFIG, ~/.kube/config), ` +
  "and this is not a pod with a service account: mount an import, or set KUBECONFIG";

/**
 * One cluster, wherever the program runs: the only mounted import; else the kubeconfig's current
 * context; else the pod's own service account. Throws ClientConfigError SeveralImportsMounted
 * when several imports are mounted, NoConfiguration when nothing is found.
 */
export function configAndNamespace(options: ConfigOptions = {}): ConfigAndNamespace {
  const names = importNames(options);
  if (names.length === 1) return importConfig(names[0] as string, options);
  if (names.length > 1) throw severalMounted(names, options);
  const merged = kubeconfig(options);
  if (merged?.currentContext !== undefined) return fromContext(merged, merged.currentContext);
  const inCluster = inClusterConfigAndNamespace(options);
  if (inCluster) return inCluster;
  if (merged) throw new ClientConfigError("InvalidKubeconfig", `the kubeconfig (${kubeconfigFiles(options).join(", ")}) has no current context: set one with kubectl config use-context`);
  throw new ClientConfigError("NoConfiguration", NOTHING_FOUND(options));
}

/**
 * The cluster named `name`: the mounted import of that name, else the kubeconfig context of that
 * name. Throws ClientConfigError ImportNotMounted when there is neither.
 */
export function namedConfigAndNamespace(name: string, options: ConfigOptions = {}): ConfigAndNamespace {
  if (importMounted(name, options)) return importConfig(name, options);
  const merged = kubeconfig(options);
  if (merged?.contexts.some((c) => c.name === name)) return fromContext(merged, name);
  const contexts = merged?.contexts.map((c) => c.name) ?? [];
  return notMounted(name, options, ` and no kubeconfig context has that name (${contexts.length === 0 ? "no kubeconfig contexts" : `contexts: ${contexts.join(", ")}`})`);
}

/**
 * Every cluster, by name, in this order: mounted imports, then kubeconfig contexts (a context
 * named like an import is the import's, and left out), then the pod's own service account as
 * IN_CLUSTER ("in-cluster") when in a pod. Empty when nothing is found.
 */
export function allNamedConfigsAndNamespaces(options: ConfigOptions = {}): Map<string, ConfigAndNamespace> {
  const out = allServiceAccountImportConfigsAndNamespaces(options);
  const merged = kubeconfig(options);
  for (const ctx of merged?.contexts ?? []) if (!out.has(ctx.name)) out.set(ctx.name, fromContext(merged as MergedKubeconfig, ctx.name));
  const inCluster = out.has(IN_CLUSTER) ? undefined : inClusterConfigAndNamespace(options);
  if (inCluster) out.set(IN_CLUSTER, inCluster);
  return out;
}
