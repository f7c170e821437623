// The in-cluster objects of an install: the ServiceAccountImport CRD, the controller's identity
// and its least-privilege RBAC. `kubectl mcsa install` applies them; tests apply the same.
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1CustomResourceDefinition,
  V1Namespace,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { CRD_NAME, GROUP, KIND, MIN_EXPIRATION_SECONDS, PLURAL, SHORT_NAME, SYSTEM_NAMESPACE, VERSION } from "./api.ts";

export const CONTROLLER_SERVICE_ACCOUNT = "mcsa-controller";
const LABELS = { "app.kubernetes.io/name": "kubectl-mcsa", "app.kubernetes.io/managed-by": "kubectl-mcsa" };

const dnsName = { type: "string", minLength: 1, maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" };
const dnsLabel = { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" };

export function crd(): V1CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: CRD_NAME, labels: LABELS },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: "serviceaccountimport", shortNames: [SHORT_NAME] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Cluster", type: "string", jsonPath: ".spec.clusterName" },
            { name: "Remote-Namespace", type: "string", jsonPath: ".spec.namespace" },
            { name: "Service-Account", type: "string", jsonPath: ".spec.name" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Reason", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: "Expires", type: "date", jsonPath: ".status.expirationTimestamp" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "Imports a service account of a remote cluster: the controller keeps a short-lived token for it in a Secret.",
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: {
                  type: "object",
                  required: ["clusterName", "namespace", "name"],
                  properties: {
                    clusterName: { ...dnsLabel, description: "The remote cluster, as registered by kubectl mcsa bootstrap." },
                    namespace: { ...dnsLabel, description: "Namespace of the remote service account." },
                    name: { ...dnsName, description: "Name of the remote service account." },
                    expirationSeconds: {
                      type: "integer",
                      format: "int64",
                      minimum: MIN_EXPIRATION_SECONDS,
                      maximum: 86400 * 366,
                      description: "Requested token lifetime (default 3600); the remote server may shorten it.",
                    },
                    audiences: { type: "array", items: { type: "string" }, description: "Token audiences (default: the remote API server's)." },
                  },
                },
                status: {
                  type: "object",
                  properties: {
                    secrets: {
                      type: "array",
                      items: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
                    },
                    conditions: {
                      type: "array",
                      x_kubernetes_list_type: "map",
                      x_kubernetes_list_map_keys: ["type"],
                      items: {
                        type: "object",
                        required: ["type", "status"],
                        properties: {
                          type: { type: "string" },
                          status: { type: "string", enum: ["True", "False", "Unknown"] },
                          reason: { type: "string" },
                          message: { type: "string" },
                          lastTransitionTime: { type: "string", format: "date-time" },
                          observedGeneration: { type: "integer", format: "int64" },
                        },
                      },
                    },
                    expirationTimestamp: { type: "string", format: "date-time" },
                    issuedAt: { type: "string", format: "date-time" },
                    rotationRequest: { type: "string" },
                    observedGeneration: { type: "integer", format: "int64" },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}

export function systemNamespace(): V1Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: SYSTEM_NAMESPACE, labels: LABELS } };
}

/** The controller (and webhook) identity with the least it needs. */
export function controllerRbac(): {
  serviceAccount: V1ServiceAccount;
  clusterRole: V1ClusterRole;
  clusterRoleBinding: V1ClusterRoleBinding;
  role: V1Role;
  roleBinding: V1RoleBinding;
} {
  const name = CONTROLLER_SERVICE_ACCOUNT;
  const subjects = [{ kind: "ServiceAccount", name, namespace: SYSTEM_NAMESPACE }];
  return {
    serviceAccount: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: SYSTEM_NAMESPACE, labels: LABELS } },
    clusterRole: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name, labels: LABELS },
      rules: [
        { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch", "update", "patch"] },
        { apiGroups: [GROUP], resources: [`${PLURAL}/status`, `${PLURAL}/finalizers`], verbs: ["get", "update", "patch"] },
        // Import Secrets, by name only: no list or watch of anyone's Secrets.
        { apiGroups: [""], resources: ["secrets"], verbs: ["create", "get", "update", "patch", "delete"] },
        { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
        { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
        { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
      ],
    },
    clusterRoleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects,
    },
    // Cluster registrations live in the system namespace: watching them there only.
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name, namespace: SYSTEM_NAMESPACE, labels: LABELS },
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list", "watch"] }],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace: SYSTEM_NAMESPACE, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects,
    },
  };
}
