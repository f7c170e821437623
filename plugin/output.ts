// kubectl-style output: aligned tables, -o yaml|json|name|wide.
import { dumpYaml, loadYaml } from "@kubernetes/client-node";
import { UserError } from "../common/kube.ts";

export const OUTPUT_FORMATS = ["wide", "yaml", "json", "name"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join("").trimEnd()).join("\n");
}

/** An object as the API server speaks it (client-node's typed models use other field names). */
export function wireForm(object: object): object {
  return loadYaml<object>(dumpYaml(object));
}

export function printObjects(objects: object[], format: "yaml" | "json", single: boolean): void {
  const items = objects.map(wireForm);
  const value = single && items.length === 1 ? items[0] : { apiVersion: "v1", kind: "List", items, metadata: { resourceVersion: "" } };
  if (format === "json") console.log(JSON.stringify(value, null, 4));
  else console.log(dumpYaml(value).trimEnd());
}

/** Manifests to apply elsewhere (GitOps): YAML documents, or a JSON List. */
export function printManifests(objects: object[], format: "yaml" | "json"): void {
  if (format === "json") return printObjects(objects, "json", false);
  console.log(objects.map((o) => dumpYaml(o).trimEnd()).join("\n---\n"));
}

export function checkFormat(format: string | undefined): OutputFormat | undefined {
  if (format === undefined) return undefined;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UserError(`unable to match a printer suitable for the output format "${format}", allowed formats are: ${OUTPUT_FORMATS.join(",")}`);
  }
  return format as OutputFormat;
}
