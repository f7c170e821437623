// kubectl mcsa bootstrap --from REMOTE --to LOCAL: gives LOCAL's controller an identity in REMOTE
// that may only renew its own token, makes REMOTE enforce every grant (its grant policy), and
// registers REMOTE in LOCAL under a name. Re-running it migrates grants made before grants were
// enforced: it records what each allows on its anchor before the policy is installed.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import type { ServiceAccountImport } from "../../common/api.ts";
import { UserError } from "../../common/errors.ts";
import {
  DEFAULT_GRANT_MAX_EXPIRATION_SECONDS,
  GRANT_POLICY_NAME,
  IMPORTER_CLUSTER_LABEL,
  type Importer,
  grantPolicy,
  identityGrant,
  importerFor,
} from "../../common/grant.ts";
import { describeApiError } from "../../common/kube.ts";
import { toDnsLabel, validateDnsLabel } from "../../common/names.ts";
import { registrationSecret } from "../../common/registration.ts";
import { RemoteFailure } from "../../common/remote.ts";
import { type CommandEnv, println } from "../env.ts";
import { dryRunFlag, manifestFormat } from "../flags.ts";
import { manifests } from "../output.ts";
import { defaultAudiencesOf, installGrantPolicy, recordGrants, systemNamespaceObject } from "../remote-grants.ts";
import type { ClusterInfo, GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  from: string;
  to: string;
  name?: string;
  server?: string;
  "local-name"?: string;
  "dry-run"?: string;
  output?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("from", { type: "string", demandOption: true, describe: "context of the cluster to import from (the remote)" })
    .option("to", { type: "string", demandOption: true, describe: "context of the cluster that imports (where the controller runs)" })
    .option("name", { type: "string", describe: "name of the remote cluster in imports' spec.clusterName (default: from its kubeconfig cluster name)" })
    .option("local-name", {
      type: "string",
      describe: "name of the importing cluster in the remote one (default: from its kubeconfig cluster name); needed when the uid of its kube-system namespace cannot be read",
    })
    .option("server", { type: "string", describe: "the remote API server's URL as the importing cluster reaches it (default: the --from context's)" })
    .option("dry-run", { type: "string", describe: "client: print the objects of each cluster instead of creating them (none: act)" })
    .option("output", { alias: "o", type: "string", describe: "with --dry-run=client: yaml or json" })
    .epilog(
      examplesText([
        ["cluster1 may then import service accounts of cluster2", "kubectl mcsa bootstrap --from cluster2 --to cluster1"],
        ["the objects it would create in each cluster", "kubectl mcsa bootstrap --from cluster2 --to cluster1 --dry-run=client -o yaml"],
        ["after an upgrade: record what existing grants allow, then enforce them", "kubectl mcsa bootstrap --from cluster2 --to cluster1"],
      ]),
    ) as Argv<Args>;
}

export function requireCA(cluster: ClusterInfo, context: string): string {
  if (cluster.caPem) return cluster.caPem;
  throw new UserError(`context "${context}" has no certificate authority for ${cluster.server}: kubectl mcsa needs one to verify the remote cluster`);
}

export interface BootstrapOptions {
  from: string;
  to: string;
  name?: string;
  localName?: string;
  server?: string;
  dryRun: "none" | "client";
  output?: "yaml" | "json";
}

/** Validate: the flags alone, before any cluster is asked. */
export function bootstrapOptions(args: Args, env: Pick<CommandEnv, "err">): BootstrapOptions {
  if (args.from === args.to) throw new UserError("--from and --to name the same context: bootstrap connects two different clusters");
  for (const [flag, value] of [["--name", args.name], ["--local-name", args["local-name"]]] as const) {
    const invalid = value === undefined ? undefined : validateDnsLabel(value);
    if (invalid) throw new UserError(`invalid ${flag} "${value}": ${invalid}`);
  }
  if (args.server !== undefined && !/^https:\/\/[^/\s]+/.test(args.server)) throw new UserError(`--server must be an https URL, not "${args.server}"`);
  const dryRun = dryRunFlag(args["dry-run"], env.err);
  return { from: args.from, to: args.to, name: args.name, localName: args["local-name"], server: args.server, dryRun, output: manifestFormat(args.output, dryRun) };
}

/**
 * What bootstrap creates in each cluster; the registration's token is minted only when it runs,
 * and so are the policy's default audiences (the `aud` of a token the remote issues by default).
 */
export function bootstrapObjects(importer: Importer, localUid: string | undefined, registration: Parameters<typeof registrationSecret>[0], defaultAudiences: string[] = []) {
  const grant = identityGrant(importer, undefined, localUid);
  const policy = grantPolicy(defaultAudiences);
  const secret = registrationSecret(registration);
  delete secret.data!.token;
  return {
    remote: [systemNamespaceObject(), grant.serviceAccount, grant.anchor, grant.role, grant.roleBinding, policy.policy, policy.binding] as KubernetesObject[],
    local: [systemNamespaceObject(), secret] as KubernetesObject[],
  };
}

/**
 * The identity of the importing cluster in the remote one. Two clusters must never share one
 * (each could use the other's grants), so it is either told apart by the uid of the cluster's
 * kube-system namespace, or named by the user: no uid and no --local-name is refused.
 */
export function localIdentity(o: Pick<BootstrapOptions, "to" | "localName">, kubeconfigName: string, localUid: string | undefined): Importer {
  if (localUid === undefined && o.localName === undefined) {
    throw new UserError(
      `cannot establish the identity of context "${o.to}": the uid of its kube-system namespace cannot be read (it tells clusters apart): ` +
        `pass --local-name <a name no other cluster uses> to name it`,
    );
  }
  try {
    return importerFor(o.localName ?? kubeconfigName);
  } catch {
    throw new UserError(`cannot derive a name for context "${o.to}" from its kubeconfig cluster name ${JSON.stringify(kubeconfigName)}: pass --local-name <name>`);
  }
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const o = bootstrapOptions(args, env);
  const remote = env.open(args, o.from);
  const local = env.open(args, o.to);
  const remoteCluster = remote.cluster();
  const localCluster = local.cluster();
  if (remoteCluster.server === localCluster.server) throw new UserError(`contexts "${o.from}" and "${o.to}" point at the same API server ${remoteCluster.server}`);
  const name = o.name ?? toDnsLabel(remoteCluster.name);
  const invalid = validateDnsLabel(name);
  if (invalid) throw new UserError(`invalid --name "${name}" (from the kubeconfig cluster name; pass --name): ${invalid}`);
  const server = o.server ?? remoteCluster.server;
  if (!/^https:\/\//.test(server)) throw new UserError(`the remote server must be an https URL, not "${server}": pass --server`);
  const caPem = requireCA(remoteCluster, o.from);
  // Kubeconfig cluster names are often generic ("kubernetes", "default"): two clusters could
  // otherwise end up as one identity in the remote cluster, able to use each other's grants.
  const localUid = await local.clusterUid();
  const importer = localIdentity(o, localCluster.name, localUid);

  if (o.dryRun === "client") {
    const objects = bootstrapObjects(importer, localUid, { clusterName: name, server, caPem, token: "", importer });
    if ((o.output ?? "yaml") === "json") println(env.out, [manifests(objects.remote, "json"), manifests(objects.local, "json")].join("\n"));
    else {
      println(
        env.out,
        [
          `# context "${o.from}" (the remote): the importer identity, which may only renew its own token, and the policy that enforces grants`,
          `# (bootstrap fills in the policy's default audiences: the aud claim of a token ${o.from} issues by default)`,
          manifests(objects.remote, "yaml"),
          "---",
          `# context "${o.to}": the registration of cluster "${name}"; bootstrap adds the identity's token (data.token) when it runs`,
          manifests(objects.local, "yaml"),
        ].join("\n"),
      );
    }
    return;
  }

  let created: KubernetesObject[] = [];
  try {
    const existing = await remote.readServiceAccount(importer.namespace, importer.serviceAccount);
    const owner = existing?.metadata?.labels?.[IMPORTER_CLUSTER_LABEL];
    if (owner && localUid && owner !== localUid) {
      throw new UserError(
        `context "${o.from}" already has an importer identity ${importer.serviceAccount} that belongs to another cluster: ` +
          `pass --local-name to give context "${o.to}" a name of its own`,
      );
    }
    if (owner && !localUid) {
      throw new UserError(
        `context "${o.from}" already has an importer identity ${importer.serviceAccount} of a cluster whose uid is ${owner}, and the uid of context "${o.to}" cannot be read to tell whether it is this one: ` +
          `pass another --local-name`,
      );
    }
    const grant = identityGrant(importer, undefined, localUid);
    created = await remote.applyGrant((uid) => identityGrant(importer, uid, localUid), [systemNamespaceObject(), grant.serviceAccount]);
  } catch (error) {
    remote.fail(error, `creating the importer identity ${importer.namespace}/${importer.serviceAccount}`);
  }
  let token: string;
  let recorded: Awaited<ReturnType<typeof recordGrants>>;
  try {
    token = await remote.mintIdentityToken(name, importer);
    // Grants made before grants were enforced: record what each allows before the policy
    // refuses what an anchor does not record.
    recorded = await recordGrants(remote.kc, importer, (grantFor) => importLimits(local, grantFor));
    await installGrantPolicy(remote.kc, defaultAudiencesOf(token));
  } catch (error) {
    await remote.rollback(created);
    const what = `enforcing grants in context "${o.from}" (the ValidatingAdmissionPolicy ${GRANT_POLICY_NAME}; Kubernetes 1.30 or later)`;
    if (error instanceof UserError) throw error;
    throw new UserError(error instanceof RemoteFailure ? `${what}: ${error.message}` : describeApiError(error, what, remote.server));
  }
  try {
    await local.applyAll([systemNamespaceObject(), registrationSecret({ clusterName: name, server, caPem, token, importer })]);
  } catch (error) {
    await remote.rollback(created);
    throw new UserError(describeApiError(error, "registering the remote cluster", local.server));
  }
  const migrated =
    (recorded.recorded.length ? ` Recorded what ${recorded.recorded.length} existing grant(s) allow.` : "") +
    (recorded.recordedOthers.length
      ? ` Recorded ${recorded.recordedOthers.length} existing grant(s) of other importing clusters with a plain import's limits (the API server's audiences, tokens of at most a day): ` +
        "an import of theirs that asks for more reports GrantExceeded with the command that widens its grant."
      : "");
  const unrecorded = recorded.unrecorded.length
    ? `\nwarning: grant(s) ${recorded.unrecorded.join(", ")} have no Role that names a service account: their imports are refused until granted again (kubectl mcsa import … --remote-context ${o.from}).`
    : "";
  println(
    env.out,
    `cluster "${name}" (${server}) registered in context "${o.to}": its controller imports as ` +
      `${importer.namespace}/${importer.serviceAccount} in context "${o.from}", which may only renew its own token for now; ` +
      `context "${o.from}" enforces every grant.${migrated}${unrecorded}\n` +
      `next: kubectl mcsa import <name> --context ${o.to} --cluster ${name} --remote-namespace <ns> --service-account <sa> --remote-context ${o.from}`,
  );
}

/**
 * What an existing grant (of before grants were recorded) is to allow: what its import asks (its
 * audiences; a lifetime cap of at least its lifetime), so that recording it breaks nothing.
 */
async function importLimits(local: Session, grantFor: string | undefined): Promise<{ audiences: string[]; maxExpirationSeconds: number }> {
  const [namespace, name] = grantFor?.split("/") ?? [];
  let sai: ServiceAccountImport | undefined;
  if (namespace && name) sai = await local.getImport(name, namespace).catch(() => undefined);
  return {
    audiences: sai?.spec.audiences ?? [],
    maxExpirationSeconds: Math.max(DEFAULT_GRANT_MAX_EXPIRATION_SECONDS, sai?.spec.expirationSeconds ?? 0),
  };
}
