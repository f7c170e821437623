// Kubeconfig objects for imports: the one embedded in an import Secret's `config`, the per-import
// files inside pods, and the merged one KUBECONFIG points at. Field names are kubectl's own.

// js-yaml, not @kubernetes/client-node's dumpYaml: the sidecar renders kubeconfigs and must not
// load client-node (about 60 MiB of resident memory); dumpYaml also reordered the keys.
import { dump as dumpYaml } from "js-yaml";

export interface KubeconfigCluster {
  server: string;
  "certificate-authority-data"?: string;
  "certificate-authority"?: string;
}

export interface KubeconfigUser {
  token?: string;
  tokenFile?: string;
}

export interface KubeconfigContext {
  cluster: string;
  user: string;
  namespace: string;
}

export interface Kubeconfig {
  apiVersion: "v1";
  kind: "Config";
  preferences: Record<string, never>;
  clusters: { name: string; cluster: KubeconfigCluster }[];
  users: { name: string; user: KubeconfigUser }[];
  contexts: { name: string; context: KubeconfigContext }[];
  "current-context": string;
}

export interface ImportKubeconfigInput {
  name: string;
  server: string;
  /** The CA bundle as PEM text (encoded to base64 here). */
  caData: string;
  namespace: string;
  /** Embedded token, for the import Secret's `config`. */
  token?: string;
  /** Path to a token file, for pods: client-go re-reads it, so rotation needs no new kubeconfig. */
  tokenFile?: string;
}

export interface MergedKubeconfigEntry {
  name: string;
  server: string;
  /** Path to the CA bundle; or `caData`. */
  caFile?: string;
  /** The CA bundle as PEM text; or `caFile`. */
  caData?: string;
  namespace: string;
  tokenFile: string;
}

function pemToData(pem: string): string {
  // Catch callers passing base64 (or nothing) where PEM is expected, instead of double-encoding.
  if (!pem.includes("-----BEGIN ")) throw new Error("caData must be PEM text (-----BEGIN CERTIFICATE-----...)");
  return Buffer.from(pem, "utf8").toString("base64");
}

function cluster(server: string, ca: { caFile?: string; caData?: string }): KubeconfigCluster {
  if ((ca.caFile === undefined) === (ca.caData === undefined)) {
    throw new Error("exactly one of caFile and caData is required");
  }
  return ca.caData !== undefined
    ? { server, "certificate-authority-data": pemToData(ca.caData) }
    : { server, "certificate-authority": ca.caFile as string };
}

function user(auth: { token?: string; tokenFile?: string }): KubeconfigUser {
  if ((auth.token === undefined) === (auth.tokenFile === undefined)) {
    throw new Error("exactly one of token and tokenFile is required");
  }
  return auth.token !== undefined ? { token: auth.token } : { tokenFile: auth.tokenFile as string };
}

function config(
  entries: { name: string; cluster: KubeconfigCluster; user: KubeconfigUser; namespace: string }[],
): Kubeconfig {
  const first = entries[0];
  if (first === undefined) throw new Error("a kubeconfig needs at least one import");
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`duplicate import name ${JSON.stringify(e.name)} in kubeconfig`);
    seen.add(e.name);
  }
  // Key order as `kubectl config view` prints it.
  return {
    apiVersion: "v1",
    clusters: entries.map((e) => ({ name: e.name, cluster: e.cluster })),
    contexts: entries.map((e) => ({
      name: e.name,
      context: { cluster: e.name, user: e.name, namespace: e.namespace },
    })),
    "current-context": first.name,
    kind: "Config",
    preferences: {},
    users: entries.map((e) => ({ name: e.name, user: e.user })),
  };
}

/** One cluster, user and context, all named after the import; current-context set. */
export function importKubeconfig(input: ImportKubeconfigInput): Kubeconfig {
  return config([
    { name: input.name, cluster: cluster(input.server, input), user: user(input), namespace: input.namespace },
  ]);
}

/** One cluster, user and context per import; the first entry is the current context. */
export function mergedKubeconfig(entries: MergedKubeconfigEntry[]): Kubeconfig {
  return config(
    entries.map((e) => ({
      name: e.name,
      cluster: cluster(e.server, e),
      user: user({ tokenFile: e.tokenFile }),
      namespace: e.namespace,
    })),
  );
}

/** YAML as kubectl reads it. */
export function renderKubeconfig(obj: Kubeconfig): string {
  // No line folding and no anchors: keeps base64 and tokens on one line, readable by any YAML parser.
  return dumpYaml(obj, { lineWidth: -1, noRefs: true });
}
