// The admin kubeconfig of local clusters: one cluster, user and context per cluster, named after it.
import { dumpYaml } from "@kubernetes/client-node";

export interface AdminCredentials {
  name: string;
  server: string;
  caPem: string;
  adminCertPem: string;
  adminKeyPem: string;
}

export function kubeconfigFor(clusters: AdminCredentials[]): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return dumpYaml({
    apiVersion: "v1",
    kind: "Config",
    preferences: {},
    "current-context": clusters[0]?.name ?? "",
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: { server: c.server, "certificate-authority-data": b64(c.caPem) },
    })),
    users: clusters.map((c) => ({
      name: `${c.name}-admin`,
      user: { "client-certificate-data": b64(c.adminCertPem), "client-key-data": b64(c.adminKeyPem) },
    })),
    contexts: clusters.map((c) => ({
      name: c.name,
      context: { cluster: c.name, user: `${c.name}-admin`, namespace: "default" },
    })),
  });
}
