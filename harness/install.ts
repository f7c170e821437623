// Sets a cluster up the way `kubectl mcsa install` does for the controller (CRD, namespace, its
// and the webhook's service accounts and RBAC, the admission policy that confines their Secret
// writes), and runs the controller out of cluster as that service account.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, type KubernetesObject, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import { CONTROLLER_SERVICE_ACCOUNT, WEBHOOK_SERVICE_ACCOUNT, baseObjects } from "../common/manifests.ts";
import type { ClustersState } from "./clusters.ts";
import { adminConfig, cluster } from "./kube.ts";
import { Background, eventually } from "./run.ts";

export async function applyAsAdmin(state: ClustersState, context: string, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(adminConfig(state, context));
  for (const object of objects) await api.patch(object, undefined, undefined, "e2e", true, PatchStrategy.ServerSideApply);
}

export async function installController(state: ClustersState, context: string): Promise<void> {
  await applyAsAdmin(state, context, baseObjects());
  // The CRD serves only once it is Established.
  const kc = adminConfig(state, context);
  await eventually("the ServiceAccountImport CRD to be established", async () => {
    const res = await KubernetesObjectApi.makeApiClient(kc).list("multicluster.admiralty.io/v1alpha1", "ServiceAccountImport", "default");
    return res.items ? true : undefined;
  });
}

/** A kubeconfig that authenticates as a service account of the cluster (a TokenRequest token). */
export async function serviceAccountKubeconfig(
  state: ClustersState,
  context: string,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const tr = await adminConfig(state, context)
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccountToken({ name: serviceAccount, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const info = cluster(state, context);
  // In the run's clusters directory: removed with the clusters at the end of the run.
  const dir = join(state.dir, "kubeconfigs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${context}-${namespace}-${serviceAccount}-${Date.now().toString(36)}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: context, cluster: { server: info.server, "certificate-authority-data": Buffer.from(info.caPem).toString("base64") } }],
      users: [{ name: serviceAccount, user: { token: tr.status!.token } }],
      contexts: [{ name: context, context: { cluster: context, user: serviceAccount, namespace: "default" } }],
      "current-context": context,
    }),
    { mode: 0o600 },
  );
  return file;
}

export function controllerKubeconfig(state: ClustersState, context: string): Promise<string> {
  return serviceAccountKubeconfig(state, context, SYSTEM_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT);
}

/**
 * The in-cluster process run out of cluster as its service account, with the controller and the
 * webhook (its CA written to caFile; its API calls made as the read-only webhook identity, as in a
 * real install): started, and waited for until both serve.
 */
export async function startLocalManager(state: ClustersState, context: string, caFile: string, extraArgs: string[] = []): Promise<{ manager: Background; webhookUrl: string }> {
  const manager = new Background("manager/main.ts", [
    "--kubeconfig", await controllerKubeconfig(state, context),
    "--cluster-check-interval", "2s",
    "--webhook-listen", "127.0.0.1:0",
    "--webhook-ca-out", caFile,
    "--webhook-as", WEBHOOK_SERVICE_ACCOUNT,
    ...extraArgs,
  ]); // prettier-ignore
  await manager.waitFor(/"msg":"webhook listening"/);
  await manager.waitFor(/import controller started/);
  const webhookUrl = /"msg":"webhook listening"[^\n]*"url":"([^"]+)"/.exec(manager.text)![1]!;
  return { manager, webhookUrl };
}
