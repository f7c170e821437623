// kubectl mcsa bootstrap --from REMOTE --to LOCAL: gives LOCAL's controller an identity in REMOTE
// that may only renew its own token, and registers REMOTE in LOCAL under a name.
import { readFileSync } from "node:fs";
import { type KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { IMPORTER_CLUSTER_LABEL, identityGrant, importerFor } from "../../common/grant.ts";
import { UserError, describeApiError } from "../../common/kube.ts";
import { toDnsLabel, validateDnsLabel } from "../../common/names.ts";
import { registrationSecret } from "../../common/registration.ts";
import { RemoteFailure, mintIdentityToken } from "../../common/remote.ts";
import { applyAll, rollback } from "../apply.ts";
import { applyGrant, systemNamespaceObject } from "../remote-grants.ts";
import { type GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  from: string;
  to: string;
  name?: string;
  server?: string;
  "local-name"?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("from", { type: "string", demandOption: true, describe: "context of the cluster to import from (the remote)" })
    .option("to", { type: "string", demandOption: true, describe: "context of the cluster that imports (where the controller runs)" })
    .option("name", { type: "string", describe: "name of the remote cluster in imports' spec.clusterName (default: from its kubeconfig cluster name)" })
    .option("local-name", { type: "string", describe: "name of the importing cluster in the remote one (default: from its kubeconfig cluster name)" })
    .option("server", { type: "string", describe: "the remote API server's URL as the importing cluster reaches it (default: the --from context's)" })
    .example("$0 bootstrap --from cluster2 --to cluster1", "cluster1 may then import service accounts of cluster2") as Argv<Args>;
}

export function clusterCA(kc: KubeConfig, context: string): string {
  const cluster = kc.getCurrentCluster()!;
  if (cluster.caData) return Buffer.from(cluster.caData, "base64").toString("utf8");
  if (cluster.caFile) return readFileSync(cluster.caFile, "utf8");
  throw new UserError(`context "${context}" has no certificate authority for ${cluster.server}: kubectl mcsa needs one to verify the remote cluster`);
}

export async function handler(args: Args): Promise<void> {
  if (args.from === args.to) throw new UserError("--from and --to name the same context: bootstrap connects two different clusters");
  const remote = Session.open(args, args.from);
  const local = Session.open(args, args.to);
  const remoteCluster = remote.kc.getCurrentCluster()!;
  const localCluster = local.kc.getCurrentCluster()!;
  if (remoteCluster.server === localCluster.server) throw new UserError(`contexts "${args.from}" and "${args.to}" point at the same API server ${remoteCluster.server}`);
  const name = args.name ?? toDnsLabel(remoteCluster.name);
  const invalid = validateDnsLabel(name);
  if (invalid) throw new UserError(`invalid --name "${name}": ${invalid}`);
  const server = args.server ?? remoteCluster.server;
  if (!/^https:\/\//.test(server)) throw new UserError(`the remote server must be an https URL, not "${server}"`);
  const caPem = clusterCA(remote.kc, args.from);
  const importer = importerFor(args["local-name"] ?? localCluster.name);
  // Kubeconfig cluster names are often generic ("kubernetes", "default"): two clusters could
  // otherwise end up as one identity in the remote cluster, able to use each other's grants.
  const localUid = await local.core.readNamespace({ name: "kube-system" }).then(
    (ns) => ns.metadata?.uid,
    () => undefined,
  );

  const remoteApi = KubernetesObjectApi.makeApiClient(remote.kc);
  let created;
  try {
    const existing = await remote.core.readNamespacedServiceAccount({ name: importer.serviceAccount, namespace: importer.namespace }).catch(() => undefined);
    const owner = existing?.metadata?.labels?.[IMPORTER_CLUSTER_LABEL];
    if (owner && localUid && owner !== localUid) {
      throw new UserError(
        `context "${args.from}" already has an importer identity ${importer.serviceAccount} that belongs to another cluster: ` +
          `pass --local-name to give context "${args.to}" a name of its own`,
      );
    }
    const grant = identityGrant(importer, undefined, localUid);
    created = await applyGrant(remoteApi, (uid) => identityGrant(importer, uid, localUid), [systemNamespaceObject(), grant.serviceAccount]);
  } catch (error) {
    throw remote.fail(error, `creating the importer identity ${importer.namespace}/${importer.serviceAccount}`);
  }
  try {
    const minted = await mintIdentityToken(remote.kc, name, importer);
    await applyAll(KubernetesObjectApi.makeApiClient(local.kc), [
      systemNamespaceObject(),
      registrationSecret({ clusterName: name, server, caPem, token: minted.token, importer }),
    ]);
  } catch (error) {
    await rollback(remoteApi, created);
    const what = "registering the remote cluster";
    throw new UserError(error instanceof RemoteFailure ? `${what}: ${error.message}` : describeApiError(error, what, local.server));
  }
  console.log(
    `cluster "${name}" (${server}) registered in context "${args.to}": its controller imports as ` +
      `${importer.namespace}/${importer.serviceAccount} in context "${args.from}", which may only renew its own token for now.\n` +
      `next: kubectl mcsa import <name> --context ${args.to} --cluster ${name} --remote-namespace <ns> --service-account <sa> --remote-context ${args.from}`,
  );
}
