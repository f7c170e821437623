// kubectl mcsa get|list [NAME] [-o wide|yaml|json|name|jsonpath=…|custom-columns=…] [-A] [-l SELECTOR] [--no-headers]
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { GROUP, PLURAL, type ServiceAccountImport, readyCondition } from "../../common/api.ts";
import { formatAge } from "../../common/duration.ts";
import { UserError } from "../../common/errors.ts";
import { type CommandEnv, println } from "../env.ts";
import { type OutputFormat, parseOutput, printed, table } from "../output.ts";
import type { GlobalArgs } from "../session.ts";
import { noHeaders, outputOptions } from "./printing.ts";

interface Args extends GlobalArgs {
  name?: string;
  output?: string;
  selector?: string;
  "no-headers"?: boolean;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return outputOptions(y.positional("name", { type: "string", describe: "an import's name (default: every import of the namespace)" }))
    .epilog(
      examplesText([
        ["every import of every namespace", "kubectl mcsa get -A"],
        ["one import as YAML", "kubectl mcsa get cluster2-default-pod-lister -o yaml"],
        ["the names only", "kubectl mcsa get -o jsonpath='{.items[*].metadata.name}'"],
      ]),
    ) as Argv<Args>;
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

export function importTable(imports: ServiceAccountImport[], wide: boolean, withNamespace: boolean, now = new Date(), noHeaders = false): string {
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
  return table([header, ...imports.map((sai) => importRow(sai, wide, withNamespace, now))], noHeaders);
}

export const importName = (sai: object) => `${PLURAL.replace(/s$/, "")}.${GROUP}/${(sai as ServiceAccountImport).metadata.name}`;

export interface GetOptions {
  name?: string;
  all: boolean;
  selector?: string;
  format: OutputFormat;
  noHeaders: boolean;
}

/** Validate: the flags alone, before any cluster is asked. */
export function getOptions(args: Args): GetOptions {
  const format = parseOutput(args.output);
  const all = Boolean(args["all-namespaces"]);
  if (args.name && all) throw new UserError("a resource cannot be retrieved by name across all namespaces: drop -A or the name");
  if (args.name && args.selector) throw new UserError("a name and -l/--selector cannot go together: drop one");
  return { name: args.name, all, selector: args.selector, format, noHeaders: noHeaders(args) };
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const options = getOptions(args);
  const session = env.open(args);
  const imports = options.name ? [await session.getImport(options.name)] : await session.listImports(options.all, options.selector);
  const text = printed(imports, options.format, Boolean(options.name), importName, options.noHeaders);
  if (text !== undefined) {
    // jsonpath prints exactly its template, as kubectl does (no newline added).
    if (options.format.kind === "jsonpath") env.out.write(text);
    else if (text !== "") println(env.out, text);
    return;
  }
  if (imports.length === 0) {
    println(env.err, options.all ? "No resources found" : `No resources found in ${session.namespace} namespace.`);
    return;
  }
  println(env.out, importTable(imports, options.format.kind === "wide", options.all, env.now(), options.noHeaders));
}
