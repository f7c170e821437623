// The local clusters are real, independent Kubernetes API servers.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, inject, it } from "vitest";
import { leftovers } from "../../harness/clusters.ts";
import { adminConfig, cluster, createPodReader, kubectl, statusOf, tokenConfig, uniqueName } from "../../harness/kube.ts";
import { eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");

describe("local clusters", () => {
  it("issue a short-lived TokenRequest token that RBAC limits and only its own cluster accepts", async () => {
    const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
    const namespace = "default";
    const sa = uniqueName("pod-lister");
    await createPodReader(state, "cluster2", namespace, sa, ["list"]);

    const tr = await core2.createNamespacedServiceAccountToken({
      name: sa,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token ?? "";
    expect(token.split(".")).toHaveLength(3);
    const expires = new Date(tr.status!.expirationTimestamp!).getTime();
    expect(expires).toBeGreaterThan(Date.now() + 500_000);
    expect(expires).toBeLessThan(Date.now() + 700_000);

    const asSA2 = tokenConfig(cluster(state, "cluster2"), token).makeApiClient(CoreV1Api);
    expect(await statusOf(asSA2.listNamespacedPod({ namespace }))).toBe(200);
    expect(await statusOf(asSA2.listNamespacedSecret({ namespace }))).toBe(403);

    const asSA1 = tokenConfig(cluster(state, "cluster1"), token).makeApiClient(CoreV1Api);
    expect(await statusOf(asSA1.listNamespacedPod({ namespace }))).toBe(401);
  });

  it("keep separate data: an object created in cluster1 does not exist in cluster2", async () => {
    const name = uniqueName("only-in-cluster1");
    const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
    const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
    await core1.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name }, data: { a: "b" } } });
    expect(await statusOf(core1.readNamespacedConfigMap({ name, namespace: "default" }))).toBe(200);
    expect(await statusOf(core2.readNamespacedConfigMap({ name, namespace: "default" }))).toBe(404);
  });

  it("garbage-collect dependents of a deleted owner (kube-controller-manager runs)", async () => {
    const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
    const owner = await core1.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: uniqueName("owner") } } });
    const dependent = uniqueName("dependent");
    await core1.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name: dependent,
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: owner.metadata!.name!, uid: owner.metadata!.uid! }],
        },
      },
    });
    await core1.deleteNamespacedConfigMap({ name: owner.metadata!.name!, namespace: "default" });
    await eventually("the dependent ConfigMap to be garbage-collected", async () =>
      (await statusOf(core1.readNamespacedConfigMap({ name: dependent, namespace: "default" }))) === 404 ? true : undefined,
    30_000);
  });

  it("serve the built kubectl through the run's kubeconfig, one context per cluster", async () => {
    const result = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster2", "get", "namespaces", "-o", "name"]);
    expect(result.stderr).toBe("");
    expect(result.stdout.split("\n")).toEqual(expect.arrayContaining(["namespace/default", "namespace/kube-system"]));
    const version = await kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "version", "-o", "json"]);
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe(state.binaries.kubernetesVersion);
  });

  it("serve the service-account issuer's discovery documents without credentials", async () => {
    const info = cluster(state, "cluster2");
    const { request } = await import("node:https");
    const status = await new Promise<number>((done, fail) => {
      request(`${info.server}/.well-known/openid-configuration`, { ca: info.caPem }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      })
        .on("error", fail)
        .end();
    });
    expect(status).toBe(200);
  });

  it("start API-only with `up --no-node` next to the run's node, and `down` leaves nothing of them", async () => {
    const dir = join(tmpdir(), uniqueName("mcsa-no-node"));
    try {
      const upped = await runNode("harness/cli.ts", ["up", "--no-node", "--count", "1", "--dir", dir], { timeoutMs: 120_000 });
      expect(upped.stderr).toBe("");
      expect(upped.code).toBe(0);
      expect(upped.stdout).toMatch(/^started 1 clusters in [\d.]+s:\n {2}cluster1 {2}https:\/\/127\.0\.0\.1:\d+\n/);
      expect(upped.stdout).not.toMatch(/node cluster1-node Ready/);
      const status = await runNode("harness/cli.ts", ["status", "--dir", dir]);
      expect(status).toMatchObject({ code: 0 });
      expect(status.stdout).toMatch(/^running: cluster1 https:\/\/127\.0\.0\.1:\d+\n/);
    } finally {
      const downed = await runNode("harness/cli.ts", ["down", "--dir", dir], { timeoutMs: 60_000 });
      expect(downed).toMatchObject({ code: 0, stdout: `stopped the clusters and removed ${dir}\n` });
    }
    expect(existsSync(dir)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    expect(await runNode("harness/cli.ts", ["leftovers", "--dir", dir])).toMatchObject({ code: 0, stdout: "nothing left\n" });
  }, 150_000);
});
