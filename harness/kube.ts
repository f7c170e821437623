// Clients for the e2e clusters: as their admin (from the run's kubeconfig) or with a bearer token.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ApiException, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import type { ClustersState } from "./clusters.ts";
import type { ClusterInfo } from "./cluster.ts";

export function cluster(state: ClustersState, name: string): ClusterInfo {
  const found = state.clusters.find((c) => c.name === name);
  if (!found) throw new Error(`no cluster ${name} in this run`);
  return found;
}

export function adminConfig(state: ClustersState, context: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  kc.setCurrentContext(context);
  return kc;
}

export function tokenConfig(info: ClusterInfo, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: info.name, server: info.server, caData: Buffer.from(info.caPem).toString("base64") }],
    users: [{ name: "token", token }],
    contexts: [{ name: info.name, cluster: info.name, user: "token" }],
    currentContext: info.name,
  });
  return kc;
}

/** The HTTP status an API call failed with, or 200 if it succeeded. */
export async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

const execFileAsync = promisify(execFile);

/** Runs the built kubectl; resolves with its exit code and output (never rejects on exit code). */
export async function kubectl(
  state: ClustersState,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(state.kubectl, args, { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** A name unique to this test run, so tests never see each other's objects. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/** A service account that may only do verbs on pods in its namespace: the story's pod-lister. */
export async function createPodReader(
  state: ClustersState,
  context: string,
  namespace: string,
  name: string,
  verbs: string[] = ["get", "list", "watch"],
): Promise<void> {
  const kc = adminConfig(state, context);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [{ apiGroups: [""], resources: ["pods"], verbs }] } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    },
  });
}
