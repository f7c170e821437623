// kubectl mcsa export SA: the original's export, with an explicit lifetime: a Secret manifest in
// the import Secret format for a service account of the current context, to apply elsewhere.
import { dumpYaml } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { DEFAULT_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS } from "../../common/api.ts";
import { formatDuration, parseDuration } from "../../common/duration.ts";
import { buildImportSecretData } from "../../common/import-secret.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import { validateDnsSubdomain } from "../../common/names.ts";
import { clusterCA } from "./bootstrap.ts";
import { type GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  "service-account": string;
  ttl: string;
  name?: string;
  audience?: string[];
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .positional("service-account", { type: "string", demandOption: true })
    .option("ttl", { type: "string", default: formatDuration(DEFAULT_EXPIRATION_SECONDS), describe: "token lifetime (at least 10m)" })
    .option("name", { type: "string", describe: "name of the Secret (default: <cluster>-<namespace>-<service-account>)" })
    .option("audience", { type: "string", array: true, describe: "token audience (repeatable)" }) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  const invalid = validateDnsSubdomain(args["service-account"]);
  if (invalid) throw new UserError(`invalid service account name "${args["service-account"]}": ${invalid}`);
  const ttl = parseDuration(args.ttl);
  if (ttl < MIN_EXPIRATION_SECONDS) throw new UserError(`--ttl must be at least ${formatDuration(MIN_EXPIRATION_SECONDS)}, not ${args.ttl}`);
  const session = Session.open(args);
  const cluster = session.kc.getCurrentCluster()!;
  const name = args.name ?? `${cluster.name}-${session.namespace}-${args["service-account"]}`.toLowerCase().replace(/[^a-z0-9.-]+/g, "-");
  let result;
  try {
    result = await session.core.createNamespacedServiceAccountToken({
      name: args["service-account"],
      namespace: session.namespace,
      body: { spec: { audiences: args.audience ?? [], expirationSeconds: ttl } },
    });
  } catch (error) {
    if (isNotFound(error)) throw new UserError(`service account "${args["service-account"]}" not found in namespace "${session.namespace}" (context "${session.contextName}")`);
    throw session.fail(error, `creating a token for ${session.namespace}/${args["service-account"]}`);
  }
  const data = buildImportSecretData({
    importName: name,
    token: result.status?.token ?? "",
    caPem: clusterCA(session.kc, session.contextName),
    namespace: session.namespace,
    server: cluster.server,
  });
  console.log(
    dumpYaml({
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: { name, annotations: { "multicluster.admiralty.io/expires": result.status!.expirationTimestamp } },
      data,
    }).trimEnd(),
  );
}
