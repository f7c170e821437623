// What a cluster admits in a remote cluster so that another cluster's controller can import from
// it: least privilege, named resources only, nothing cluster-wide, no read access to Secrets.
// Each grant hangs off an "anchor" Secret (empty) that its tokens are bound to: deleting the
// anchor revokes every token minted under the grant at once, and garbage-collects the RBAC.
import { createHash } from "node:crypto";
import type {
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
} from "@kubernetes/client-node";
import { GROUP, SYSTEM_NAMESPACE } from "./api.ts";
import { toDnsLabel } from "./names.ts";

export const IMPORTER_LABEL = `${GROUP}/importer`;
/** On an identity: the uid of the importing cluster's kube-system namespace, so that two clusters never share one. */
export const IMPORTER_CLUSTER_LABEL = `${GROUP}/importer-cluster-uid`;
/** Lifetime of the importer identity's own token; the controller renews it at ~80%. */
export const IDENTITY_TOKEN_SECONDS = 24 * 3600;
export const GRANT_FOR_ANNOTATION = `${GROUP}/grant-for`;
/**
 * On a grant's anchor, what the grant allows; the remote API server enforces it (grantPolicy):
 * the one service account whose tokens may be bound to this anchor,
 */
export const GRANT_SERVICE_ACCOUNT_ANNOTATION = `${GROUP}/grant-service-account`;
/** the audiences those tokens may have (comma-separated; empty: only the API server's own), */
export const GRANT_AUDIENCES_ANNOTATION = `${GROUP}/grant-audiences`;
/** and their longest lifetime, in seconds. */
export const GRANT_MAX_EXPIRATION_ANNOTATION = `${GROUP}/grant-max-expiration-seconds`;
/** A grant's lifetime cap when its admin names none. */
export const DEFAULT_GRANT_MAX_EXPIRATION_SECONDS = 24 * 3600;
/** The ValidatingAdmissionPolicy (and its binding) that makes a remote cluster enforce its grants. */
export const GRANT_POLICY_NAME = `grants.${GROUP}`;
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

/** What a grant allows: recorded on its anchor, enforced by the remote API server, shown in an import's status. */
export interface GrantLimits {
  serviceAccount: string;
  /** Empty: only the remote API server's own audiences (a token for its API). */
  audiences: string[];
  maxExpirationSeconds: number;
}

/** The anchor annotations that record a grant. */
export function grantAnnotations(limits: GrantLimits): Record<string, string> {
  return {
    [GRANT_SERVICE_ACCOUNT_ANNOTATION]: limits.serviceAccount,
    [GRANT_AUDIENCES_ANNOTATION]: limits.audiences.join(","),
    [GRANT_MAX_EXPIRATION_ANNOTATION]: String(limits.maxExpirationSeconds),
  };
}

/** What an anchor's annotations grant; undefined for an anchor of before grants were recorded. */
export function grantLimitsOf(anchor: Pick<V1Secret, "metadata">): GrantLimits | undefined {
  const annotations = anchor.metadata?.annotations ?? {};
  const serviceAccount = annotations[GRANT_SERVICE_ACCOUNT_ANNOTATION];
  if (!serviceAccount) return undefined;
  const max = Number(annotations[GRANT_MAX_EXPIRATION_ANNOTATION] ?? DEFAULT_GRANT_MAX_EXPIRATION_SECONDS);
  return {
    serviceAccount,
    audiences: (annotations[GRANT_AUDIENCES_ANNOTATION] ?? "").split(",").map((a) => a.trim()).filter((a) => a !== ""),
    maxExpirationSeconds: Number.isInteger(max) && max > 0 ? max : DEFAULT_GRANT_MAX_EXPIRATION_SECONDS,
  };
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
  /** What tokens bound to the anchor may be (the service account is spec.serviceAccount). */
  limits: Omit<GrantLimits, "serviceAccount">;
  anchorUid?: string;
}

function grantObjects(spec: GrantSpec): GrantObjects {
  const labels = { ...MANAGED_BY, [IMPORTER_LABEL]: spec.importer.serviceAccount };
  const annotations = { [GRANT_FOR_ANNOTATION]: spec.grantFor };
  const ownerReferences = spec.anchorUid
    ? [{ apiVersion: "v1", kind: "Secret", name: spec.name, uid: spec.anchorUid, blockOwnerDeletion: false }]
    : undefined;
  const metadata = { name: spec.name, namespace: spec.namespace, labels, annotations };
  const anchorAnnotations = { ...annotations, ...grantAnnotations({ serviceAccount: spec.serviceAccount, ...spec.limits }) };
  return {
    anchor: { apiVersion: "v1", kind: "Secret", type: "Opaque", metadata: { ...metadata, annotations: anchorAnnotations } },
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
  /** The audiences the grant allows (default: only the remote API server's own). */
  audiences?: string[];
  /** The longest token lifetime the grant allows (default DEFAULT_GRANT_MAX_EXPIRATION_SECONDS). */
  maxExpirationSeconds?: number;
  anchorUid?: string;
}

/**
 * The importer may request tokens for that one service account, bound to this grant's anchor and
 * within its audiences and lifetime (the anchor records them; grantPolicy enforces them), read
 * the anchor (to show what it allows), and delete it (revoking what it minted) and its
 * RoleBinding when the import is removed. Nothing else.
 */
export function importGrant(input: ImportGrantInput): GrantObjects {
  const name = importGrantName(input.importer, input.localNamespace, input.importName);
  return grantObjects({
    name,
    namespace: input.remoteNamespace,
    importer: input.importer,
    serviceAccount: input.serviceAccount,
    limits: { audiences: input.audiences ?? [], maxExpirationSeconds: input.maxExpirationSeconds ?? DEFAULT_GRANT_MAX_EXPIRATION_SECONDS },
    rules: [
      // The anchor is empty: reading it tells only what the grant allows.
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "delete"], resourceNames: [name] },
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
    limits: { audiences: [], maxExpirationSeconds: IDENTITY_TOKEN_SECONDS },
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

export interface GrantPolicyObjects {
  policy: V1ValidatingAdmissionPolicy;
  binding: V1ValidatingAdmissionPolicyBinding;
}

/** A CEL string literal. */
const cel = (s: string) => JSON.stringify(s);

/**
 * Makes the remote API server enforce every grant, whatever the importer's RBAC (the union of its
 * grants in a namespace) would let it ask: a token an importer identity requests must be bound
 * to the anchor of one of its own grants, and be exactly what that anchor records (the service
 * account, the audiences, at most the lifetime). Each anchor in the request's namespace is one
 * param; params are ANDed, so each param's rules bite only on the request that binds to it.
 * An importer with no anchor in the namespace is refused (parameterNotFoundAction: Deny).
 *
 * defaultAudiences: the audiences the API server gives a token that asks for none (its own, as
 * TokenRequest defaults them before admission), which a grant that names none allows.
 */
export function grantPolicy(defaultAudiences: string[]): GrantPolicyObjects {
  const metadata = { name: GRANT_POLICY_NAME, labels: { ...MANAGED_BY } };
  const prefix = `system:serviceaccount:${SYSTEM_NAMESPACE}:mcsa-importer-`;
  const annotation = (key: string, fallback: string) => `params.metadata.?annotations[?${cel(key)}].orValue(${cel(fallback)})`;
  const grant = "'grant ' + params.metadata.name";
  const unless = (rule: string) => `!variables.thisGrant || (${rule})`;
  return {
    policy: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata,
      spec: {
        failurePolicy: "Fail",
        paramKind: { apiVersion: "v1", kind: "Secret" },
        matchConstraints: {
          resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["serviceaccounts/token"] }],
        },
        matchConditions: [{ name: "importer-identity", expression: `request.userInfo.username.startsWith(${cel(prefix)})` }],
        variables: [
          { name: "importer", expression: "request.userInfo.username.split(':')[3]" },
          { name: "boundKind", expression: "object.spec.?boundObjectRef.?kind.orValue('')" },
          { name: "anchor", expression: "variables.boundKind == 'Secret' ? object.spec.boundObjectRef.?name.orValue('') : ''" },
          {
            name: "ownAnchor",
            expression:
              "variables.anchor != '' && object.spec.boundObjectRef.?apiVersion.orValue('') in ['', 'v1'] && " +
              "(variables.anchor == variables.importer || variables.anchor.startsWith(variables.importer + '.'))",
          },
          { name: "thisGrant", expression: "variables.anchor == params.metadata.name" },
          { name: "grantServiceAccount", expression: annotation(GRANT_SERVICE_ACCOUNT_ANNOTATION, "") },
          { name: "grantImporter", expression: `params.metadata.?labels[?${cel(IMPORTER_LABEL)}].orValue('')` },
          { name: "grantAudiences", expression: annotation(GRANT_AUDIENCES_ANNOTATION, "") },
          {
            name: "allowedAudiences",
            expression:
              `variables.grantAudiences.trim() == '' ? [${defaultAudiences.map(cel).join(", ")}] : ` +
              "variables.grantAudiences.split(',').map(a, a.trim()).filter(a, a != '')",
          },
          { name: "maxSeconds", expression: `int(${annotation(GRANT_MAX_EXPIRATION_ANNOTATION, String(DEFAULT_GRANT_MAX_EXPIRATION_SECONDS))})` },
          { name: "seconds", expression: "object.spec.?expirationSeconds.orValue(3600)" },
        ],
        validations: [
          {
            expression: "variables.ownAnchor",
            reason: "Forbidden",
            messageExpression:
              "'an importer\\'s tokens must be bound to the anchor Secret of one of its grants (' + variables.importer + '.<namespace>.<import>), not to ' + " +
              "(variables.boundKind == '' ? 'nothing' : variables.boundKind + ' ' + object.spec.boundObjectRef.?name.orValue(''))",
          },
          {
            expression: unless("variables.grantServiceAccount != ''"),
            reason: "Forbidden",
            messageExpression: `${grant} + ' records nothing it allows (it predates enforced grants): the admin of this cluster re-runs kubectl mcsa bootstrap, which records it'`,
          },
          {
            expression: unless("variables.grantImporter == variables.importer"),
            reason: "Forbidden",
            messageExpression: `${grant} + ' is ' + variables.grantImporter + '\\'s, not ' + variables.importer + '\\'s'`,
          },
          {
            expression: unless("variables.grantServiceAccount == request.name"),
            reason: "Forbidden",
            messageExpression: `${grant} + ' allows tokens of service account ' + variables.grantServiceAccount + ' only, not ' + request.name`,
          },
          {
            expression: unless("object.spec.audiences.all(a, a in variables.allowedAudiences)"),
            reason: "Forbidden",
            messageExpression:
              `${grant} + ' allows the audiences ' + variables.allowedAudiences.join(',') + ` +
              "(variables.grantAudiences.trim() == '' ? ' (the API server\\'s own)' : '') + ' only, not ' + object.spec.audiences.join(',')",
          },
          {
            expression: unless("variables.seconds <= variables.maxSeconds"),
            reason: "Forbidden",
            messageExpression: `${grant} + ' allows tokens of at most ' + string(variables.maxSeconds) + 's, not ' + string(variables.seconds) + 's'`,
          },
        ],
      },
    },
    binding: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata,
      spec: {
        policyName: GRANT_POLICY_NAME,
        validationActions: ["Deny"],
        paramRef: {
          selector: { matchExpressions: [{ key: IMPORTER_LABEL, operator: "Exists" }] },
          parameterNotFoundAction: "Deny",
        },
      },
    },
  };
}
