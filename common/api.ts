// The product's contract with Kubernetes and with pods: names, keys and paths that every part
// shares. User-facing names are the original multicluster-service-account's, so its YAML keeps working.

export const GROUP = "multicluster.admiralty.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ServiceAccountImport";
export const PLURAL = "serviceaccountimports";
export const SHORT_NAME = "sai";
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Pod annotation naming the imports a pod wants: comma-separated. */
export const IMPORT_ANNOTATION = `${GROUP}/service-account-import.name`;
/**
 * Pod annotation, "true" or "false" (the default): with "true", app containers get no token
 * file, only the local proxies and kubeconfigs that point at them (docs/apps.md, proxy-only pods).
 */
export const PROXY_ONLY_ANNOTATION = `${GROUP}/proxy-only`;
/** Label on an import's Secret, naming the import. */
export const IMPORT_LABEL = IMPORT_ANNOTATION;
/** `kubectl mcsa rotate` sets it to a timestamp; a value not yet in status.rotationRequest asks for a new token. */
export const ROTATE_ANNOTATION = `${GROUP}/rotate-requested-at`;
/** Held by the controller until it has revoked an import's tokens remotely. */
export const FINALIZER = `${GROUP}/revoke-remote-tokens`;
/** Namespace label selecting where the webhook acts. */
export const NAMESPACE_LABEL = "multicluster-service-account";
export const NAMESPACE_LABEL_VALUE = "enabled";

/** Keys of an import Secret's data. */
export const SECRET_KEYS = ["token", "ca.crt", "namespace", "server", "config"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Where the in-cluster parts are installed. */
export const SYSTEM_NAMESPACE = "multicluster-service-account";

/** Inside a pod: the sidecar writes here; app containers mount it read-only. */
export const POD_CREDENTIALS_ROOT = "/var/run/secrets/admiralty.io";
/** Per import: `${POD_IMPORTS_DIR}/<import>/{token,ca.crt,namespace,server,config}` (the original's paths). */
export const POD_IMPORTS_DIR = `${POD_CREDENTIALS_ROOT}/serviceaccountimports`;
/** One kubeconfig with a context per import; KUBECONFIG points here. */
export const POD_MERGED_KUBECONFIG = `${POD_CREDENTIALS_ROOT}/kubeconfig`;
/** Where the sidecar (only it) mounts each import Secret: `${SIDECAR_SECRETS_DIR}/<import>`. */
export const SIDECAR_SECRETS_DIR = "/etc/mcsa/secrets";

export const SIDECAR_CONTAINER_NAME = "mcsa-sidecar";
/** The sidecar's health, readiness and metrics port (all interfaces, for kubelet probes). */
export const SIDECAR_HEALTH_PORT = 17000;
/** First loopback proxy port; imports take consecutive ports in annotation order. */
export const SIDECAR_PROXY_PORT_BASE = 17001;

/**
 * Pod annotation the webhook sets on pods it injected. Its presence is what lets a later pass
 * (reinvocation, or a copy of an injected pod's YAML) replace the injected parts instead of
 * refusing a pod that already has a container named like the sidecar.
 */
export const INJECTED_ANNOTATION = `${GROUP}/injected-by`;
export const INJECTED_ANNOTATION_VALUE = "mcsa-webhook";
/**
 * The memory-backed volume the sidecar writes the files into. Not of the form `mcsa-<name>`, so it
 * never collides with an import Secret's volume (names.ts `secretVolumeName`).
 */
export const CREDENTIALS_VOLUME_NAME = "mcsa";
/**
 * Pod annotation opting its local proxies in to streaming subresources: a comma-separated subset
 * of PROXY_STREAMS. Without it the proxies refuse exec, attach and port-forward, as `kubectl proxy`
 * does by default. The webhook passes it to the sidecar as `--proxy-allow`.
 */
export const PROXY_ALLOW_ANNOTATION = `${GROUP}/proxy-allow`;
export const PROXY_STREAMS = ["exec", "attach", "portforward"] as const;
export type ProxyStream = (typeof PROXY_STREAMS)[number];

/** The streams a `proxy-allow` value names, or why it is not one (a one-line message). */
export function parseProxyAllow(value: string): ProxyStream[] | { error: string } {
  const out: ProxyStream[] = [];
  for (const part of value.split(",")) {
    const word = part.trim().toLowerCase();
    if (word === "") continue;
    const stream = PROXY_STREAMS.find((s) => s === word);
    if (stream === undefined) return { error: `${JSON.stringify(part.trim())} is not one of ${PROXY_STREAMS.join(", ")}` };
    if (!out.includes(stream)) out.push(stream);
  }
  return out;
}
/** Env var in app containers: the first import's local proxy URL (each import also gets `MCSA_<NAME>_URL`). */
export const PROXY_URL_ENV = "MCSA_PROXY_URL";

// The ServiceAccountImport types are derived from the CRD's schema, in import-api.ts.
export type {
  Condition,
  ConditionStatus,
  ObjectMeta,
  ServiceAccountImport,
  ServiceAccountImportSpec,
  ServiceAccountImportStatus,
} from "./import-api.ts";
import type { Condition, ServiceAccountImport } from "./import-api.ts";

export const DEFAULT_EXPIRATION_SECONDS = 3600;
/** TokenRequest's floor: the API server refuses shorter lifetimes. */
export const MIN_EXPIRATION_SECONDS = 600;

/** The Ready condition of an import, if any. */
export function readyCondition(sai: Pick<ServiceAccountImport, "status">): Condition | undefined {
  return sai.status?.conditions?.find((c) => c.type === "Ready");
}

export function isReady(sai: Pick<ServiceAccountImport, "status">): boolean {
  return readyCondition(sai)?.status === "True" && (sai.status?.secrets?.length ?? 0) > 0;
}
