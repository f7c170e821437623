// kubectl mcsa export SA: the original's export, with an explicit lifetime: a Secret manifest in
// the import Secret format for a service account of the current context, to apply elsewhere.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { DEFAULT_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS } from "../../common/api.ts";
import { formatDuration } from "../../common/duration.ts";
import { UserError } from "../../common/errors.ts";
import { buildImportSecretData } from "../../common/import-secret.ts";
import { isNotFound } from "../../common/kube.ts";
import { validateDnsSubdomain } from "../../common/names.ts";
import { type CommandEnv, println } from "../env.ts";
import { durationFlag } from "../flags.ts";
import { toJson, toYaml, wireForm } from "../output.ts";
import type { GlobalArgs } from "../session.ts";
import { requireCA } from "./bootstrap.ts";

interface Args extends GlobalArgs {
  "service-account": string;
  ttl: string;
  name?: string;
  audience?: string[];
  output?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .positional("service-account", { type: "string", demandOption: true, describe: "the service account of this cluster (current context and namespace)" })
    .option("ttl", { type: "string", default: formatDuration(DEFAULT_EXPIRATION_SECONDS), describe: "token lifetime (at least 10m)" })
    .option("name", { type: "string", describe: "name of the Secret (default: <cluster>-<namespace>-<service-account>)" })
    .option("audience", { type: "string", array: true, describe: "token audience (repeatable)" })
    .option("output", { alias: "o", type: "string", default: "yaml", describe: "yaml or json" })
    .epilog(
      examplesText([
        ["a Secret with a 1h token of pod-lister, to apply in another cluster", "kubectl mcsa export pod-lister -n default --ttl 1h > pod-lister.secret.yaml"],
      ]),
    ) as Argv<Args>;
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const invalid = validateDnsSubdomain(args["service-account"]);
  if (invalid) throw new UserError(`invalid service account name "${args["service-account"]}": ${invalid}`);
  const ttl = durationFlag(args.ttl, "--ttl");
  if (ttl < MIN_EXPIRATION_SECONDS) throw new UserError(`--ttl must be at least ${formatDuration(MIN_EXPIRATION_SECONDS)}, not ${args.ttl}`);
  const format = (args.output ?? "yaml").replace(/^=/, "");
  if (format !== "yaml" && format !== "json") throw new UserError(`invalid value "${args.output}" for -o/--output: allowed values are yaml, json`);
  const session = env.open(args);
  const cluster = session.cluster();
  const caPem = requireCA(cluster, session.contextName);
  const name = args.name ?? `${cluster.name}-${session.namespace}-${args["service-account"]}`.toLowerCase().replace(/[^a-z0-9.-]+/g, "-");
  let result;
  try {
    result = await session.createToken(session.namespace, args["service-account"], args.audience ?? [], ttl);
  } catch (error) {
    if (isNotFound(error)) throw new UserError(`service account "${args["service-account"]}" not found in namespace "${session.namespace}" (context "${session.contextName}")`);
    return session.fail(error, `creating a token for ${session.namespace}/${args["service-account"]}`);
  }
  const data = buildImportSecretData({ importName: name, token: result.token, caPem, namespace: session.namespace, server: cluster.server });
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: { name, annotations: { "multicluster.admiralty.io/expires": result.expirationTimestamp } },
    data,
  };
  println(env.out, format === "json" ? toJson(wireForm(secret)) : toYaml(wireForm(secret)));
}
