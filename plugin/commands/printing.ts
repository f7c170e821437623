// The flags of kubectl's printing commands, shared by every command that prints objects.
import type { Argv } from "yargs";

export function outputOptions<T>(y: Argv<T>) {
  return y
    .option("output", {
      alias: "o",
      type: "string",
      describe: "output format: wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC (-oyaml works too)",
    })
    .option("all-namespaces", { alias: "A", type: "boolean", default: false, describe: "list the imports of every namespace" })
    .option("selector", { alias: "l", type: "string", describe: "label selector, e.g. -l team=a,tier!=test" })
    .option("no-headers", { type: "boolean", default: false, describe: "print tables (and custom-columns) without their header" })
    .option("headers", { type: "boolean", hidden: true });
}

/** yargs reads --no-headers as "headers: false" (its boolean negation), kubectl users type --no-headers. */
export function noHeaders(args: { "no-headers"?: boolean; headers?: boolean }): boolean {
  return Boolean(args["no-headers"]) || args.headers === false;
}
