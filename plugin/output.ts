// kubectl's printers: aligned tables (--no-headers, -o wide), -o yaml|json (one object, or a List
// of several), -o name, -o jsonpath=TEMPLATE and -o custom-columns=SPEC. Objects are printed as
// kubectl prints them: keys sorted, managedFields hidden, times in RFC 3339 without fractions.
import { dump } from "js-yaml";
import type { ServiceAccountImportStatus } from "../common/api.ts";
import { formatDuration } from "../common/duration.ts";
import { UserError } from "../common/errors.ts";

export const OUTPUT_FORMATS = ["custom-columns", "json", "jsonpath", "name", "wide", "yaml"] as const;
export type OutputKind = (typeof OUTPUT_FORMATS)[number] | "table";

export interface OutputFormat {
  kind: OutputKind;
  /** The template of jsonpath=… and custom-columns=…. */
  template?: string;
}

/** Parses -o the way kubectl reads it; `allowed` narrows the kinds a command prints. */
export function parseOutput(value: string | undefined, allowed: readonly OutputKind[] = OUTPUT_FORMATS): OutputFormat {
  if (value === undefined || value === "") return { kind: "table" };
  const match = /^(jsonpath|custom-columns)=(.*)$/s.exec(value);
  const kind = (match ? match[1] : value) as OutputKind;
  const kinds = allowed.filter((k) => k !== "table");
  if (kind === "table" || !kinds.includes(kind) || (!match && (kind === "jsonpath" || kind === "custom-columns"))) {
    const hint = kind === "jsonpath" || kind === "custom-columns" ? ` (write -o ${kind}=TEMPLATE)` : "";
    throw new UserError(`unable to match a printer suitable for the output format "${value}"${hint}, allowed formats are: ${kinds.join(",")} (flag -o/--output)`);
  }
  if (match) {
    if (!match[2]) throw new UserError(`-o ${kind}= needs a template, e.g. -o ${kind === "jsonpath" ? "jsonpath='{.items[*].metadata.name}'" : "custom-columns=NAME:.metadata.name"}`);
    if (kind === "jsonpath") parseTemplate(match[2]);
    else parseColumns(match[2]);
    return { kind, template: match[2] };
  }
  return { kind };
}

/** What an import's grant allows, as its status records it (describe, check). */
export function grantSummary(grant: ServiceAccountImportStatus["grant"]): string {
  if (!grant) return "<not recorded yet: the controller reads it from the remote grant when it mints a token>";
  const audiences = grant.audiences?.length ? grant.audiences.join(", ") : "the remote API server's own";
  return `service account ${grant.serviceAccount}, audiences ${audiences}, tokens of at most ${formatDuration(grant.maxExpirationSeconds)}`;
}

export function table(rows: string[][], noHeaders = false): string {
  const shown = noHeaders ? rows.slice(1) : rows;
  if (shown.length === 0) return "";
  const widths = shown[0]!.map((_, i) => Math.max(...shown.map((r) => (r[i] ?? "").length)));
  return shown.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join("").trimEnd()).join("\n");
}

const RFC3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** client-node's typed objects spell the CRD schema's x-kubernetes-* keys as x_kubernetes_*: the API knows only the former. */
function wireKey(key: string): string {
  return key.startsWith("x_kubernetes_") ? key.replaceAll("_", "-") : key;
}

/**
 * An object as kubectl prints it: plain JSON values (times as RFC 3339 strings, not client-node's
 * Dates with milliseconds), keys sorted, no undefined, and metadata.managedFields hidden.
 */
export function wireForm(value: unknown, top = true): unknown {
  if (value instanceof Date) return RFC3339(value);
  if (Array.isArray(value)) return value.map((v) => wireForm(v, false));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined || typeof v === "function") continue;
      out[wireKey(key)] = wireForm(v, false);
    }
    if (top && out.metadata && typeof out.metadata === "object") delete (out.metadata as Record<string, unknown>).managedFields;
    return out;
  }
  return value;
}

/** One object as itself, several (or a list request) as kubectl's `List`. */
export function asPrinted(objects: object[], single: boolean): unknown {
  const items = objects.map((o) => wireForm(o));
  return single && items.length === 1 ? items[0] : { apiVersion: "v1", items, kind: "List", metadata: { resourceVersion: "" } };
}

export function toYaml(value: unknown): string {
  return dump(value, { noRefs: true, lineWidth: -1 }).trimEnd();
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 4);
}

/** Manifests to apply elsewhere (GitOps): YAML documents, or a JSON List. */
export function manifests(objects: object[], format: "yaml" | "json"): string {
  if (format === "json") return toJson(asPrinted(objects, false));
  return objects.map((o) => toYaml(wireForm(o))).join("\n---\n");
}

/** What a printing command prints, for every -o kind but the table (which is the command's own). */
export function printed(objects: object[], format: OutputFormat, single: boolean, nameOf: (o: object) => string, noHeaders = false): string | undefined {
  switch (format.kind) {
    case "yaml":
      return toYaml(asPrinted(objects, single));
    case "json":
      return toJson(asPrinted(objects, single));
    case "name":
      return objects.map(nameOf).join("\n");
    case "jsonpath":
      return renderJsonpath(format.template!, asPrinted(objects, single));
    case "custom-columns":
      return customColumns(format.template!, objects.map((o) => wireForm(o)), noHeaders);
    default:
      return undefined;
  }
}

// ---- JSONPath, as kubectl's template language: {.a.b}, {.items[*].x}, {['k']}, {[0]}, {..x},
// {.c[?(@.type=="Ready")].status}, {range EXPR}…{end}, {"literal\n"}; missing keys print nothing.

type Step =
  | { field: string }
  | { index: number }
  | { slice: [number | undefined, number | undefined] }
  | { all: true }
  | { recurse: string }
  | { filter: { path: Step[]; op: "==" | "!=" | "exists"; value?: string | number | boolean } };

type Node = { text: string } | { path: Step[] } | { range: Step[]; body: Node[] };

function templateError(template: string, why: string): UserError {
  return new UserError(`error parsing jsonpath ${template}: ${why}`);
}

export function parsePath(expr: string, template = expr): Step[] {
  const steps: Step[] = [];
  let i = 0;
  const s = expr.trim();
  if (s.startsWith("$") || s.startsWith("@")) i = 1;
  const ident = () => {
    const m = /^[^.[\]\s]+/.exec(s.slice(i));
    if (!m) throw templateError(template, `expected a field name at "${s.slice(i)}"`);
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    if (s.startsWith("..", i)) {
      i += 2;
      steps.push({ recurse: ident() });
    } else if (s[i] === ".") {
      i++;
      if (i >= s.length) break;
      if (s[i] === "*") {
        i++;
        steps.push({ all: true });
      } else steps.push({ field: ident() });
    } else if (s[i] === "[") {
      const close = s.indexOf("]", s[i + 1] === "?" ? s.indexOf(")", i) : i);
      if (close < 0) throw templateError(template, "unclosed [");
      const inner = s.slice(i + 1, close).trim();
      i = close + 1;
      let m: RegExpExecArray | null;
      if (inner === "*") steps.push({ all: true });
      else if ((m = /^-?\d+$/.exec(inner))) steps.push({ index: Number(m[0]) });
      else if ((m = /^(-?\d*):(-?\d*)$/.exec(inner))) steps.push({ slice: [m[1] ? Number(m[1]) : undefined, m[2] ? Number(m[2]) : undefined] });
      else if ((m = /^'([^']*)'$|^"([^"]*)"$/.exec(inner))) steps.push({ field: m[1] ?? m[2]! });
      else if ((m = /^\?\(\s*(@[^=!<>\s]*)\s*(?:(==|!=)\s*(.+?))?\s*\)$/.exec(inner))) {
        const raw = m[3];
        let value: string | number | boolean | undefined;
        if (raw !== undefined) {
          const quoted = /^"(.*)"$|^'(.*)'$/.exec(raw);
          value = quoted ? (quoted[1] ?? quoted[2]!) : raw === "true" ? true : raw === "false" ? false : Number(raw);
          if (typeof value === "number" && Number.isNaN(value)) throw templateError(template, `unsupported filter value ${raw}`);
        }
        steps.push({ filter: { path: parsePath(m[1]!, template), op: (m[2] as "==" | "!=" | undefined) ?? "exists", value } });
      } else throw templateError(template, `unsupported [${inner}]`);
    } else if (steps.length === 0) {
      steps.push({ field: ident() });
    } else throw templateError(template, `unexpected "${s[i]}"`);
  }
  return steps;
}

function parseTemplate(template: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf("{", i);
    if (open < 0) {
      stack.at(-1)!.push({ text: template.slice(i) });
      break;
    }
    if (open > i) stack.at(-1)!.push({ text: template.slice(i, open) });
    const close = closingBrace(template, open);
    if (close < 0) throw templateError(template, "unclosed {");
    const action = template.slice(open + 1, close).trim();
    i = close + 1;
    if (action === "end") {
      if (stack.length === 1) throw templateError(template, "{end} without {range}");
      stack.pop();
    } else if (action.startsWith("range ")) {
      const node = { range: parsePath(action.slice(6), template), body: [] as Node[] };
      stack.at(-1)!.push(node);
      stack.push(node.body);
    } else if (/^".*"$/s.test(action)) {
      stack.at(-1)!.push({ text: JSON.parse(action) as string });
    } else {
      stack.at(-1)!.push({ path: parsePath(action, template) });
    }
  }
  if (stack.length > 1) throw templateError(template, "{range} without {end}");
  return root;
}

function closingBrace(s: string, open: number): number {
  let quote: string | undefined;
  for (let j = open + 1; j < s.length; j++) {
    const c = s[j];
    if (quote) {
      if (c === "\\") j++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "}") return j;
  }
  return -1;
}

function walk(values: unknown[], steps: Step[]): unknown[] {
  let current = values;
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of current) {
      if ("field" in step) {
        if (v && typeof v === "object" && !Array.isArray(v) && step.field in v) next.push((v as Record<string, unknown>)[step.field]);
      } else if ("index" in step) {
        if (Array.isArray(v)) {
          const at = step.index < 0 ? v.length + step.index : step.index;
          if (at >= 0 && at < v.length) next.push(v[at]);
        }
      } else if ("slice" in step) {
        if (Array.isArray(v)) next.push(...v.slice(step.slice[0], step.slice[1]));
      } else if ("all" in step) {
        if (Array.isArray(v)) next.push(...v);
        else if (v && typeof v === "object") next.push(...Object.values(v));
      } else if ("recurse" in step) {
        const visit = (x: unknown) => {
          if (Array.isArray(x)) x.forEach(visit);
          else if (x && typeof x === "object") {
            if (step.recurse in x) next.push((x as Record<string, unknown>)[step.recurse]);
            Object.values(x).forEach(visit);
          }
        };
        visit(v);
      } else {
        const items = Array.isArray(v) ? v : [v];
        for (const item of items) {
          const found = walk([item], step.filter.path);
          const keep =
            step.filter.op === "exists" ? found.length > 0 : found.some((f) => f === step.filter.value) === (step.filter.op === "==");
          if (keep) next.push(item);
        }
      }
    }
    current = next;
  }
  return current;
}

function show(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function render(nodes: Node[], data: unknown): string {
  let out = "";
  for (const node of nodes) {
    if ("text" in node) out += node.text;
    else if ("range" in node) {
      const found = walk([data], node.range);
      const items = found.length === 1 && Array.isArray(found[0]) ? (found[0] as unknown[]) : found;
      for (const item of items) out += render(node.body, item);
    } else out += walk([data], node.path).map(show).join(" ");
  }
  return out;
}

/** kubectl's -o jsonpath=TEMPLATE (missing keys print nothing, as --allow-missing-template-keys). */
export function renderJsonpath(template: string, data: unknown): string {
  const withBraces = template.includes("{") ? template : `{${template}}`;
  return render(parseTemplate(withBraces), data);
}

function parseColumns(spec: string): { header: string; path: Step[] }[] {
  return spec.split(",").map((column) => {
    const at = column.indexOf(":");
    if (at <= 0 || at === column.length - 1) {
      throw new UserError(`custom-columns format "${column}" is not HEADER:JSONPATH, e.g. -o custom-columns=NAME:.metadata.name,READY:.status.conditions[0].status`);
    }
    let expr = column.slice(at + 1).trim();
    if (expr.startsWith("{") && expr.endsWith("}")) expr = expr.slice(1, -1);
    if (!expr.startsWith(".") && !expr.startsWith("$") && !expr.startsWith("[")) expr = `.${expr}`;
    return { header: column.slice(0, at), path: parsePath(expr, column) };
  });
}

/** kubectl's -o custom-columns=HEADER:PATH,…: several values joined by commas, none as <none>. */
export function customColumns(spec: string, objects: unknown[], noHeaders = false): string {
  const columns = parseColumns(spec);
  const rows = objects.map((o) =>
    columns.map((c) => {
      const found = walk([o], c.path);
      return found.length === 0 || found.every((f) => f === undefined) ? "<none>" : found.map(show).join(",");
    }),
  );
  return table([columns.map((c) => c.header), ...rows], noHeaders);
}
