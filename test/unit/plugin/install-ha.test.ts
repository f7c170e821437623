// install's high availability (docs/install.md, High availability): --replicas, the spread, the
// PodDisruptionBudget, the rolling update, the manager run with --leader-elect, and its Lease RBAC.
import type { KubernetesObject, V1Deployment, V1PodDisruptionBudget, V1Role } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { LEADER_LEASE, controllerRbac } from "../../../common/manifests.ts";
import { expectOneLineError, run } from "./fake.ts";

async function dryRun(...flags: string[]): Promise<KubernetesObject[]> {
  const result = await run(["install", "--dry-run=client", "-o", "json", ...flags]);
  expect(result.err).toBe("");
  expect(result.code).toBe(0);
  const parsed = JSON.parse(result.out) as KubernetesObject | { items: KubernetesObject[] };
  return "items" in parsed ? parsed.items : [parsed];
}

const find = <T>(objects: KubernetesObject[], kind: string) => objects.find((o) => o.kind === kind) as T;

describe("install: high availability", () => {
  it("two replicas by default, spread over nodes, surge before removing, a PDB, leader election on", async () => {
    const objects = await dryRun();
    const deployment = find<V1Deployment>(objects, "Deployment");
    expect(deployment.spec!.replicas).toBe(2);
    expect(deployment.spec!.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const spread = deployment.spec!.template.spec!.topologySpreadConstraints!;
    expect(spread).toEqual([
      { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: deployment.spec!.selector.matchLabels } },
    ]);
    expect(deployment.spec!.template.spec!.containers[0]!.args).toContain("--leader-elect");
    const pdb = find<V1PodDisruptionBudget>(objects, "PodDisruptionBudget");
    expect(pdb.metadata!.namespace).toBe(deployment.metadata!.namespace);
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: deployment.spec!.selector.matchLabels } });
    // The PDB goes before the webhook configuration, which install applies last.
    expect(objects.at(-1)!.kind).toBe("MutatingWebhookConfiguration");
  });

  it("--replicas sets the Deployment's", async () => {
    expect(find<V1Deployment>(await dryRun("--replicas", "3"), "Deployment").spec!.replicas).toBe(3);
    expect(find<V1Deployment>(await dryRun("--replicas=1"), "Deployment").spec!.replicas).toBe(1);
  });

  it.each([
    [["--replicas", "0"], /--replicas must be a whole number from 1 to 10, not "0"/],
    [["--replicas", "1.5"], /--replicas must be a whole number from 1 to 10, not "1.5"/],
    [["--replicas", "two"], /--replicas must be a whole number from 1 to 10/],
    [["--replicas", "3", "--webhook-url", "https://127.0.0.1:8443/x", "--webhook-ca-file", "/nonexistent"], /--replicas is for the in-cluster process/],
  ])("%j: one line saying what to do", async (flags, pattern) => {
    expect(expectOneLineError(await run(["install", "--dry-run=client", ...flags]))).toMatch(pattern);
  });

  it("the manager may get and update its one Lease, and create Leases, in its namespace only", () => {
    const { role, clusterRole } = controllerRbac();
    const leaseRules = (r: V1Role) => (r.rules ?? []).filter((rule) => rule.apiGroups?.includes("coordination.k8s.io"));
    expect(leaseRules(role)).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "update"], resourceNames: [LEADER_LEASE] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    ]);
    expect(leaseRules(clusterRole as V1Role)).toEqual([]);
  });
});
