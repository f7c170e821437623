// The in-cluster objects of an install: the ServiceAccountImport CRD, the controller's identity
// and its least-privilege RBAC, the in-cluster process (controller and webhook) with its Service
// and serving certificate, and the MutatingWebhookConfiguration. `kubectl mcsa install` applies
// them; tests apply the same.
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1CustomResourceDefinition,
  V1Deployment,
  V1JSONSchemaProps,
  V1ConfigMap,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1NetworkPolicy,
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  CRD_NAME,
  GROUP,
  IMPORT_LABEL,
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
import { CLUSTER_NAME_LABEL } from "./registration.ts";
import pkg from "../package.json" with { type: "json" };

export const CONTROLLER_SERVICE_ACCOUNT = "mcsa-controller";
/** The webhook's read-only identity: the manager impersonates it for every API call of the webhook. */
export const WEBHOOK_SERVICE_ACCOUNT = "mcsa-webhook";
/** The username the API server gives a service account of the system namespace. */
export const serviceAccountUser = (name: string): string => `system:serviceaccount:${SYSTEM_NAMESPACE}:${name}`;
/** The ValidatingAdmissionPolicy (and its binding) that confines the manager's and webhook's Secret writes. */
export const SECRETS_POLICY = "mcsa-secrets";
export const WEBHOOK_NETWORK_POLICY = "mcsa-webhook";
/** ConfigMap of the CA that signs the API server's client certificate for the webhook (optional). */
export const WEBHOOK_CLIENT_CA = "mcsa-webhook-client-ca";
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
const CLIENT_CA_DIR = "/etc/mcsa/webhook-client-ca";
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

/**
 * The manager's identity with the least it needs. Secrets: no get, list or watch anywhere but its
 * own namespace (registrations); create, update, patch and delete cluster-wide because RBAC cannot
 * name Secrets by label or owner, and the Secrets it creates in users' namespaces do not exist when
 * RBAC would have to name them. The API server confines those verbs to import Secrets with a
 * ValidatingAdmissionPolicy (managerSecretsPolicy); the controller reads its Secrets with a no-op
 * patch, which that policy sees (controller/import-secrets.ts).
 */
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
        // Import Secrets only, enforced by admission (SECRETS_POLICY): no get, list or watch of anyone's Secrets.
        { apiGroups: [""], resources: ["secrets"], verbs: ["create", "update", "patch", "delete"] },
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
      rules: [
        // patch: renewing the importer identity's token in its registration (admission: registrations only).
        { apiGroups: [""], resources: ["secrets"], verbs: ["list", "watch", "patch"] },
        // The webhook's API calls are made as its own read-only identity.
        { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"], resourceNames: [WEBHOOK_SERVICE_ACCOUNT] },
      ],
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

/**
 * The webhook's identity: reads imports and namespaces, nothing else. `delete` on Secrets is there
 * for one question only, whether an import's Secret exists (webhook/lookup.ts): a delete whose uid
 * precondition matches no object answers 409 (it exists) or 404 (it does not) before admission
 * runs, and SECRETS_POLICY refuses every Secret write of this identity, so no Secret is ever
 * deleted, read or changed by it.
 */
export function webhookRbac(): { serviceAccount: V1ServiceAccount; clusterRole: V1ClusterRole; clusterRoleBinding: V1ClusterRoleBinding } {
  const name = WEBHOOK_SERVICE_ACCOUNT;
  return {
    serviceAccount: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: SYSTEM_NAMESPACE, labels: LABELS } },
    clusterRole: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name, labels: LABELS },
      rules: [
        { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["secrets"], verbs: ["delete"] },
      ],
    },
    clusterRoleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ kind: "ServiceAccount", name, namespace: SYSTEM_NAMESPACE }],
    },
  };
}

/** CEL: the Secret `s` is an import Secret (as importSecretSkeleton makes them). */
const IMPORT_SECRET_CEL = (s: string) =>
  `${s}.type == 'Opaque' && has(${s}.metadata.labels) && '${IMPORT_LABEL}' in ${s}.metadata.labels && ` +
  `has(${s}.metadata.ownerReferences) && ${s}.metadata.ownerReferences.exists(r, r.kind == '${KIND}' && r.apiVersion.startsWith('${GROUP}/') && ` +
  `r.name == ${s}.metadata.labels['${IMPORT_LABEL}'] && has(r.controller) && r.controller)`;
/** CEL: the Secret `s` is a cluster registration (common/registration.ts). */
const REGISTRATION_CEL = (s: string) => `${s}.type == 'Opaque' && has(${s}.metadata.labels) && '${CLUSTER_NAME_LABEL}' in ${s}.metadata.labels`;

/**
 * What the API server lets the manager and the webhook do to Secrets, beyond RBAC (which sees
 * verbs, not labels or owners). The manager: create, update and delete import Secrets outside the
 * system namespace, and in it update cluster registrations (token renewal); nothing else. The
 * webhook: nothing. Admission never sees get, list or watch: RBAC keeps those to the system
 * namespace (manager) or gives none (webhook).
 */
export function managerSecretsPolicy(): { policy: V1ValidatingAdmissionPolicy; binding: V1ValidatingAdmissionPolicyBinding } {
  const manager = serviceAccountUser(CONTROLLER_SERVICE_ACCOUNT);
  const webhook = serviceAccountUser(WEBHOOK_SERVICE_ACCOUNT);
  return {
    policy: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: SECRETS_POLICY, labels: LABELS },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [{ apiGroups: [""], apiVersions: ["*"], resources: ["secrets"], operations: ["CREATE", "UPDATE", "DELETE"] }],
        },
        matchConditions: [{ name: "manager-or-webhook", expression: `request.userInfo.username in ['${manager}', '${webhook}']` }],
        variables: [
          // DELETE has only the old object, CREATE only the new one, UPDATE both: both must qualify.
          { name: "old", expression: "request.operation == 'CREATE' ? object : oldObject" },
          { name: "new", expression: "request.operation == 'DELETE' ? oldObject : object" },
          { name: "home", expression: `request.namespace == '${SYSTEM_NAMESPACE}'` },
        ],
        validations: [
          {
            expression: `request.userInfo.username != '${webhook}'`,
            reason: "Forbidden",
            message: "the webhook's identity is read-only: it may not write Secrets",
          },
          {
            expression: `variables.home || (${IMPORT_SECRET_CEL("variables.old")} && ${IMPORT_SECRET_CEL("variables.new")})`,
            reason: "Forbidden",
            message: `the manager may only create, change or delete import Secrets (type Opaque, label ${IMPORT_LABEL}, owned by a ${KIND})`,
          },
          {
            expression: `!variables.home || (request.operation == 'UPDATE' && ${REGISTRATION_CEL("variables.old")} && ${REGISTRATION_CEL("variables.new")})`,
            reason: "Forbidden",
            message: `in ${SYSTEM_NAMESPACE}, the manager may only update cluster registrations (label ${CLUSTER_NAME_LABEL})`,
          },
        ],
      },
    },
    binding: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: SECRETS_POLICY, labels: LABELS },
      spec: { policyName: SECRETS_POLICY, validationActions: ["Deny"] },
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
  /** The webhook verifies the API server's client certificate against the CA in ConfigMap WEBHOOK_CLIENT_CA. */
  clientCa?: boolean;
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
    `--webhook-as=${WEBHOOK_SERVICE_ACCOUNT}`,
    ...(options.clientCa ? [`--webhook-client-ca=${CLIENT_CA_DIR}/ca.crt`] : []),
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
                ...(options.clientCa ? [{ name: "webhook-client-ca", mountPath: CLIENT_CA_DIR, readOnly: true }] : []),
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
            ...(options.clientCa ? [{ name: "webhook-client-ca", configMap: { name: WEBHOOK_CLIENT_CA, items: [{ key: "ca.crt", path: "ca.crt" }] } }] : []),
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

/**
 * Ingress to the manager's pods: the webhook's port only. The API server is not a pod (no pod or
 * namespace selector can name it, and its source address is the cluster's own business), so the
 * port is open to any source; what answers there is the webhook, which with a client CA serves
 * AdmissionReviews only to the API server's certificate. Kubelet probes come from the node, which
 * NetworkPolicy never blocks. Enforced only where the cluster's network plugin implements
 * NetworkPolicy (a plain CNI bridge, as on the local harness's node, does not).
 */
export function webhookNetworkPolicy(): V1NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: WEBHOOK_NETWORK_POLICY, namespace: SYSTEM_NAMESPACE, labels: MANAGER_LABELS },
    spec: {
      podSelector: { matchLabels: MANAGER_SELECTOR },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ protocol: "TCP", port: WEBHOOK_PORT }] }],
    },
  };
}

/** The CA that signs the API server's client certificate for webhooks (--admission-control-config-file). */
export function webhookClientCa(caPem: string): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: WEBHOOK_CLIENT_CA, namespace: SYSTEM_NAMESPACE, labels: MANAGER_LABELS },
    data: { "ca.crt": caPem },
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

/**
 * The API, the manager's and the webhook's identities, and the admission policy that confines
 * their Secret writes to import Secrets: what every mode installs.
 */
export function baseObjects(admissionPolicy = true): KubernetesObject[] {
  const rbac = controllerRbac();
  const webhook = webhookRbac();
  const policy = managerSecretsPolicy();
  return [
    systemNamespace(),
    crd(),
    ...(admissionPolicy ? [policy.policy, policy.binding] : []),
    rbac.serviceAccount,
    rbac.clusterRole,
    rbac.clusterRoleBinding,
    rbac.role,
    rbac.roleBinding,
    webhook.serviceAccount,
    webhook.clusterRole,
    webhook.clusterRoleBinding,
  ];
}
