// kubectl mcsa unbootstrap --from REMOTE --to LOCAL: revokes LOCAL's identity in REMOTE (and every
// grant made to it there) and forgets REMOTE in LOCAL. Refuses (without --force) while another
// registration shares that identity or imports of REMOTE exist: they would stop working.
import { ApiextensionsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject, KubernetesObjectApi, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { CRD_NAME, SYSTEM_NAMESPACE } from "../../common/api.ts";
import { UserError } from "../../common/errors.ts";
import { GRANT_POLICY_NAME, IMPORTER_LABEL, identityGrant, importerFor } from "../../common/grant.ts";
import { isNotFound } from "../../common/kube.ts";
import { toDnsLabel, validateDnsLabel } from "../../common/names.ts";
import { registrationSecretName } from "../../common/registration.ts";
import { remove } from "../apply.ts";
import { dependentsOf, unbootstrapBlocker } from "../dependents.ts";
import { type CommandEnv, println } from "../env.ts";
import { removeGrant, removeGrantPolicy } from "../remote-grants.ts";
import type { GlobalArgs } from "../session.ts";
import { waitGone } from "../wait.ts";

interface Args extends GlobalArgs {
  from: string;
  to: string;
  name?: string;
  force: boolean;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("from", { type: "string", demandOption: true, describe: "context of the remote cluster" })
    .option("to", { type: "string", demandOption: true, describe: "context of the importing cluster" })
    .option("name", { type: "string", describe: "name the remote cluster was registered under (default: from its kubeconfig cluster name)" })
    .option("force", { type: "boolean", default: false, describe: "unbootstrap even though imports or other registrations depend on it" })
    .epilog(
      examplesText([
        ["revoke cluster1's identity in cluster2 and forget cluster2 in cluster1", "kubectl mcsa unbootstrap --from cluster2 --to cluster1"],
      ]),
    ) as Argv<Args>;
}

export function unbootstrapOptions(args: Args): { from: string; to: string; name?: string; force: boolean } {
  if (args.from === args.to) throw new UserError("--from and --to name the same context");
  const invalid = args.name === undefined ? undefined : validateDnsLabel(args.name);
  if (invalid) throw new UserError(`invalid --name "${args.name}": ${invalid}`);
  return { from: args.from, to: args.to, name: args.name, force: args.force };
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const o = unbootstrapOptions(args);
  const remote = env.open(args, o.from);
  const local = env.open(args, o.to);
  const name = o.name ?? toDnsLabel(remote.cluster().name);
  // The identity bootstrap recorded (it may have been named with --local-name), else the default.
  const registration = await local.readRegistration(name).catch(() => undefined);
  const importer = registration?.importer ?? importerFor(local.cluster().name);
  const dependents = dependentsOf(
    name,
    { server: registration?.server ?? remote.cluster().server, serviceAccount: importer.serviceAccount },
    await local.listRegistrations().catch(() => []),
    await local.listImports(true).catch(() => []),
    await local.listPods().catch(() => []),
  );
  const blocker = unbootstrapBlocker(name, o.to, `${importer.namespace}/${importer.serviceAccount}`, dependents);
  if (blocker && !o.force) throw new UserError(blocker);
  let grants = 0;
  let policyRemoved = false;
  let namespaceRemoved = false;
  if (dependents.sharing.length === 0) {
    const remoteApi = KubernetesObjectApi.makeApiClient(remote.kc);
    try {
      // Every per-import grant first (their anchors revoke the imported tokens), then the identity.
      const selector = `${IMPORTER_LABEL}=${importer.serviceAccount}`;
      const core = remote.kc.makeApiClient(CoreV1Api);
      const rbac = remote.kc.makeApiClient(RbacAuthorizationV1Api);
      const anchors = (await core.listSecretForAllNamespaces({ labelSelector: selector })).items;
      const roles = (await rbac.listRoleForAllNamespaces({ labelSelector: selector })).items;
      const bindings = (await rbac.listRoleBindingForAllNamespaces({ labelSelector: selector })).items;
      const objects: KubernetesObject[] = [
        ...anchors.map((x) => ({ apiVersion: "v1", kind: "Secret", metadata: x.metadata })),
        ...bindings.map((x) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: x.metadata })),
        ...roles.map((x) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: x.metadata })),
      ];
      for (const object of objects) if (await remove(remoteApi, { ...object, metadata: { name: object.metadata!.name, namespace: object.metadata!.namespace } })) grants++;
      const identity = identityGrant(importer);
      await removeGrant(remoteApi, identity);
      await remove(remoteApi, identity.serviceAccount);
      // The grant policy is the remote cluster's, for every importer: it goes with the last one.
      const importers = await core.listNamespacedServiceAccount({ namespace: importer.namespace, labelSelector: IMPORTER_LABEL });
      if (importers.items.length === 0) {
        policyRemoved = await removeGrantPolicy(remote.kc);
        namespaceRemoved = await removeIdleSystemNamespace(env, remote.kc);
      }
    } catch (error) {
      remote.fail(error, `removing ${importer.namespace}/${importer.serviceAccount}`);
    }
  }
  let registered = true;
  try {
    await local.kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({ name: registrationSecretName(name), namespace: SYSTEM_NAMESPACE });
  } catch (error) {
    if (!isNotFound(error)) local.fail(error, `unregistering cluster "${name}"`);
    registered = false;
  }
  if (!registered && grants === 0) {
    throw new UserError(`no cluster "${name}" is registered in context "${o.to}" and nothing of it was found in context "${o.from}": pass the --name bootstrap used`);
  }
  const kept = dependents.sharing.length
    ? `; ${importer.serviceAccount} kept in context "${o.from}": registration(s) ${dependents.sharing.join(", ")} still use it`
    : `; ${importer.serviceAccount} and ${grants} grant object(s) removed from context "${o.from}", their tokens revoked` +
      (policyRemoved
        ? ` (it was the last importer there: the grant policy ${GRANT_POLICY_NAME}${namespaceRemoved ? ` and the namespace ${SYSTEM_NAMESPACE}` : ""} removed too)`
        : "");
  println(env.out, `cluster "${name}" ${registered ? "unregistered" : "was not registered"} in context "${o.to}"${kept}`);
}

/**
 * The remote's system namespace, which bootstrap created for the importer identities, once the last
 * of them is gone, unless something else of ours lives there: kubectl mcsa installed in that cluster
 * (the CRD), or a Secret or service account (registrations of its own imports, anything a user put).
 * Waits until it is gone, so that a bootstrap or install right after does not meet it terminating.
 */
async function removeIdleSystemNamespace(env: CommandEnv, kc: KubeConfig): Promise<boolean> {
  const core = kc.makeApiClient(CoreV1Api);
  const installed = await kc
    .makeApiClient(ApiextensionsV1Api)
    .readCustomResourceDefinition({ name: CRD_NAME })
    .then(
      () => true,
      (error: unknown) => (isNotFound(error) ? false : Promise.reject(error)),
    );
  if (installed) return false;
  const secrets = (await core.listNamespacedSecret({ namespace: SYSTEM_NAMESPACE })).items;
  const accounts = (await core.listNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE })).items.filter((a) => a.metadata?.name !== "default");
  if (secrets.length > 0 || accounts.length > 0) return false;
  try {
    await core.deleteNamespace({ name: SYSTEM_NAMESPACE });
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
  return waitGone(env, () => core.readNamespace({ name: SYSTEM_NAMESPACE }), 60_000);
}
