// The ServiceAccountImport API, defined once: the CRD's OpenAPI schema is the object below, and the
// TypeScript types of spec, status and conditions are derived from it (FromSchema), so the type
// and the schema cannot drift apart. (pepr derives a CRD from a type; this goes the other way, as
// a schema says more than a type: patterns, bounds, descriptions.) No client-node here: the
// sidecar's types come from this file too.
import { type API_VERSION, type KIND, MIN_EXPIRATION_SECONDS } from "./api.ts";

/** The subset of OpenAPI v3 the CRD uses. */
export interface JsonSchema {
  type: "object" | "string" | "integer" | "array" | "boolean";
  description?: string;
  properties?: Readonly<Record<string, JsonSchema>>;
  required?: readonly string[];
  items?: JsonSchema;
  enum?: readonly string[];
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** client-node's spelling of x-kubernetes-list-type (it renames the keys when it sends them). */
  x_kubernetes_list_type?: "map" | "set" | "atomic";
  x_kubernetes_list_map_keys?: readonly string[];
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectFromSchema<P, R> = Simplify<
  { -readonly [K in keyof P as K extends R ? K : never]: FromSchema<P[K]> } & {
    -readonly [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]>;
  }
>;

/** The TypeScript type of the values a schema accepts (required properties required, the rest optional). */
export type FromSchema<S> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: "string" }
    ? string
    : S extends { type: "integer" }
      ? number
      : S extends { type: "boolean" }
        ? boolean
        : S extends { type: "array"; items: infer I }
          ? FromSchema<I>[]
          : S extends { type: "object"; properties: infer P }
            ? ObjectFromSchema<P, S extends { required: readonly (infer R)[] } ? R : never>
            : S extends { type: "object" }
              ? Record<string, unknown>
              : never;

const dnsName = { type: "string", minLength: 1, maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" } as const;
const dnsLabel = { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" } as const;
const dateTime = { type: "string", format: "date-time" } as const;
const int64 = { type: "integer", format: "int64" } as const;

/** The longest token lifetime an import may ask for (a grant caps it further: grant-max-expiration-seconds). */
export const MAX_EXPIRATION_SECONDS = 7 * 86400;

const SPEC_SCHEMA = {
  type: "object",
  required: ["clusterName", "namespace", "name"],
  properties: {
    clusterName: { ...dnsLabel, description: "The remote cluster, as registered by kubectl mcsa bootstrap." },
    namespace: { ...dnsLabel, description: "Namespace of the remote service account." },
    name: { ...dnsName, description: "Name of the remote service account." },
    expirationSeconds: {
      ...int64,
      minimum: MIN_EXPIRATION_SECONDS,
      maximum: MAX_EXPIRATION_SECONDS,
      description: "Requested token lifetime (default 3600, at most 7 days); the remote grant caps it, and the remote server may shorten it.",
    },
    audiences: { type: "array", items: { type: "string" }, description: "Token audiences (default: the remote API server's); the remote grant must allow them." },
  },
} as const satisfies JsonSchema;

/** metav1.Condition's fields, and the same required ones. */
const CONDITION_SCHEMA = {
  type: "object",
  required: ["type", "status", "reason", "message", "lastTransitionTime"],
  properties: {
    type: { type: "string" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string" },
    message: { type: "string" },
    lastTransitionTime: dateTime,
    observedGeneration: int64,
  },
} as const satisfies JsonSchema;

const STATUS_SCHEMA = {
  type: "object",
  properties: {
    secrets: {
      type: "array",
      description: "The import's Secret (one), as the original project named it.",
      items: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
    },
    conditions: { type: "array", x_kubernetes_list_type: "map", x_kubernetes_list_map_keys: ["type"], items: CONDITION_SCHEMA },
    expirationTimestamp: { ...dateTime, description: "When the current token expires." },
    issuedAt: { ...dateTime, description: "When the current token was issued." },
    rotationRequest: { type: "string", description: "The last rotation request (annotation value) the controller acted on." },
    grant: {
      type: "object",
      description: "What the remote grant allows, as its anchor recorded it when the controller last minted a token.",
      required: ["serviceAccount", "maxExpirationSeconds"],
      properties: {
        serviceAccount: { type: "string", description: "The one remote service account the grant is for." },
        audiences: { type: "array", items: { type: "string" }, description: "The audiences it allows (none: only the remote API server's own)." },
        maxExpirationSeconds: { ...int64, description: "The longest token lifetime it allows." },
      },
    },
    observedGeneration: int64,
  },
} as const satisfies JsonSchema;

/** The CRD's openAPIV3Schema. */
export const IMPORT_SCHEMA = {
  type: "object",
  description: "Imports a service account of a remote cluster: the controller keeps a short-lived token for it in a Secret.",
  properties: {
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: { type: "object" },
    spec: SPEC_SCHEMA,
    status: STATUS_SCHEMA,
  },
} as const satisfies JsonSchema;

export type ServiceAccountImportSpec = FromSchema<typeof SPEC_SCHEMA>;
export type ServiceAccountImportStatus = FromSchema<typeof STATUS_SCHEMA>;
export type Condition = FromSchema<typeof CONDITION_SCHEMA>;
export type ConditionStatus = Condition["status"];

/** The metadata fields the product reads and writes (the CRD leaves metadata to the API server). */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
}

export interface ServiceAccountImport {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: ServiceAccountImportSpec;
  status?: ServiceAccountImportStatus;
}
