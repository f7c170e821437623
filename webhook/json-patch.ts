// A minimal JSON Patch (RFC 6902) generator for the webhook: enough to turn the pod the API server
// sent into the pod we want. Objects are diffed key by key (so an added annotation is one small
// op); arrays and scalars are replaced whole, which is always correct because the API server
// applies the patch to exactly the object it sent us.

export type JsonPatchOp =
  | { op: "add"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "replace"; path: string; value: unknown };

/** One JSON Pointer (RFC 6901) reference token: `~` → `~0`, then `/` → `~1` (in that order). */
export function escapePointerToken(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Keys whose value would survive JSON serialization (an `undefined` property is an absent one). */
function presentKeys(obj: Record<string, unknown>): string[] {
  return Object.keys(obj).filter((k) => obj[k] !== undefined);
}

/** Structural equality of JSON values; key order does not matter, `undefined` properties are absent. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = presentKeys(a);
  if (keys.length !== presentKeys(b).length) return false;
  return keys.every((k) => b[k] !== undefined && jsonEqual(a[k], b[k]));
}

/** Drops `undefined` properties (JSON has none), so patch values are exactly what gets serialized. */
function toJson(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

/** Operations turning `from` into `to`; empty when they are equal. Both must be JSON objects at the root. */
export function diff(from: unknown, to: unknown, path = ""): JsonPatchOp[] {
  if (jsonEqual(from, to)) return [];
  if (!isPlainObject(from) || !isPlainObject(to)) {
    if (path === "") throw new Error("diff: both documents must be JSON objects");
    return [{ op: "replace", path, value: toJson(to) }];
  }
  const ops: JsonPatchOp[] = [];
  for (const key of presentKeys(from)) {
    const at = `${path}/${escapePointerToken(key)}`;
    if (to[key] === undefined) ops.push({ op: "remove", path: at });
    else ops.push(...diff(from[key], to[key], at));
  }
  for (const key of presentKeys(to)) {
    if (from[key] === undefined) ops.push({ op: "add", path: `${path}/${escapePointerToken(key)}`, value: toJson(to[key]) });
  }
  return ops;
}
