// kubectl mcsa import NAME --cluster C --remote-namespace NS --service-account SA: grants this
// cluster's importer identity tokens of that one service account in C (with --remote-context), or
// prints the grant for C's admin, then creates the ServiceAccountImport.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { API_VERSION, DEFAULT_EXPIRATION_SECONDS, GROUP, KIND, MIN_EXPIRATION_SECONDS, type ServiceAccountImport } from "../../common/api.ts";
import { formatDuration } from "../../common/duration.ts";
import { UserError } from "../../common/errors.ts";
import { DEFAULT_GRANT_MAX_EXPIRATION_SECONDS, type GrantObjects, type ImportGrantInput, importGrant } from "../../common/grant.ts";
import { MAX_EXPIRATION_SECONDS } from "../../common/import-api.ts";
import { validateDnsLabel, validateDnsSubdomain } from "../../common/names.ts";
import { type CommandEnv, println } from "../env.ts";
import { dryRunFlag, durationFlag, manifestFormat } from "../flags.ts";
import { manifests } from "../output.ts";
import { type GlobalArgs, type Session, isImportNotFound } from "../session.ts";
import { waitForReady } from "../wait.ts";

interface Args extends GlobalArgs {
  name: string;
  cluster: string;
  "remote-namespace": string;
  "service-account": string;
  "remote-context"?: string;
  ttl?: string;
  audience?: string[];
  "max-expiration"?: string;
  wait: boolean;
  timeout?: string;
  "dry-run"?: string;
  output?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .positional("name", { type: "string", demandOption: true, describe: "name of the ServiceAccountImport" })
    .option("cluster", { type: "string", demandOption: true, describe: "the remote cluster, as registered by bootstrap (--name)" })
    .option("remote-namespace", { type: "string", demandOption: true, describe: "namespace of the remote service account" })
    .option("service-account", { type: "string", demandOption: true, describe: "name of the remote service account" })
    .option("remote-context", { type: "string", describe: "context of the remote cluster, to grant access there (else the grant is printed)" })
    .option("ttl", {
      type: "string",
      describe: `token lifetime, e.g. 1h (default ${formatDuration(DEFAULT_EXPIRATION_SECONDS)}, at least 10m, at most ${formatDuration(MAX_EXPIRATION_SECONDS)})`,
    })
    .option("audience", { type: "string", array: true, describe: "token audience (repeatable; default: the remote API server's); the grant allows exactly these" })
    .option("max-expiration", {
      type: "string",
      describe: `the grant's cap on token lifetimes, e.g. 12h (default: ${formatDuration(DEFAULT_GRANT_MAX_EXPIRATION_SECONDS)}, or --ttl if longer); the remote cluster refuses longer tokens`,
    })
    .option("wait", { type: "boolean", default: false, describe: "wait until the import is Ready" })
    .option("timeout", { type: "string", describe: "how long --wait waits (default 60s)" })
    .option("dry-run", { type: "string", describe: "client: print the objects of each cluster instead of creating them (none: act)" })
    .option("output", { alias: "o", type: "string", describe: "with --dry-run=client: yaml or json" })
    .epilog(
      examplesText([
        ["import pod-lister of cluster2's default namespace", "kubectl mcsa import cluster2-default-pod-lister --cluster cluster2 --remote-namespace default --service-account pod-lister --remote-context cluster2 --wait"],
        ["the import and its remote grant as YAML, for GitOps", "kubectl mcsa import cluster2-default-pod-lister --cluster cluster2 --remote-namespace default --service-account pod-lister --dry-run=client -o yaml"],
      ]),
    ) as Argv<Args>;
}

export interface ImportOptions {
  name: string;
  cluster: string;
  remoteNamespace: string;
  serviceAccount: string;
  remoteContext?: string;
  expirationSeconds?: number;
  audiences?: string[];
  /** The grant's cap on token lifetimes. */
  maxExpirationSeconds: number;
  wait: boolean;
  timeoutSeconds: number;
  dryRun: "none" | "client";
  output?: "yaml" | "json";
}

/** Validate: the flags alone, before any cluster is asked. */
export function importOptions(args: Args, env: Pick<CommandEnv, "err">): ImportOptions {
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
    expirationSeconds = durationFlag(args.ttl, "--ttl");
    if (expirationSeconds < MIN_EXPIRATION_SECONDS) throw new UserError(`--ttl must be at least ${formatDuration(MIN_EXPIRATION_SECONDS)} (the TokenRequest minimum), not ${args.ttl}`);
    if (expirationSeconds > MAX_EXPIRATION_SECONDS) throw new UserError(`--ttl must be at most ${formatDuration(MAX_EXPIRATION_SECONDS)} (7 days; imports are short-lived), not ${args.ttl}`);
  }
  const badAudience = args.audience?.find((a) => a.trim() === "" || a.includes(","));
  if (badAudience !== undefined) throw new UserError(`invalid --audience ${JSON.stringify(badAudience)}: an audience is not empty and has no comma (repeat --audience for several)`);
  let maxExpirationSeconds = Math.max(DEFAULT_GRANT_MAX_EXPIRATION_SECONDS, expirationSeconds ?? 0);
  if (args["max-expiration"] !== undefined) {
    maxExpirationSeconds = durationFlag(args["max-expiration"], "--max-expiration");
    if (maxExpirationSeconds < MIN_EXPIRATION_SECONDS || maxExpirationSeconds > MAX_EXPIRATION_SECONDS) {
      throw new UserError(`--max-expiration must be from ${formatDuration(MIN_EXPIRATION_SECONDS)} to ${formatDuration(MAX_EXPIRATION_SECONDS)}, not ${args["max-expiration"]}`);
    }
    const asked = expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
    if (asked > maxExpirationSeconds) {
      throw new UserError(`--max-expiration ${args["max-expiration"]} is shorter than the token lifetime the import asks (${formatDuration(asked)}): raise it, or lower --ttl`);
    }
  }
  if (args.timeout !== undefined && !args.wait) throw new UserError("--timeout only makes sense with --wait");
  const dryRun = dryRunFlag(args["dry-run"], env.err);
  const output = manifestFormat(args.output, dryRun);
  if (dryRun === "client" && args.wait) throw new UserError("--wait cannot go with --dry-run=client: nothing is created to wait for");
  return {
    name: args.name,
    cluster: args.cluster,
    remoteNamespace: args["remote-namespace"],
    serviceAccount: args["service-account"],
    remoteContext: args["remote-context"],
    expirationSeconds,
    audiences: args.audience?.length ? args.audience : undefined,
    maxExpirationSeconds,
    wait: args.wait,
    timeoutSeconds: durationFlag(args.timeout ?? "60s", "--timeout"),
    dryRun,
    output,
  };
}

export function importObject(o: ImportOptions, namespace: string): ServiceAccountImport {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: o.name, namespace },
    spec: {
      clusterName: o.cluster,
      namespace: o.remoteNamespace,
      name: o.serviceAccount,
      ...(o.expirationSeconds ? { expirationSeconds: o.expirationSeconds } : {}),
      ...(o.audiences ? { audiences: o.audiences } : {}),
    },
  };
}

const grantList = (grant: GrantObjects) => [grant.anchor, grant.role, grant.roleBinding];

/**
 * The objects of each cluster, for --dry-run=client: YAML documents under a comment naming the
 * cluster each goes to, or one JSON List per cluster. Only manifests: status lines go to stderr.
 */
export function dryRunManifests(sai: ServiceAccountImport, grant: GrantObjects, local: string, remoteCluster: string, format: "yaml" | "json"): string {
  if (format === "json") return [manifests([sai], "json"), manifests(grantList(grant), "json")].join("\n");
  return [
    `# cluster of context "${local}": kubectl apply --context ${local} -f -`,
    manifests([sai], "yaml"),
    "---",
    `# cluster "${remoteCluster}" (the remote): its admin applies the grant there, kubectl apply --context <${remoteCluster}> -f -`,
    manifests(grantList(grant), "yaml"),
  ].join("\n");
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const o = importOptions(args, env);
  // --cluster is the remote cluster's registered name here, not a kubeconfig cluster.
  const local = env.open({ ...args, cluster: undefined });
  const namespace = local.namespace;
  // Running the same import again is fine (to add the grant with --remote-context, or print it
  // again); the same name for another service account is not.
  let existing: ServiceAccountImport | undefined;
  try {
    existing = await local.getImport(o.name, namespace);
  } catch (error) {
    if (!isImportNotFound(error)) throw error;
  }
  if (existing) {
    const same =
      existing.spec.clusterName === o.cluster &&
      existing.spec.namespace === o.remoteNamespace &&
      existing.spec.name === o.serviceAccount &&
      (o.expirationSeconds === undefined || existing.spec.expirationSeconds === o.expirationSeconds);
    if (!same) {
      throw new UserError(
        `serviceaccountimport "${o.name}" already exists in namespace "${namespace}" (context "${local.contextName}") for ` +
          `${existing.spec.clusterName}/${existing.spec.namespace}/${existing.spec.name}: choose another name, or remove it first`,
      );
    }
  }
  const registration = await local.readRegistration(o.cluster);
  if (!registration) {
    throw new UserError(
      `cluster "${o.cluster}" is not registered in context "${local.contextName}": run kubectl mcsa bootstrap --from <context of ${o.cluster}> --to ${local.contextName} --name ${o.cluster}`,
    );
  }
  const grantInput: ImportGrantInput = {
    importer: registration.importer,
    localNamespace: namespace,
    importName: o.name,
    remoteNamespace: o.remoteNamespace,
    serviceAccount: o.serviceAccount,
    audiences: o.audiences,
    maxExpirationSeconds: o.maxExpirationSeconds,
  };
  const sai = importObject(o, namespace);
  if (o.dryRun === "client") {
    println(env.out, dryRunManifests(sai, importGrant(grantInput), local.contextName, o.cluster, o.output ?? "yaml"));
    return;
  }

  let remote: Session | undefined;
  let created: Awaited<ReturnType<Session["applyGrant"]>> = [];
  if (o.remoteContext) {
    remote = env.open(args, o.remoteContext);
    if (remote.server === local.server) throw new UserError(`--remote-context "${o.remoteContext}" points at the local cluster itself`);
    if (!(await remote.readServiceAccount(o.remoteNamespace, o.serviceAccount))) {
      throw new UserError(`service account "${o.serviceAccount}" not found in namespace "${o.remoteNamespace}" of context "${remote.contextName}"`);
    }
    try {
      created = await remote.applyGrant((uid) => importGrant({ ...grantInput, anchorUid: uid }));
    } catch (error) {
      remote.fail(error, `granting ${registration.importer.serviceAccount} tokens of ${o.remoteNamespace}/${o.serviceAccount}`);
    }
  }
  // With the grant printed on stdout (to pipe to kubectl apply), status lines go to stderr.
  const status = remote ? env.out : env.err;
  if (existing) {
    println(status, `serviceaccountimport.${GROUP}/${o.name} unchanged in namespace "${namespace}"`);
  } else {
    try {
      await local.createImport(sai);
    } catch (error) {
      if (remote) await remote.rollback(created);
      throw error;
    }
    println(status, `serviceaccountimport.${GROUP}/${o.name} created in namespace "${namespace}"`);
  }
  if (!remote) {
    println(
      env.err,
      `# no --remote-context: an admin of cluster "${o.cluster}" must apply this grant there (kubectl apply -f -), then the import becomes Ready.\n` +
        "# The Role and RoleBinding may then be made owned by the Secret (its anchor) so that deleting it removes them too.",
    );
    println(env.out, manifests(grantList(importGrant(grantInput)), "yaml"));
  }
  if (o.wait) await waitForReady(env, local, o.name, namespace, o.timeoutSeconds, status);
}
