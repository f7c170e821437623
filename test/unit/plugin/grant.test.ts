import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  GRANT_AUDIENCES_ANNOTATION,
  GRANT_MAX_EXPIRATION_ANNOTATION,
  GRANT_POLICY_NAME,
  GRANT_SERVICE_ACCOUNT_ANNOTATION,
  IMPORTER_LABEL,
  grantLimitsOf,
  grantPolicy,
  identityGrant,
  importGrant,
  importGrantName,
  importerFor,
} from "../../../common/grant.ts";
import { validateDnsSubdomain } from "../../../common/names.ts";
import { classify } from "../../../common/remote.ts";

describe("grants", () => {
  const importer = importerFor("kind-Cluster_1");

  it("names the importer after the importing cluster, as a valid name", () => {
    expect(importer).toEqual({ serviceAccount: "mcsa-importer-kind-cluster-1", namespace: "multicluster-service-account" });
  });

  it("lets an import's grant mint tokens for one service account, read and delete its own anchor, delete its binding, nothing else", () => {
    const grant = importGrant({ importer, localNamespace: "default", importName: "imp", remoteNamespace: "team", serviceAccount: "pod-lister", anchorUid: "u1" });
    const name = importGrantName(importer, "default", "imp");
    expect(grant.role.rules).toEqual([
      { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"], resourceNames: ["pod-lister"] },
      { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"], resourceNames: ["pod-lister"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "delete"], resourceNames: [name] },
      { apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"], verbs: ["delete"], resourceNames: [name] },
    ]);
    expect(grant.anchor.metadata).toMatchObject({ name, namespace: "team" });
    expect(grant.anchor.data).toBeUndefined();
    expect(grant.role.metadata?.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Secret", name, uid: "u1", blockOwnerDeletion: false }]);
    expect(grant.roleBinding.subjects).toEqual([{ kind: "ServiceAccount", name: importer.serviceAccount, namespace: importer.namespace }]);
  });

  it("records on the anchor what the grant allows: by default the API server's audiences and a day", () => {
    const plain = importGrant({ importer, localNamespace: "default", importName: "imp", remoteNamespace: "team", serviceAccount: "pod-lister" });
    expect(plain.anchor.metadata?.annotations).toMatchObject({
      [GRANT_SERVICE_ACCOUNT_ANNOTATION]: "pod-lister",
      [GRANT_AUDIENCES_ANNOTATION]: "",
      [GRANT_MAX_EXPIRATION_ANNOTATION]: "86400",
    });
    expect(grantLimitsOf(plain.anchor)).toEqual({ serviceAccount: "pod-lister", audiences: [], maxExpirationSeconds: 86400 });
    const wide = importGrant({ importer, localNamespace: "d", importName: "i", remoteNamespace: "t", serviceAccount: "sa", audiences: ["vault", "x"], maxExpirationSeconds: 7200 });
    expect(grantLimitsOf(wide.anchor)).toEqual({ serviceAccount: "sa", audiences: ["vault", "x"], maxExpirationSeconds: 7200 });
    // Only the anchor records it (it is what the remote's policy reads).
    expect(wide.role.metadata?.annotations?.[GRANT_SERVICE_ACCOUNT_ANNOTATION]).toBeUndefined();
  });

  it("reads an anchor of before grants were recorded as recording nothing", () => {
    expect(grantLimitsOf({ metadata: { annotations: { "multicluster.admiralty.io/grant-for": "a/b" } } })).toBeUndefined();
    expect(grantLimitsOf({ metadata: { annotations: { [GRANT_SERVICE_ACCOUNT_ANNOTATION]: "sa", [GRANT_MAX_EXPIRATION_ANNOTATION]: "junk" } } })).toEqual({
      serviceAccount: "sa",
      audiences: [],
      maxExpirationSeconds: 86400,
    });
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

  it("lets the identity renew only its own token, for a day, which its anchor records", () => {
    const grant = identityGrant(importer);
    expect(grant.role.rules?.flatMap((r) => r.resourceNames)).toEqual([importer.serviceAccount, importer.serviceAccount]);
    expect(grant.serviceAccount.metadata?.name).toBe(importer.serviceAccount);
    expect(grantLimitsOf(grant.anchor)).toEqual({ serviceAccount: importer.serviceAccount, audiences: [], maxExpirationSeconds: 86400 });
  });

  it("the remote's grant policy: only token requests of importer identities, each anchor a param, no anchor no token", () => {
    const { policy, binding } = grantPolicy(["https://b.example:6443"]);
    expect(policy.metadata?.name).toBe(GRANT_POLICY_NAME);
    expect(policy.spec?.matchConstraints?.resourceRules).toEqual([
      { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["serviceaccounts/token"] },
    ]);
    expect(policy.spec?.matchConditions?.[0]?.expression).toBe('request.userInfo.username.startsWith("system:serviceaccount:multicluster-service-account:mcsa-importer-")');
    expect(policy.spec?.paramKind).toEqual({ apiVersion: "v1", kind: "Secret" });
    expect(policy.spec?.failurePolicy).toBe("Fail");
    expect(policy.spec?.validations?.every((v) => v.reason === "Forbidden" && v.messageExpression)).toBe(true);
    // The API server's own audiences are what a grant that names none allows.
    expect(policy.spec?.variables?.find((v) => v.name === "allowedAudiences")?.expression).toContain('["https://b.example:6443"]');
    expect(binding.spec).toEqual({
      policyName: GRANT_POLICY_NAME,
      validationActions: ["Deny"],
      paramRef: { selector: { matchExpressions: [{ key: IMPORTER_LABEL, operator: "Exists" }] }, parameterNotFoundAction: "Deny" },
    });
  });

  it("tells the grant policy's refusals apart from RBAC's: NotGranted, GrantExceeded, and a policy not evaluated", () => {
    const refusal = (code: number, message: string) =>
      classify(new ApiException(code, "x", JSON.stringify({ kind: "Status", code, message }), {}), "cluster2", "creating a token for service account t/b");
    const denied = (rule: string) => `serviceaccounts "b" is forbidden: ValidatingAdmissionPolicy '${GRANT_POLICY_NAME}' with binding '${GRANT_POLICY_NAME}' denied request: ${rule}`;
    expect(refusal(403, denied("grant g allows tokens of service account a only, not b"))).toMatchObject({
      reason: "NotGranted",
      message: 'cluster "cluster2" refuses creating a token for service account t/b: grant g allows tokens of service account a only, not b',
    });
    expect(refusal(403, denied("grant g allows tokens of at most 86400s, not 172800s")).reason).toBe("GrantExceeded");
    expect(refusal(403, denied("grant g allows the audiences https://b (the API server's own) only, not vault")).reason).toBe("GrantExceeded");
    expect(refusal(422, denied("failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"))).toMatchObject({
      reason: "NotGranted",
      message: expect.stringMatching(/has no grant in that namespace$/),
    });
    expect(refusal(422, denied("failed to configure binding: paramKind kind `/v1, Kind=Secret` not yet synced to use for admission")).reason).toBe("RemoteUnreachable");
    expect(refusal(403, 'serviceaccounts "b" is forbidden: User "x" cannot create resource "serviceaccounts/token"').reason).toBe("Forbidden");
  });
});
