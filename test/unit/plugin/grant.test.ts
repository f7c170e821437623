import { describe, expect, it } from "vitest";
import { identityGrant, importGrant, importGrantName, importerFor } from "../../../common/grant.ts";
import { validateDnsSubdomain } from "../../../common/names.ts";

describe("grants", () => {
  const importer = importerFor("kind-Cluster_1");

  it("names the importer after the importing cluster, as a valid name", () => {
    expect(importer).toEqual({ serviceAccount: "mcsa-importer-kind-cluster-1", namespace: "multicluster-service-account" });
  });

  it("lets an import's grant mint tokens for one service account and delete its own anchor and binding, nothing else", () => {
    const grant = importGrant({ importer, localNamespace: "default", importName: "imp", remoteNamespace: "team", serviceAccount: "pod-lister", anchorUid: "u1" });
    const name = importGrantName(importer, "default", "imp");
    expect(grant.role.rules).toEqual([
      { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"], resourceNames: ["pod-lister"] },
      { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"], resourceNames: ["pod-lister"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["delete"], resourceNames: [name] },
      { apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"], verbs: ["delete"], resourceNames: [name] },
    ]);
    expect(grant.anchor.metadata).toMatchObject({ name, namespace: "team" });
    expect(grant.anchor.data).toBeUndefined();
    expect(grant.role.metadata?.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Secret", name, uid: "u1", blockOwnerDeletion: false }]);
    expect(grant.roleBinding.subjects).toEqual([{ kind: "ServiceAccount", name: importer.serviceAccount, namespace: importer.namespace }]);
  });

  it("has no owner until the anchor exists", () => {
    expect(importGrant({ importer, localNamespace: "a", importName: "b", remoteNamespace: "c", serviceAccount: "d" }).role.metadata?.ownerReferences).toBeUndefined();
  });

  it("keeps grant names valid and distinct when they would be too long", () => {
    const long = "x".repeat(200);
    const a = importGrantName(importer, long, "a");
    const b = importGrantName(importer, long, "b");
    expect(validateDnsSubdomain(a)).toBeUndefined();
    expect(a).not.toBe(b);
  });

  it("lets the identity renew only its own token", () => {
    const grant = identityGrant(importer);
    expect(grant.role.rules?.flatMap((r) => r.resourceNames)).toEqual([importer.serviceAccount, importer.serviceAccount]);
    expect(grant.serviceAccount.metadata?.name).toBe(importer.serviceAccount);
  });
});
