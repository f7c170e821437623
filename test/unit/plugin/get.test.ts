import { describe, expect, it } from "vitest";
import type { ServiceAccountImport } from "../../../common/api.ts";
import { importTable } from "../../../plugin/commands/get.ts";

const sai: ServiceAccountImport = {
  apiVersion: "multicluster.admiralty.io/v1alpha1",
  kind: "ServiceAccountImport",
  metadata: { name: "cluster2-default-pod-lister", namespace: "default", creationTimestamp: "2026-01-01T00:00:00Z" },
  spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister" },
  status: {
    secrets: [{ name: "cluster2-default-pod-lister-token-abcde" }],
    expirationTimestamp: "2026-01-01T01:00:00Z",
    conditions: [{ type: "Ready", status: "True", reason: "TokenIssued", message: "ok", lastTransitionTime: "2026-01-01T00:00:01Z" }],
  },
};

describe("importTable", () => {
  const now = new Date("2026-01-01T00:10:00Z");

  it("prints kubectl-style aligned columns", () => {
    expect(importTable([sai], false, false, now).split("\n")).toEqual([
      "NAME                          CLUSTER    REMOTE-NAMESPACE   SERVICE-ACCOUNT   READY   EXPIRES-IN   AGE",
      "cluster2-default-pod-lister   cluster2   default            pod-lister        True    50m          10m",
    ]);
  });

  it("adds the reason and Secret with -o wide, and the namespace with -A", () => {
    const [header, row] = importTable([sai], true, true, now).split("\n");
    expect(header).toMatch(/^NAMESPACE\s+NAME\s+.*READY\s+REASON\s+SECRET\s+EXPIRES-IN\s+AGE$/);
    expect(row).toMatch(/^default\s+cluster2-default-pod-lister\s+.*True\s+TokenIssued\s+cluster2-default-pod-lister-token-abcde\s+50m\s+10m$/);
  });

  it("shows an import the controller has not seen yet", () => {
    const fresh = { ...sai, status: undefined };
    expect(importTable([fresh], false, false, now).split("\n")[1]).toMatch(/pod-lister\s+Unknown\s+<none>\s+10m$/);
  });
});
