// Kubeconfig objects for imports: the one embedded in an import Secret's `config` (the remote
// server, the token inline), and the ones the sidecar writes into pods, which point at the pod's
// local proxy and hold no credential at all. Field names are kubectl's own.
//
// Why pods get proxy-backed kubeconfigs (docs/apps.md has the measurements): every client reads
// them the same way, and none has to notice a new token. A kubeconfig with `tokenFile` works only
// for clients that re-read that file: client-go does, @kubernetes/client-node ignores the key
// (it reads a non-standard `token-file`, once), and Debian's python3-kubernetes reads it once.

// js-yaml, not @kubernetes/client-node's dumpYaml: the sidecar renders kubeconfigs and must not
// load client-node (about 60 MiB of resident memory); dumpYaml also reordered the keys.
import { dump as dumpYaml } from "js-yaml";

export interface KubeconfigCluster {
  server: string;
  "certificate-authority-data"?: string;
  /**
   * Only on the proxy's plain-HTTP loopback URL, where there is no TLS to verify: client-node
   * refuses an `http://` server unless this is set ("HTTP protocol is not allowed when
   * skipTLSVerify is not set"); client-go and python-kubernetes ignore it for `http://`.
   */
  "insecure-skip-tls-verify"?: true;
}

export interface KubeconfigUser {
  token?: string;
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
  /** The token, embedded: this kubeconfig is the import Secret's `config`. */
  token: string;
}

export interface ProxyKubeconfigEntry {
  /** The import's name: cluster, user and context are all named after it. */
  name: string;
  /** The import's local proxy, `http://127.0.0.1:<port>` (see proxyUrl). */
  proxyUrl: string;
  /** The remote service account's namespace. */
  namespace: string;
}

function pemToData(pem: string): string {
  // Catch callers passing base64 (or nothing) where PEM is expected, instead of double-encoding.
  if (!pem.includes("-----BEGIN ")) throw new Error("caData must be PEM text (-----BEGIN CERTIFICATE-----...)");
  return Buffer.from(pem, "utf8").toString("base64");
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

/** The import Secret's `config`: the remote server, its CA and the token, all inline. */
export function importKubeconfig(input: ImportKubeconfigInput): Kubeconfig {
  return config([
    {
      name: input.name,
      cluster: { server: input.server, "certificate-authority-data": pemToData(input.caData) },
      user: { token: input.token },
      namespace: input.namespace,
    },
  ]);
}

/**
 * The URL of a proxy listening on address:port, as a client on the same host reaches it: an
 * unspecified address (0.0.0.0, ::) is reached on loopback, an IPv6 literal gets brackets.
 */
export function proxyUrl(address: string, port: number): string {
  if (address === "0.0.0.0" || address === "") return `http://127.0.0.1:${port}`;
  if (address === "::" || /^[:0]+$/.test(address)) return `http://[::1]:${port}`;
  return address.includes(":") ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}

/**
 * One cluster, user and context per import, each cluster the import's local proxy; the first is
 * the current context. No credential: the proxy adds the current token to every request, so the
 * file never changes when the token does, and whoever reads it learns no secret.
 */
export function proxyKubeconfig(entries: ProxyKubeconfigEntry[]): Kubeconfig {
  for (const e of entries) {
    if (!/^http:\/\/[^/?#@]+$/.test(e.proxyUrl)) {
      throw new Error(`import ${JSON.stringify(e.name)}: proxy URL ${JSON.stringify(e.proxyUrl)} is not http://HOST:PORT`);
    }
  }
  return config(
    entries.map((e) => ({
      name: e.name,
      cluster: { server: e.proxyUrl, "insecure-skip-tls-verify": true },
      user: {},
      namespace: e.namespace,
    })),
  );
}

/** YAML as kubectl reads it. */
export function renderKubeconfig(obj: Kubeconfig): string {
  // No line folding and no anchors: keeps base64 and tokens on one line, readable by any YAML parser.
  return dumpYaml(obj, { lineWidth: -1, noRefs: true });
}
