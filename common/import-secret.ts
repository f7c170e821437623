// The import Secret: written by the controller, read by the plugin (API objects, base64) and by
// the sidecar (files of a mounted Secret volume, utf8). One format, checked the same way everywhere.

import { createHash } from "node:crypto";
// js-yaml, not @kubernetes/client-node's loadYaml: the sidecar imports this module, and loading
// client-node costs its process about 60 MiB of resident memory (it needs only the YAML parser).
import type { V1Secret } from "@kubernetes/client-node";
import { load as loadYaml } from "js-yaml";
import { API_VERSION, IMPORT_LABEL, KIND, SECRET_KEYS, type SecretKey, type ServiceAccountImport } from "./api.ts";
import { importKubeconfig, renderKubeconfig } from "./kubeconfig.ts";
import { validateDnsLabel } from "./names.ts";
import { redactTokens } from "./redact.ts";

export interface ImportSecretContents {
  token: string;
  caPem: string;
  namespace: string;
  server: string;
  config: string;
}

export interface ImportSecretInput {
  importName: string;
  token: string;
  caPem: string;
  namespace: string;
  server: string;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function looksLikeKubeconfig(text: string): boolean {
  try {
    // The parser's own error would quote the YAML, token included: keep only yes or no.
    const obj = loadYaml(text) as Record<string, unknown> | null;
    return (
      typeof obj === "object" &&
      obj !== null &&
      ["clusters", "users", "contexts"].every((k) => Array.isArray(obj[k]) && (obj[k] as unknown[]).length > 0)
    );
  } catch {
    return false;
  }
}

/** Problems with decoded values; messages never quote the token or the config (which embeds it). */
function problems(v: Record<SecretKey, string>): string[] {
  const out: string[] = [];
  if (/[\s\p{Cc}]/u.test(v.token)) out.push("token: contains whitespace or control characters");
  if (!PEM_CERT_RE.test(v["ca.crt"])) out.push("ca.crt: not a PEM certificate");
  const nsError = validateDnsLabel(v.namespace);
  if (nsError !== undefined) out.push(`namespace: ${JSON.stringify(v.namespace)}: ${nsError}`);
  let url: URL | undefined;
  try {
    url = new URL(v.server);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "https:") out.push(`server: ${JSON.stringify(v.server)} is not an https URL`);
  if (!looksLikeKubeconfig(v.config)) out.push("config: not a kubeconfig (YAML with clusters, users and contexts)");
  return out;
}

function fail(messages: string[]): never {
  // Values are quoted to help debugging; a token pasted into the wrong key must still not show.
  throw new Error(redactTokens(`invalid import Secret: ${messages.join("; ")}`));
}

/** The Secret's `data`: every key base64, `config` a kubeconfig with the token embedded. */
export function buildImportSecretData(input: ImportSecretInput): Record<SecretKey, string> {
  const values: Record<SecretKey, string> = {
    token: input.token,
    "ca.crt": input.caPem,
    namespace: input.namespace,
    server: input.server,
    config: renderKubeconfig(
      importKubeconfig({
        name: input.importName,
        server: input.server,
        caData: input.caPem,
        namespace: input.namespace,
        token: input.token,
      }),
    ),
  };
  // Refuse to write what the sidecar would refuse to read.
  const empty = SECRET_KEYS.filter((k) => values[k].trim() === "");
  const bad = [...(empty.length > 0 ? [`empty: ${empty.join(", ")}`] : []), ...problems(values)];
  if (bad.length > 0) fail(bad);
  const data = {} as Record<SecretKey, string>;
  for (const k of SECRET_KEYS) data[k] = Buffer.from(values[k], "utf8").toString("base64");
  return data;
}

/** A new import Secret minus its data: named after, labelled with, and owned by the import. */
/**
 * The original's `<import>-token-xxxxx` name, but derived from the import's uid instead of
 * generated: a controller that fails between creating the Secret and recording its name finds it
 * again instead of leaking another live token, and a deleted Secret comes back under the name
 * running pods mount.
 */
export function importSecretName(importName: string, uid: string): string {
  const suffix = createHash("sha256").update(uid).digest("hex").slice(0, 5);
  return `${importName.slice(0, 253 - 12).replace(/[-.]+$/, "")}-token-${suffix}`;
}

export function importSecretSkeleton(sai: ServiceAccountImport): V1Secret & { type: "Opaque" } {
  const { name, namespace, uid } = sai.metadata;
  if (!name || !namespace || !uid) {
    throw new Error("the import needs metadata.name, metadata.namespace and metadata.uid to own a Secret");
  }
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: importSecretName(name, uid),
      namespace,
      labels: { [IMPORT_LABEL]: name },
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name, uid, controller: true, blockOwnerDeletion: true }],
    },
    // Opaque, not kubernetes.io/service-account-token: the token comes from a remote TokenRequest,
    // and the legacy type would hand the Secret to this cluster's token controller, which expects
    // a local service account and fills in or deletes such Secrets.
    type: "Opaque",
  };
}

/**
 * Decoded, checked contents of an import Secret, from API `data` (base64) or from the files of
 * a mounted Secret volume (utf8). Throws one Error naming every missing, empty or invalid key.
 */
export function parseImportSecret(
  data: Record<string, string> | undefined,
  opts: { encoding: "base64" | "utf8" },
): ImportSecretContents {
  const bad: string[] = [];
  const missing: string[] = [];
  const empty: string[] = [];
  const values = {} as Record<SecretKey, string>;
  for (const key of SECRET_KEYS) {
    const raw = data?.[key];
    if (raw === undefined) {
      missing.push(key);
      continue;
    }
    let text = raw;
    if (opts.encoding === "base64" && text !== "") {
      const compact = text.replace(/\s+/g, "");
      if (!BASE64_RE.test(compact) || compact.length % 4 !== 0) {
        bad.push(`${key}: not valid base64`);
        continue;
      }
      text = Buffer.from(compact, "base64").toString("utf8");
    }
    // Values written by hand or by `kubectl create secret --from-file` often end in a newline.
    values[key] = key === "ca.crt" || key === "config" ? text : text.trim();
    if (values[key].trim() === "") empty.push(key);
  }
  if (empty.length > 0) bad.unshift(`empty: ${empty.join(", ")}`);
  if (missing.length > 0) bad.unshift(`missing: ${missing.join(", ")}`);
  if (bad.length > 0) fail(bad);
  const invalid = problems(values);
  if (invalid.length > 0) fail(invalid);
  return {
    token: values.token,
    caPem: values["ca.crt"],
    namespace: values.namespace,
    server: values.server,
    config: values.config,
  };
}

/** When a JWT expires, from its unverified `exp` claim; undefined for anything else. Never throws. */
/** A JWT's payload claims, decoded without verifying; undefined for anything that is not a JWT. */
export function tokenClaims(token: string): Record<string, unknown> | undefined {
  try {
    const parts = token.trim().split(".");
    if (parts.length !== 3 || parts[1] === undefined || parts[1] === "") return undefined;
    const payload: unknown = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    return typeof payload === "object" && payload !== null ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function tokenExpiry(token: string): Date | undefined {
  const exp = tokenClaims(token)?.exp;
  if (typeof exp !== "number" || !Number.isFinite(exp)) return undefined;
  const date = new Date(exp * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
