// kubectl mcsa clusters: the remote clusters registered in this context (bootstrap), the identity
// each imports as, and what depends on each: imports and the pods that use them.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { GROUP } from "../../common/api.ts";
import type { Registration } from "../../common/registration.ts";
import { type ClusterDependents, dependentsOf } from "../dependents.ts";
import { type CommandEnv, println } from "../env.ts";
import { parseOutput, printed, table } from "../output.ts";
import type { GlobalArgs } from "../session.ts";
import { noHeaders } from "./printing.ts";

interface Args extends GlobalArgs {
  output?: string;
  "no-headers"?: boolean;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("output", { alias: "o", type: "string", describe: "output format: wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC" })
    .option("no-headers", { type: "boolean", default: false, describe: "print the table without its header" })
    .option("headers", { type: "boolean", hidden: true })
    .epilog(
      examplesText([
        ["what cluster1 imports from, and what would break without each", "kubectl mcsa clusters --context cluster1"],
      ]),
    ) as Argv<Args>;
}

/** A registration as printed by -o yaml|json: never its token. */
export function clusterObject(r: Registration, d: ClusterDependents) {
  return {
    name: r.clusterName,
    server: r.server,
    identity: `${r.importer.namespace}/${r.importer.serviceAccount}`,
    sharedWith: d.sharing,
    imports: d.imports,
    pods: d.pods,
  };
}

export function clustersTable(rows: ReturnType<typeof clusterObject>[], wide: boolean, noHeaders: boolean): string {
  const header = ["NAME", "SERVER", "IDENTITY", "IMPORTS", "PODS", ...(wide ? ["SHARED-WITH", "IMPORT-NAMES"] : [])];
  return table(
    [
      header,
      ...rows.map((c) => [
        c.name,
        c.server,
        c.identity,
        String(c.imports.length),
        String(c.pods.length),
        ...(wide ? [c.sharedWith.join(",") || "<none>", c.imports.join(",") || "<none>"] : []),
      ]),
    ],
    noHeaders,
  );
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const format = parseOutput(args.output);
  const session = env.open(args);
  const registrations = await session.listRegistrations();
  const imports = registrations.length ? await session.listImports(true).catch(() => []) : [];
  const pods = imports.length ? await session.listPods().catch(() => []) : [];
  const rows = registrations
    .map((r) => clusterObject(r, dependentsOf(r.clusterName, { server: r.server, serviceAccount: r.importer.serviceAccount }, registrations, imports, pods)))
    .sort((a, b) => a.name.localeCompare(b.name));
  const text = printed(rows, format, false, (c) => `cluster.${GROUP}/${(c as { name: string }).name}`, noHeaders(args));
  if (text !== undefined) {
    if (format.kind === "jsonpath") env.out.write(text);
    else if (text) println(env.out, text);
    return;
  }
  if (rows.length === 0) {
    println(env.err, `No clusters registered in context "${session.contextName}": kubectl mcsa bootstrap --from <remote> --to ${session.contextName} registers one`);
    return;
  }
  println(env.out, clustersTable(rows, format.kind === "wide", noHeaders(args)));
}
