// AdmissionReview (admission.k8s.io/v1) in and out, around the pure mutatePod. Parsing and the
// response are pure; review() adds only the look-ups the caller passes in. Nothing here throws:
// every request with a uid gets a well-formed response, and what has no uid to answer becomes
// an error the HTTP layer turns into a 400.

import type { V1Pod } from "@kubernetes/client-node";
import type { ServiceAccountImport } from "../common/api.ts";
import { isPlainObject as isObject } from "./json-patch.ts";
import { mutatePod, wantedImports, webhookPatch, type MutateOptions, type MutateResult } from "./mutate.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";
export const ADMISSION_KIND = "AdmissionReview";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** The fields of an AdmissionRequest this webhook reads; only uid is checked by parsing. */
export interface AdmissionRequest {
  uid: string;
  kind?: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  patchType?: "JSONPatch";
  /** Base64 of the JSON Patch. */
  patch?: string;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_KIND;
  response: AdmissionResponse;
}

export type ParseResult = { kind: "request"; request: AdmissionRequest } | { kind: "error"; message: string };

/** What to answer: mutatePod's result, or an error with an HTTP-like code (400 malformed, 500 ours). */
export type Decision = MutateResult | { kind: "error"; code: number; message: string };

export type ReviewResult =
  | { kind: "response"; review: AdmissionReviewResponse }
  /** No request we can answer: the HTTP layer replies 400 with this message. */
  | { kind: "error"; message: string };

/** Reads the cluster; the HTTP layer backs it with informers or API calls. */
export interface Lookup {
  namespaceLabels(namespace: string): Promise<Record<string, string> | undefined> | Record<string, string> | undefined;
  serviceAccountImport(
    namespace: string,
    name: string,
  ): Promise<ServiceAccountImport | undefined> | ServiceAccountImport | undefined;
  /** Whether the Secret exists (a ready import's Secret may have just been deleted); absent: not checked. */
  secretExists?(namespace: string, name: string): Promise<boolean> | boolean;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Checks the envelope: the only parts without which there is no one to answer. */
export function validateAdmissionReview(value: unknown): ParseResult {
  if (!isObject(value)) return { kind: "error", message: "body is not a JSON object" };
  if (value.apiVersion !== ADMISSION_API_VERSION || value.kind !== ADMISSION_KIND) {
    return {
      kind: "error",
      message: `expected apiVersion ${ADMISSION_API_VERSION} and kind ${ADMISSION_KIND}, got ${JSON.stringify(value.apiVersion)} and ${JSON.stringify(value.kind)}`,
    };
  }
  const request = value.request;
  if (!isObject(request)) return { kind: "error", message: "AdmissionReview has no request" };
  if (typeof request.uid !== "string" || request.uid === "") return { kind: "error", message: "AdmissionReview request has no uid" };
  return { kind: "request", request: request as unknown as AdmissionRequest };
}

export function parseAdmissionReview(raw: string | Uint8Array): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8"));
  } catch (err) {
    return { kind: "error", message: `body is not valid JSON: ${errorMessage(err)}` };
  }
  return validateAdmissionReview(value);
}

export function admissionResponse(request: AdmissionRequest, decision: Decision): AdmissionReviewResponse {
  const answer = (response: Omit<AdmissionResponse, "uid">): AdmissionReviewResponse => ({
    apiVersion: ADMISSION_API_VERSION,
    kind: ADMISSION_KIND,
    response: { uid: request.uid, ...response },
  });
  switch (decision.kind) {
    case "skip":
      return answer({ allowed: true });
    case "deny":
      // 403 makes controllers (ReplicaSet, Job…) retry with backoff, as with the original webhook.
      return answer({ allowed: false, status: { code: 403, message: decision.message } });
    case "error":
      return answer({ allowed: false, status: { code: decision.code, message: decision.message } });
    case "patch": {
      const patch = webhookPatch(request.object, decision.pod);
      if (patch.length === 0) return answer({ allowed: true });
      return answer({ allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") });
    }
  }
}

const hasString = (x: unknown, ...keys: string[]): boolean => isObject(x) && keys.every((k) => typeof x[k] === "string");
const ITEM_CHECKS: [string, (x: unknown) => boolean][] = [
  ["env", (x) => hasString(x, "name")],
  ["volumeMounts", (x) => hasString(x, "name", "mountPath")],
  ["ports", isObject],
  ["args", (x) => typeof x === "string"],
];

/** Why a Pod-shaped object cannot be handled, or undefined. Only the fields mutatePod walks. */
function malformedPod(obj: Record<string, unknown>): string | undefined {
  const meta = obj.metadata;
  if (meta !== undefined && !isObject(meta)) return "metadata is not an object";
  const annotations = isObject(meta) ? meta.annotations : undefined;
  if (annotations !== undefined && (!isObject(annotations) || Object.values(annotations).some((v) => typeof v !== "string"))) {
    return "metadata.annotations is not a map of strings";
  }
  const spec = obj.spec;
  if (!isObject(spec)) return "spec is missing";
  if (spec.volumes !== undefined && !(Array.isArray(spec.volumes) && spec.volumes.every((v) => hasString(v, "name")))) {
    return "spec.volumes is not a list of named volumes";
  }
  for (const field of ["containers", "initContainers"] as const) {
    const list = spec[field];
    if (list === undefined && field === "initContainers") continue;
    if (!Array.isArray(list)) return `spec.${field} is not a list`;
    for (const c of list) {
      if (!isObject(c) || typeof c.name !== "string") return `spec.${field} has an entry without a name`;
      for (const [sub, ok] of ITEM_CHECKS) {
        const items = c[sub];
        if (items !== undefined && !(Array.isArray(items) && items.every(ok))) {
          return `spec.${field}[${JSON.stringify(c.name)}].${sub} is malformed`;
        }
      }
    }
  }
  return undefined;
}

/** The pod to mutate, or the decision to answer right away (operation, subresource, kind, shape). */
export function admissionTarget(request: AdmissionRequest): { kind: "pod"; pod: V1Pod; namespace: string } | Decision {
  if (request.operation !== "CREATE") return { kind: "skip", reason: `operation ${String(request.operation)} is not handled` };
  if (request.subResource !== undefined && request.subResource !== "") {
    return { kind: "skip", reason: `subresource ${request.subResource} is not handled` };
  }
  const obj = request.object;
  if (!isObject(obj)) return { kind: "error", code: 400, message: "CREATE request has no object" };
  const gvk: unknown = request.kind;
  const isPod = (gvk === undefined || (isObject(gvk) && gvk.group === "" && gvk.kind === "Pod")) && (obj.kind === undefined || obj.kind === "Pod");
  // Only Pods are ours; a webhook configuration that sends more should not block other kinds.
  if (!isPod) return { kind: "skip", reason: "object is not a Pod" };
  const malformed = malformedPod(obj);
  if (malformed !== undefined) return { kind: "error", code: 400, message: `object is not a valid Pod: ${malformed}` };
  const pod = obj as V1Pod;
  const namespace = request.namespace || pod.metadata?.namespace;
  if (namespace === undefined || namespace === "") return { kind: "error", code: 400, message: "request names no namespace" };
  return { kind: "pod", pod, namespace };
}

/** Decides one request. Dry-run requests are mutated as usual: we have no side effects. */
export async function decide(request: AdmissionRequest, lookup: Lookup, options: MutateOptions): Promise<Decision> {
  const target = admissionTarget(request);
  if (target.kind !== "pod") return target;
  const { pod, namespace } = target;
  let labels: Record<string, string> | undefined;
  try {
    labels = await lookup.namespaceLabels(namespace);
  } catch (err) {
    return { kind: "error", code: 500, message: `cannot read namespace ${JSON.stringify(namespace)}: ${errorMessage(err)}` };
  }
  const wanted = wantedImports(pod, labels);
  if (wanted.kind !== "imports") return wanted;
  const imports = new Map<string, ServiceAccountImport | undefined>();
  try {
    const found = await Promise.all(wanted.names.map((name) => lookup.serviceAccountImport(namespace, name)));
    wanted.names.forEach((name, i) => imports.set(name, found[i]));
  } catch (err) {
    return { kind: "error", code: 500, message: `cannot read service account imports in namespace ${JSON.stringify(namespace)}: ${errorMessage(err)}` };
  }
  const result = mutatePod({ pod, namespace, namespaceLabels: labels, imports, options });
  if (result.kind !== "patch" || lookup.secretExists === undefined) return result;
  // A pod mounting a missing Secret would hang in ContainerCreating: refuse it while the controller restores it.
  for (const name of wanted.names) {
    const secret = imports.get(name)?.status?.secrets?.[0]?.name;
    if (secret === undefined) continue;
    let exists: boolean;
    try {
      exists = await lookup.secretExists(namespace, secret);
    } catch (err) {
      return { kind: "error", code: 500, message: `cannot read Secret ${JSON.stringify(secret)} in namespace ${JSON.stringify(namespace)}: ${errorMessage(err)}` };
    }
    if (!exists) {
      return {
        kind: "deny",
        message: `service account import ${JSON.stringify(name)} is not usable: its Secret ${JSON.stringify(secret)} is missing; the controller restores it within 30 s, retry then (kubectl mcsa check ${name} -n ${namespace})`,
      };
    }
  }
  return result;
}

/** Raw body (string or bytes) or an already parsed value in, AdmissionReview out. Never throws. */
export async function review(body: unknown, lookup: Lookup, options: MutateOptions): Promise<ReviewResult> {
  const parsed = typeof body === "string" || body instanceof Uint8Array ? parseAdmissionReview(body) : validateAdmissionReview(body);
  if (parsed.kind === "error") return parsed;
  const { request } = parsed;
  let decision: Decision;
  try {
    decision = await decide(request, lookup, options);
  } catch (err) {
    decision = { kind: "error", code: 500, message: `internal error: ${errorMessage(err)}` };
  }
  try {
    return { kind: "response", review: admissionResponse(request, decision) };
  } catch (err) {
    return { kind: "response", review: admissionResponse(request, { kind: "error", code: 500, message: `internal error: ${errorMessage(err)}` }) };
  }
}
