// Names derived from user input: the pod annotation, DNS-style object names, and the names the
// webhook gives to env vars and volumes. Pure string functions, shared by plugin, webhook and sidecar.

import { createHash } from "node:crypto";

const DNS_LABEL_MAX = 63;
const DNS_SUBDOMAIN_MAX = 253;
const LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const LABEL_RE = new RegExp(`^${LABEL_FMT}$`);
const SUBDOMAIN_RE = new RegExp(`^${LABEL_FMT}(\\.${LABEL_FMT})*$`);
const HASH_LEN = 8;

// Same wording as k8s.io/apimachinery/pkg/util/validation, so users see what kubectl would say.
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
  `with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '${LABEL_FMT}')`;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
  `and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '${LABEL_FMT}(\\.${LABEL_FMT})*')`;

/** Import names from the pod annotation: trimmed, no empties, first occurrence wins. */
export function parseImportAnnotation(value: string | undefined): string[] {
  if (value === undefined) return [];
  const names: string[] = [];
  for (const part of value.split(",")) {
    const name = part.trim();
    if (name !== "" && !names.includes(name)) names.push(name);
  }
  return names;
}

function validate(name: string, max: number, re: RegExp, msg: string): string | undefined {
  if (name === "") return "must not be empty";
  const errors: string[] = [];
  if (name.length > max) errors.push(`must be no more than ${max} characters`);
  if (!re.test(name)) errors.push(msg);
  return errors.length > 0 ? errors.join("; ") : undefined;
}

/** Error message if `name` is not a valid object name (RFC 1123 subdomain), else undefined. */
export function validateDnsSubdomain(name: string): string | undefined {
  return validate(name, DNS_SUBDOMAIN_MAX, SUBDOMAIN_RE, SUBDOMAIN_MSG);
}

/** Error message if `name` is not a valid RFC 1123 label, else undefined. */
export function validateDnsLabel(name: string): string | undefined {
  return validate(name, DNS_LABEL_MAX, LABEL_RE, LABEL_MSG);
}

function shortHash(input: string): string {
  return createHash("sha256").update(input).digest("hex").slice(0, HASH_LEN);
}

/** `label` cut so that `label-<hash>` fits in 63 characters; hashing `original` keeps distinct inputs apart. */
function truncateWithHash(label: string, original: string): string {
  const head = label.slice(0, DNS_LABEL_MAX - HASH_LEN - 1).replace(/-+$/, "");
  return head === "" ? shortHash(original) : `${head}-${shortHash(original)}`;
}

/**
 * A valid DNS label made from an arbitrary string (e.g. a kubeconfig cluster name):
 * lower-cased, accents stripped, every other run of invalid characters turned into one '-'.
 * Too long: truncated with a stable hash of the whole input, so long names stay distinct.
 */
export function toDnsLabel(input: string): string {
  const label = input
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (label === "") throw new Error(`cannot make a DNS label out of ${JSON.stringify(input)}: no letters or digits`);
  return label.length <= DNS_LABEL_MAX ? label : truncateWithHash(label, input);
}

/** Env var carrying an import's local proxy URL, e.g. `MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL`. */
export function envVarName(importName: string): string {
  return `MCSA_${importName.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_URL`;
}

/**
 * Name of the pod volume holding an import's Secret. `mcsa-<import>` when that is already a
 * valid label; otherwise (dots, too long) a sanitized prefix plus a hash of the import name,
 * because "a.b" and "a-b" would otherwise both become "mcsa-a-b".
 */
export function secretVolumeName(importName: string): string {
  const plain = `mcsa-${importName}`;
  if (validateDnsLabel(plain) === undefined) return plain;
  const sanitized = `mcsa-${importName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")}`;
  return truncateWithHash(sanitized, importName);
}
