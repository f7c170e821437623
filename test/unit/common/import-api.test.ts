// The ServiceAccountImport API has one definition: the CRD's schema, from which the types are
// derived. These tests fail if the derivation drifts from the schema, or the CRD from the definition.
import { describe, expect, expectTypeOf, it } from "vitest";
import { API_VERSION, KIND, type ServiceAccountImport } from "../../../common/api.ts";
import { type Condition, IMPORT_SCHEMA, type JsonSchema, type ServiceAccountImportSpec, type ServiceAccountImportStatus } from "../../../common/import-api.ts";
import { crd } from "../../../common/manifests.ts";

type DeepRequired<T> = T extends (infer I)[] ? DeepRequired<I>[] : T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;

/** Every field the types allow, set: the compiler refuses it if a field is added to the schema and not here. */
const complete: DeepRequired<Pick<ServiceAccountImport, "spec" | "status">> & Pick<ServiceAccountImport, "apiVersion" | "kind"> = {
  apiVersion: API_VERSION,
  kind: KIND,
  spec: { clusterName: "cluster2", namespace: "default", name: "pod-lister", expirationSeconds: 3600, audiences: ["vault"] },
  status: {
    secrets: [{ name: "pods-token-abcde" }],
    conditions: [
      { type: "Ready", status: "True", reason: "TokenIssued", message: "m", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 },
    ],
    expirationTimestamp: "2026-01-01T01:00:00Z",
    issuedAt: "2026-01-01T00:00:00Z",
    rotationRequest: "2026-01-01T00:00:00Z",
    grant: { serviceAccount: "pod-lister", audiences: ["vault"], maxExpirationSeconds: 86400 },
    observedGeneration: 1,
  },
};

/** Where a value and its schema disagree: a field the schema lacks, a field it has that the value lacks, a wrong JSON type. */
function drift(schema: JsonSchema, value: unknown, path: string): string[] {
  const jsonType = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value === "object" ? "object" : typeof value;
  if (jsonType !== schema.type) return [`${path}: ${jsonType}, schema says ${schema.type}`];
  if (schema.type === "array") return (value as unknown[]).flatMap((v, i) => drift(schema.items!, v, `${path}[${i}]`));
  if (schema.type !== "object" || schema.properties === undefined) return [];
  const obj = value as Record<string, unknown>;
  const props = schema.properties;
  return [
    ...Object.keys(obj).filter((k) => !(k in props)).map((k) => `${path}.${k}: not in the schema`),
    ...Object.keys(props).filter((k) => !(k in obj) && k !== "metadata").map((k) => `${path}.${k}: in the schema, not in the type`),
    ...Object.keys(obj).filter((k) => k in props).flatMap((k) => drift(props[k]!, obj[k], `${path}.${k}`)),
  ];
}

describe("the ServiceAccountImport API", () => {
  it("a value with every field the type allows matches the schema field for field", () => {
    expect(drift(IMPORT_SCHEMA, complete, "")).toEqual([]);
  });

  it("the walk catches drift: an unknown field, a missing one, a wrong type", () => {
    const wrong = structuredClone(complete) as unknown as { spec: Record<string, unknown>; status: Record<string, unknown> };
    wrong.spec.extra = 1;
    delete wrong.status.issuedAt;
    wrong.spec.expirationSeconds = "1h";
    expect(drift(IMPORT_SCHEMA, wrong, "").sort()).toEqual([
      ".spec.expirationSeconds: string, schema says integer",
      ".spec.extra: not in the schema",
      ".status.issuedAt: in the schema, not in the type",
    ]);
  });

  it("the derived types say what the schema says: required fields required, enums as unions", () => {
    expectTypeOf<ServiceAccountImportSpec>().toEqualTypeOf<{
      clusterName: string;
      namespace: string;
      name: string;
      expirationSeconds?: number;
      audiences?: string[];
    }>();
    expectTypeOf<Condition["status"]>().toEqualTypeOf<"True" | "False" | "Unknown">();
    expectTypeOf<NonNullable<ServiceAccountImportStatus["secrets"]>[number]>().toEqualTypeOf<{ name: string }>();
  });

  it("the CRD serves the schema as defined", () => {
    const version = crd().spec.versions[0]!;
    expect(version.schema?.openAPIV3Schema).toEqual(IMPORT_SCHEMA);
    expect(version.subresources).toEqual({ status: {} });
  });
});
