// The in-cluster objects of an install: the ServiceAccountImport CRD, the controller's identity
// and its least-privilege RBAC, the in-cluster process (controller and webhook) with its Service
// and serving certificate, and the MutatingWebhookConfiguration. `kubectl mcsa install` applies
// them; tests apply the same.
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1CustomResourceDefinition,
  V1Deployment,
  V1JSONSchemaProps,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  CRD_NAME,
  GROUP,
  IMPORT_ANNOTATION,
  KIND,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_VALUE,
  PLURAL,
  SHORT_NAME,
  SYSTEM_NAMESPACE,
  VERSION,
} from "./api.ts";
import { IMPORT_SCHEMA } from "./import-api.ts";
import pkg from "../package.json" with { type: "json" };

export const CONTROLLER_SERVICE_ACCOUNT = "mcsa-controller";
const LABELS = { "app.kubernetes.io/name": "kubectl-mcsa", "app.kubernetes.io/managed-by": "kubectl-mcsa" };

/** The product's version, from package.json: the default image's tag. */
export const PRODUCT_VERSION: string = pkg.version;
/** One image holds the in-cluster process (mcsa-manager) and the sidecar (mcsa-sidecar). */
export const DEFAULT_IMAGE = `ghcr.io/kubectl-mcsa/mcsa:v${PRODUCT_VERSION}`;
/** The Deployment of the in-cluster process (import controller and webhook). */
export const MANAGER_NAME = "mcsa-manager";
export const WEBHOOK_SERVICE = "mcsa-webhook";
/** Serving certificate and its CA (type kubernetes.io/tls, plus ca.crt and ca.key). */
export const WEBHOOK_SECRET = "mcsa-webhook-tls";
export const WEBHOOK_CONFIGURATION = "mcsa-webhook";
/** The webhook's name inside its configuration (must be a qualified name). */
export const WEBHOOK_NAME = `sidecar-injector.${GROUP}`;
export const WEBHOOK_PORT = 8443;
export const WEBHOOK_PATH = "/mutate-pods";
const MANAGER_LABELS = { ...LABELS, "app.kubernetes.io/component": "manager" };
const MANAGER_SELECTOR = { "app.kubernetes.io/name": "kubectl-mcsa", "app.kubernetes.io/component": "manager" };
const CERT_DIR = "/etc/mcsa/webhook";
const MANAGER_USER = 65532;

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
            // A "date" column prints the time since its value: a future expiry shows "<invalid>".
            // The token's age counts up and works; the expiry itself is in -o wide as RFC 3339.
            { name: "Token-Age", type: "date", jsonPath: ".status.issuedAt" },
            { name: "Expires", type: "string", jsonPath: ".status.expirationTimestamp", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          // One definition: the types the code uses are derived from this schema (import-api.ts).
          schema: { openAPIV3Schema: structuredClone(IMPORT_SCHEMA) as unknown as V1JSONSchemaProps },
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
        { apiGroups: [""], resources: ["secrets"], verbs: ["create", "get", "update", "delete"] },
        { apiGroups: [""], resources: ["events"], verbs: ["create"] },
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
      // patch: renewing the importer identity's token in its registration.
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list", "watch", "patch"] }],
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

export interface ManagerOptions {
  /** Image of the in-cluster process. */
  image: string;
  /** Image of the injected sidecar; the Deployment passes it to the webhook. */
  sidecarImage: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  logLevel?: string;
}

/**
 * The in-cluster process: import controller and webhook in one pod. One replica: the controller
 * has no leader election, and two would mint tokens twice. Rolling updates start the new pod
 * before stopping the old, so the webhook (failurePolicy Fail) has no gap during an upgrade.
 */
export function managerDeployment(options: ManagerOptions): V1Deployment {
  const args = [
    `--webhook-listen=:${WEBHOOK_PORT}`,
    `--webhook-cert=${CERT_DIR}/tls.crt`,
    `--webhook-key=${CERT_DIR}/tls.key`,
    `--webhook-path=${WEBHOOK_PATH}`,
    `--sidecar-image=${options.sidecarImage}`,
    ...(options.logLevel ? [`--log-level=${options.logLevel}`] : []),
  ];
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE, labels: MANAGER_LABELS },
    spec: {
      replicas: 1,
      revisionHistoryLimit: 3,
      selector: { matchLabels: MANAGER_SELECTOR },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: MANAGER_LABELS },
        spec: {
          serviceAccountName: CONTROLLER_SERVICE_ACCOUNT,
          // The token is mounted explicitly (below), as the ServiceAccount admission plugin would:
          // clusters without that plugin (envtest-like ones, the local harness) run it too.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: MANAGER_USER,
            runAsGroup: MANAGER_USER,
            fsGroup: MANAGER_USER,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "manager",
              image: options.image,
              ...(options.imagePullPolicy ? { imagePullPolicy: options.imagePullPolicy } : {}),
              command: ["mcsa-manager"],
              args,
              // Keep V8's heap well under the limit: without pressure it grows before collecting.
              env: [{ name: "NODE_OPTIONS", value: "--max-old-space-size=256" }],
              ports: [{ name: "webhook", containerPort: WEBHOOK_PORT, protocol: "TCP" }],
              readinessProbe: { httpGet: { path: "/readyz", port: "webhook", scheme: "HTTPS" }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: "/healthz", port: "webhook", scheme: "HTTPS" }, periodSeconds: 10, failureThreshold: 6 },
              resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "384Mi" } },
              securityContext: {
                runAsNonRoot: true,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                privileged: false,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
              },
              volumeMounts: [
                { name: "webhook-tls", mountPath: CERT_DIR, readOnly: true },
                { name: "service-account", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
              ],
            },
          ],
          // Only the serving pair: the CA's key stays in the Secret, for the next install to sign with.
          volumes: [
            {
              name: "webhook-tls",
              secret: {
                secretName: WEBHOOK_SECRET,
                defaultMode: 0o440,
                items: [
                  { key: "tls.crt", path: "tls.crt" },
                  { key: "tls.key", path: "tls.key" },
                ],
              },
            },
            // In-cluster credentials, at the path every client reads: a bound, expiring token, the CA, the namespace.
            {
              name: "service-account",
              projected: {
                defaultMode: 0o444,
                sources: [
                  { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
                  { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
                  { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
                ],
              },
            },
          ],
        },
      },
    },
  };
}

export function webhookService(): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: WEBHOOK_SERVICE, namespace: SYSTEM_NAMESPACE, labels: MANAGER_LABELS },
    spec: {
      type: "ClusterIP",
      selector: MANAGER_SELECTOR,
      ports: [{ name: "https", port: 443, targetPort: "webhook", protocol: "TCP" }],
    },
  };
}

export interface WebhookTls {
  /** PEM CA certificates the API server trusts: the current CA first, then one being retired. */
  caBundle: string;
  /** PEM private key of the current CA (the first in caBundle). */
  caKey: string;
  cert: string;
  key: string;
}

export function webhookSecret(tls: WebhookTls): V1Secret {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE, labels: MANAGER_LABELS },
    type: "kubernetes.io/tls",
    data: { "tls.crt": b64(tls.cert), "tls.key": b64(tls.key), "ca.crt": b64(tls.caBundle), "ca.key": b64(tls.caKey) },
  };
}

export type WebhookClient = { service: true } | { url: string };

export interface WebhookConfigurationOptions {
  client: WebhookClient;
  /** PEM CA bundle the API server verifies the webhook's certificate with. */
  caBundle: string;
  /**
   * Send only pods that carry the import annotation (CEL matchConditions, on by default since
   * Kubernetes 1.28): every other pod is admitted without a call, so the webhook being down
   * never blocks them.
   */
  matchConditions: boolean;
}

/** DNS names the serving certificate must hold for the API server to reach the Service. */
export function webhookDnsNames(): string[] {
  return [`${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc`, `${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc.cluster.local`];
}

export function mutatingWebhookConfiguration(options: WebhookConfigurationOptions): V1MutatingWebhookConfiguration {
  const clientConfig =
    "url" in options.client
      ? { url: options.client.url }
      : { service: { namespace: SYSTEM_NAMESPACE, name: WEBHOOK_SERVICE, path: WEBHOOK_PATH, port: 443 } };
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIGURATION, labels: LABELS },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ["v1"],
        clientConfig: { ...clientConfig, caBundle: Buffer.from(options.caBundle).toString("base64") },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
        namespaceSelector: { matchLabels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } },
        // Never our own pods: the webhook must not depend on itself to start.
        objectSelector: { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "NotIn", values: ["kubectl-mcsa"] }] },
        ...(options.matchConditions
          ? {
              matchConditions: [
                {
                  name: "has-import-annotation",
                  expression: `has(object.metadata.annotations) && '${IMPORT_ANNOTATION}' in object.metadata.annotations`,
                },
              ],
            }
          : {}),
        failurePolicy: "Fail",
        matchPolicy: "Equivalent",
        sideEffects: "None",
        timeoutSeconds: 5,
        reinvocationPolicy: "IfNeeded",
      },
    ],
  };
}
