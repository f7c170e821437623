// kubectl mcsa get|list [NAME] [-o wide|yaml|json|name] [-A]
import type { Argv } from "yargs";
import { GROUP, PLURAL, type ServiceAccountImport, readyCondition } from "../../common/api.ts";
import { formatAge } from "../../common/duration.ts";
import { UserError } from "../../common/kube.ts";
import { checkFormat, printObjects, table } from "../output.ts";
import { type GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  name?: string;
  output?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .positional("name", { type: "string", describe: "an import's name" })
    .option("output", { alias: "o", type: "string", describe: "output format: wide, yaml, json or name" })
    .option("all-namespaces", { alias: "A", type: "boolean", default: false, describe: "list imports in all namespaces" }) as Argv<Args>;
}

export function importRow(sai: ServiceAccountImport, wide: boolean, withNamespace: boolean, now: Date): string[] {
  const ready = readyCondition(sai);
  const expires = sai.status?.expirationTimestamp ? formatAge(now, new Date(sai.status.expirationTimestamp)) : "<none>";
  const age = sai.metadata.creationTimestamp ? formatAge(new Date(sai.metadata.creationTimestamp), now) : "<unknown>";
  return [
    ...(withNamespace ? [sai.metadata.namespace ?? ""] : []),
    sai.metadata.name ?? "",
    sai.spec.clusterName,
    sai.spec.namespace,
    sai.spec.name,
    ready?.status ?? "Unknown",
    ...(wide ? [ready?.reason ?? "", sai.status?.secrets?.[0]?.name ?? "<none>"] : []),
    expires,
    age,
  ];
}

export function importTable(imports: ServiceAccountImport[], wide: boolean, withNamespace: boolean, now = new Date()): string {
  const header = [
    ...(withNamespace ? ["NAMESPACE"] : []),
    "NAME",
    "CLUSTER",
    "REMOTE-NAMESPACE",
    "SERVICE-ACCOUNT",
    "READY",
    ...(wide ? ["REASON", "SECRET"] : []),
    "EXPIRES-IN",
    "AGE",
  ];
  return table([header, ...imports.map((sai) => importRow(sai, wide, withNamespace, now))]);
}

export async function handler(args: Args): Promise<void> {
  const format = checkFormat(args.output);
  const all = Boolean(args["all-namespaces"]);
  if (args.name && all) throw new UserError("a resource cannot be retrieved by name across all namespaces: drop -A or the name");
  const session = Session.open(args);
  const imports = args.name ? [await session.getImport(args.name)] : await session.listImports(all);
  if (format === "yaml" || format === "json") return printObjects(imports, format, Boolean(args.name));
  if (format === "name") {
    for (const sai of imports) console.log(`${PLURAL.replace(/s$/, "")}.${GROUP}/${sai.metadata.name}`);
    return;
  }
  if (imports.length === 0) {
    console.error(all ? "No resources found" : `No resources found in ${session.namespace} namespace.`);
    return;
  }
  console.log(importTable(imports, format === "wide", all));
}
