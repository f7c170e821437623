// What a cluster admits in a remote cluster so that another cluster's controller can import from
// it: least privilege, named resources only, nothing cluster-wide, no read access to Secrets.
// Each grant hangs off an "anchor" Secret (empty) that its tokens are bound to: deleting the
// anchor revokes every token minted under the grant at once, and garbage-collects the RBAC.
import { createHash } from "node:crypto";
import type { V1Role, V1RoleBinding, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, SYSTEM_NAMESPACE } from "./api.ts";
import { toDnsLabel } from "./names.ts";

export const IMPORTER_LABEL = `${GROUP}/importer`;
/** On an identity: the uid of the importing cluster's kube-system namespace, so that two clusters never share one. */
export const IMPORTER_CLUSTER_LABEL = `${GROUP}/importer-cluster-uid`;
/** Lifetime of the importer identity's own token; the controller renews it at ~80%. */
export const IDENTITY_TOKEN_SECONDS = 24 * 3600;
export const GRANT_FOR_ANNOTATION = `${GROUP}/grant-for`;
const MANAGED_BY = { "app.kubernetes.io/managed-by": "kubectl-mcsa" };

/** The identity an importing cluster's controller has in a remote cluster. */
export interface Importer {
  /** Service account name in the remote cluster's SYSTEM_NAMESPACE. */
  serviceAccount: string;
  namespace: string;
}

export function importerFor(localClusterName: string): Importer {
  return { serviceAccount: `mcsa-importer-${toDnsLabel(localClusterName)}`, namespace: SYSTEM_NAMESPACE };
}

export interface GrantObjects {
  anchor: V1Secret;
  role: V1Role;
  roleBinding: V1RoleBinding;
}

interface GrantSpec {
  name: string;
  namespace: string;
  importer: Importer;
  /** The service account whose tokens the importer may request. */
  serviceAccount: string;
  /** Extra rules beyond requesting tokens. */
  rules?: V1Role["rules"];
  grantFor: string;
  anchorUid?: string;
}

function grantObjects(spec: GrantSpec): GrantObjects {
  const labels = { ...MANAGED_BY, [IMPORTER_LABEL]: spec.importer.serviceAccount };
  const annotations = { [GRANT_FOR_ANNOTATION]: spec.grantFor };
  const ownerReferences = spec.anchorUid
    ? [{ apiVersion: "v1", kind: "Secret", name: spec.name, uid: spec.anchorUid, blockOwnerDeletion: false }]
    : undefined;
  const metadata = { name: spec.name, namespace: spec.namespace, labels, annotations };
  return {
    anchor: { apiVersion: "v1", kind: "Secret", type: "Opaque", metadata },
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { ...metadata, ownerReferences },
      rules: [
        { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"], resourceNames: [spec.serviceAccount] },
        { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"], resourceNames: [spec.serviceAccount] },
        ...(spec.rules ?? []),
      ],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { ...metadata, ownerReferences },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: spec.name },
      subjects: [{ kind: "ServiceAccount", name: spec.importer.serviceAccount, namespace: spec.importer.namespace }],
    },
  };
}

/** Name of the grant objects for one import: readable, unique per importer and import. */
export function importGrantName(importer: Importer, localNamespace: string, importName: string): string {
  const name = `${importer.serviceAccount}.${localNamespace}.${importName}`;
  if (name.length <= 253) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 10);
  return `${name.slice(0, 242).replace(/[-.]+$/, "")}.${hash}`;
}

export interface ImportGrantInput {
  importer: Importer;
  localNamespace: string;
  importName: string;
  remoteNamespace: string;
  serviceAccount: string;
  anchorUid?: string;
}

/**
 * The importer may request tokens for that one service account, and delete this grant's anchor
 * (revoking what it minted) and its RoleBinding when the import is removed. Nothing else.
 */
export function importGrant(input: ImportGrantInput): GrantObjects {
  const name = importGrantName(input.importer, input.localNamespace, input.importName);
  return grantObjects({
    name,
    namespace: input.remoteNamespace,
    importer: input.importer,
    serviceAccount: input.serviceAccount,
    rules: [
      { apiGroups: [""], resources: ["secrets"], verbs: ["delete"], resourceNames: [name] },
      // So that revoking also drops the binding when the grant was applied by hand without owner
      // references (garbage collection then has nothing to follow); deleting needs no escalation.
      { apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"], verbs: ["delete"], resourceNames: [name] },
    ],
    grantFor: `${input.localNamespace}/${input.importName}`,
    anchorUid: input.anchorUid,
  });
}

/** The importer's own identity: it may renew its own token and nothing else. */
export function identityGrant(importer: Importer, anchorUid?: string, clusterUid?: string): GrantObjects & { serviceAccount: V1ServiceAccount } {
  const objects = grantObjects({
    name: importer.serviceAccount,
    namespace: importer.namespace,
    importer,
    serviceAccount: importer.serviceAccount,
    grantFor: "identity",
    anchorUid,
  });
  const labels = { ...objects.anchor.metadata!.labels, ...(clusterUid ? { [IMPORTER_CLUSTER_LABEL]: clusterUid } : {}) };
  return {
    ...objects,
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: importer.serviceAccount, namespace: importer.namespace, labels },
    },
  };
}
