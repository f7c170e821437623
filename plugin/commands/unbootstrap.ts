// kubectl mcsa unbootstrap --from REMOTE --to LOCAL: revokes LOCAL's identity in REMOTE (and every
// grant made to it there) and forgets REMOTE in LOCAL.
import { type KubernetesObject, KubernetesObjectApi, RbacAuthorizationV1Api, CoreV1Api } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { SYSTEM_NAMESPACE } from "../../common/api.ts";
import { IMPORTER_LABEL, identityGrant, importerFor } from "../../common/grant.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import { toDnsLabel, validateDnsLabel } from "../../common/names.ts";
import { parseRegistration, registrationSecretName } from "../../common/registration.ts";
import { remove } from "../apply.ts";
import { removeGrant } from "../remote-grants.ts";
import { type GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  from: string;
  to: string;
  name?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("from", { type: "string", demandOption: true, describe: "context of the remote cluster" })
    .option("to", { type: "string", demandOption: true, describe: "context of the importing cluster" })
    .option("name", { type: "string", describe: "name the remote cluster was registered under" }) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  if (args.from === args.to) throw new UserError("--from and --to name the same context");
  const remote = Session.open(args, args.from);
  const local = Session.open(args, args.to);
  const name = args.name ?? toDnsLabel(remote.kc.getCurrentCluster()!.name);
  const invalid = validateDnsLabel(name);
  if (invalid) throw new UserError(`invalid --name "${name}": ${invalid}`);
  // The identity bootstrap recorded (it may have been named with --local-name), else the default.
  const importer = await local.core
    .readNamespacedSecret({ name: registrationSecretName(name), namespace: SYSTEM_NAMESPACE })
    .then((secret) => parseRegistration(secret).importer, () => importerFor(local.kc.getCurrentCluster()!.name));
  const remoteApi = KubernetesObjectApi.makeApiClient(remote.kc);
  let grants = 0;
  try {
    // Every per-import grant first (their anchors revoke the imported tokens), then the identity.
    const selector = `${IMPORTER_LABEL}=${importer.serviceAccount}`;
    const core = remote.kc.makeApiClient(CoreV1Api);
    const rbac = remote.kc.makeApiClient(RbacAuthorizationV1Api);
    const anchors = (await core.listSecretForAllNamespaces({ labelSelector: selector })).items;
    const roles = (await rbac.listRoleForAllNamespaces({ labelSelector: selector })).items;
    const bindings = (await rbac.listRoleBindingForAllNamespaces({ labelSelector: selector })).items;
    const objects: KubernetesObject[] = [
      ...anchors.map((o) => ({ apiVersion: "v1", kind: "Secret", metadata: o.metadata })),
      ...bindings.map((o) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: o.metadata })),
      ...roles.map((o) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: o.metadata })),
    ];
    for (const object of objects) if (await remove(remoteApi, { ...object, metadata: { name: object.metadata!.name, namespace: object.metadata!.namespace } })) grants++;
    const identity = identityGrant(importer);
    await removeGrant(remoteApi, identity);
    await remove(remoteApi, identity.serviceAccount);
  } catch (error) {
    throw remote.fail(error, `removing ${importer.namespace}/${importer.serviceAccount}`);
  }
  let registered = true;
  try {
    await local.core.deleteNamespacedSecret({ name: registrationSecretName(name), namespace: SYSTEM_NAMESPACE });
  } catch (error) {
    if (!isNotFound(error)) throw local.fail(error, `unregistering cluster "${name}"`);
    registered = false;
  }
  if (!registered && grants === 0) {
    throw new UserError(`no cluster "${name}" is registered in context "${args.to}" and nothing of it was found in context "${args.from}": pass the --name bootstrap used`);
  }
  console.log(
    `cluster "${name}" ${registered ? "unregistered" : "was not registered"} in context "${args.to}"; ${importer.serviceAccount} and ${grants} grant object(s) removed from context "${args.from}", their tokens revoked`,
  );
}
