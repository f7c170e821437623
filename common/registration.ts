// How a cluster knows a remote cluster it imports from: a Secret in SYSTEM_NAMESPACE written by
// `kubectl mcsa bootstrap`, holding the remote API's address and CA, and the importer's identity
// there (its token is renewed by the controller and bound to its anchor).
import type { V1Secret } from "@kubernetes/client-node";
import { GROUP, SYSTEM_NAMESPACE } from "./api.ts";
import type { Importer } from "./grant.ts";
import { redactTokens } from "./redact.ts";

export const CLUSTER_NAME_LABEL = `${GROUP}/cluster-name`;

export interface Registration {
  /** The name imports use in spec.clusterName. */
  clusterName: string;
  server: string;
  caPem: string;
  token: string;
  importer: Importer;
}

export function registrationSecretName(clusterName: string): string {
  return `cluster-${clusterName}`;
}

export function registrationSecret(reg: Registration): V1Secret {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: registrationSecretName(reg.clusterName),
      namespace: SYSTEM_NAMESPACE,
      labels: { [CLUSTER_NAME_LABEL]: reg.clusterName, "app.kubernetes.io/managed-by": "kubectl-mcsa" },
    },
    data: {
      server: b64(reg.server),
      "ca.crt": b64(reg.caPem),
      token: b64(reg.token),
      namespace: b64(reg.importer.namespace),
      serviceaccount: b64(reg.importer.serviceAccount),
    },
  };
}

/** Reads a registration Secret; the error names the Secret and missing keys, never the token. */
export function parseRegistration(secret: V1Secret): Registration {
  const name = secret.metadata?.name ?? "(unnamed)";
  const clusterName = secret.metadata?.labels?.[CLUSTER_NAME_LABEL];
  const data = secret.data ?? {};
  const get = (key: string) => Buffer.from(data[key] ?? "", "base64").toString("utf8").trim();
  const missing = ["server", "ca.crt", "token", "namespace", "serviceaccount"].filter((k) => !get(k));
  if (!clusterName) throw new Error(redactTokens(`cluster registration ${name} has no ${CLUSTER_NAME_LABEL} label`));
  if (missing.length) throw new Error(`cluster registration ${name} lacks ${missing.join(", ")}: run kubectl mcsa bootstrap again`);
  return {
    clusterName,
    server: get("server"),
    caPem: get("ca.crt"),
    token: get("token"),
    importer: { namespace: get("namespace"), serviceAccount: get("serviceaccount") },
  };
}
