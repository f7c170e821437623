// kubectl mcsa import NAME --cluster C --remote-namespace NS --service-account SA: grants this
// cluster's importer identity tokens of that one service account in C (with --remote-context), or
// prints the grant for C's admin, then creates the ServiceAccountImport.
import { KubernetesObjectApi } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import {
  API_VERSION,
  DEFAULT_EXPIRATION_SECONDS,
  GROUP,
  KIND,
  MIN_EXPIRATION_SECONDS,
  PLURAL,
  SYSTEM_NAMESPACE,
  type ServiceAccountImport,
  VERSION,
} from "../../common/api.ts";
import { parseDuration, formatDuration } from "../../common/duration.ts";
import { importGrant } from "../../common/grant.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import { validateDnsLabel, validateDnsSubdomain } from "../../common/names.ts";
import { parseRegistration, registrationSecretName } from "../../common/registration.ts";
import { rollback } from "../apply.ts";
import { printManifests } from "../output.ts";
import { applyGrant } from "../remote-grants.ts";
import { type GlobalArgs, Session } from "../session.ts";
import { waitForReady } from "../wait.ts";

interface Args extends GlobalArgs {
  name: string;
  cluster: string;
  "remote-namespace": string;
  "service-account": string;
  "remote-context"?: string;
  ttl?: string;
  audience?: string[];
  wait: boolean;
  timeout?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .positional("name", { type: "string", demandOption: true, describe: "name of the ServiceAccountImport" })
    .option("cluster", { type: "string", demandOption: true, describe: "the remote cluster, as registered by bootstrap" })
    .option("remote-namespace", { type: "string", demandOption: true, describe: "namespace of the remote service account" })
    .option("service-account", { type: "string", demandOption: true, describe: "name of the remote service account" })
    .option("remote-context", { type: "string", describe: "context of the remote cluster, to grant access there (else the grant is printed)" })
    .option("ttl", { type: "string", describe: `token lifetime, e.g. 1h (default ${formatDuration(DEFAULT_EXPIRATION_SECONDS)}, at least 10m)` })
    .option("audience", { type: "string", array: true, describe: "token audience (repeatable; default: the remote API server's)" })
    .option("wait", { type: "boolean", default: false, describe: "wait until the import is Ready" })
    .option("timeout", { type: "string", describe: "how long --wait waits (default 60s)" })
    .check((argv) => {
      if (argv.timeout !== undefined && !argv.wait) throw new UserError("--timeout only makes sense with --wait");
      return true;
    })
    .example(
      "$0 import cluster2-default-pod-lister --cluster cluster2 --remote-namespace default --service-account pod-lister --remote-context cluster2 --wait",
      "import pod-lister of cluster2's default namespace",
    ) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  for (const [flag, value, check] of [
    ["name", args.name, validateDnsSubdomain],
    ["--cluster", args.cluster, validateDnsLabel],
    ["--remote-namespace", args["remote-namespace"], validateDnsLabel],
    ["--service-account", args["service-account"], validateDnsSubdomain],
  ] as const) {
    const problem = check(value);
    if (problem) throw new UserError(`invalid ${flag} "${value}": ${problem}`);
  }
  let expirationSeconds: number | undefined;
  if (args.ttl !== undefined) {
    expirationSeconds = parseDuration(args.ttl);
    if (expirationSeconds < MIN_EXPIRATION_SECONDS) throw new UserError(`--ttl must be at least ${formatDuration(MIN_EXPIRATION_SECONDS)} (the TokenRequest minimum), not ${args.ttl}`);
  }
  const timeoutSeconds = parseDuration(args.timeout ?? "60s");

  const local = Session.open(args);
  const namespace = local.namespace;
  // Running the same import again is fine (to add the grant with --remote-context, or print it
  // again); the same name for another service account is not.
  let existing: ServiceAccountImport | undefined;
  try {
    existing = await local.getImport(args.name, namespace);
  } catch (error) {
    if (!(error instanceof UserError) || !/not found in namespace/.test(error.message)) throw error;
  }
  if (existing) {
    const same =
      existing.spec.clusterName === args.cluster &&
      existing.spec.namespace === args["remote-namespace"] &&
      existing.spec.name === args["service-account"] &&
      (expirationSeconds === undefined || existing.spec.expirationSeconds === expirationSeconds);
    if (!same) {
      throw new UserError(
        `serviceaccountimport "${args.name}" already exists in namespace "${namespace}" (context "${local.contextName}") for ` +
          `${existing.spec.clusterName}/${existing.spec.namespace}/${existing.spec.name}: choose another name, or remove it first`,
      );
    }
  }

  let registrationSecret;
  try {
    registrationSecret = await local.core.readNamespacedSecret({ name: registrationSecretName(args.cluster), namespace: SYSTEM_NAMESPACE });
  } catch (error) {
    if (isNotFound(error)) {
      throw new UserError(
        `cluster "${args.cluster}" is not registered in context "${local.contextName}": run kubectl mcsa bootstrap --from <context of ${args.cluster}> --to ${local.contextName} --name ${args.cluster}`,
      );
    }
    throw local.fail(error, `reading the registration of cluster "${args.cluster}"`);
  }
  const { importer } = parseRegistration(registrationSecret);
  const grantInput = {
    importer,
    localNamespace: namespace,
    importName: args.name,
    remoteNamespace: args["remote-namespace"],
    serviceAccount: args["service-account"],
  };

  let remoteApi: KubernetesObjectApi | undefined;
  let created: Awaited<ReturnType<typeof applyGrant>> = [];
  if (args["remote-context"]) {
    const remote = Session.open(args, args["remote-context"]);
    if (remote.server === local.server) throw new UserError(`--remote-context "${args["remote-context"]}" points at the local cluster itself`);
    try {
      await remote.core.readNamespacedServiceAccount({ name: args["service-account"], namespace: args["remote-namespace"] });
    } catch (error) {
      if (isNotFound(error)) {
        throw new UserError(`service account "${args["service-account"]}" not found in namespace "${args["remote-namespace"]}" of context "${remote.contextName}"`);
      }
      throw remote.fail(error, `reading service account ${args["remote-namespace"]}/${args["service-account"]}`);
    }
    remoteApi = KubernetesObjectApi.makeApiClient(remote.kc);
    try {
      created = await applyGrant(remoteApi, (uid) => importGrant({ ...grantInput, anchorUid: uid }));
    } catch (error) {
      throw remote.fail(error, `granting ${importer.serviceAccount} tokens of ${args["remote-namespace"]}/${args["service-account"]}`);
    }
  }

  const sai: ServiceAccountImport = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: args.name, namespace },
    spec: {
      clusterName: args.cluster,
      namespace: args["remote-namespace"],
      name: args["service-account"],
      ...(expirationSeconds ? { expirationSeconds } : {}),
      ...(args.audience?.length ? { audiences: args.audience } : {}),
    },
  };
  if (existing) {
    console.log(`serviceaccountimport.${GROUP}/${args.name} unchanged in namespace "${namespace}"`);
  } else {
    try {
      await local.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: sai });
    } catch (error) {
      if (remoteApi) await rollback(remoteApi, created);
      if (isNotFound(error)) throw local.notFound(error, "", namespace);
      throw local.fail(error, `creating serviceaccountimport "${args.name}"`);
    }
    console.log(`serviceaccountimport.${GROUP}/${args.name} created in namespace "${namespace}"`);
  }
  if (!remoteApi) {
    const grant = importGrant(grantInput);
    console.error(
      `# no --remote-context: an admin of cluster "${args.cluster}" must apply this grant there (kubectl apply -f -), then the import becomes Ready.\n` +
        "# The Role and RoleBinding may then be made owned by the Secret (its anchor) so that deleting it removes them too.",
    );
    printManifests([grant.anchor, grant.role, grant.roleBinding], "yaml");
  }
  if (args.wait) await waitForReady(local, args.name, namespace, timeoutSeconds);
}
