// kubectl mcsa install: the CRD, the system namespace and the controller's least-privilege identity.
import { KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { controllerRbac, crd, systemNamespace } from "../../common/manifests.ts";
import { applyAll, remove } from "../apply.ts";
import { printManifests } from "../output.ts";
import { type GlobalArgs, Session } from "../session.ts";
import { UserError } from "../../common/kube.ts";

interface Args extends GlobalArgs {
  "dry-run"?: string;
  output?: string;
}

export function installObjects(): KubernetesObject[] {
  const rbac = controllerRbac();
  return [systemNamespace(), crd(), rbac.serviceAccount, rbac.clusterRole, rbac.clusterRoleBinding, rbac.role, rbac.roleBinding];
}

export const command = "install";
export const describe = "Install the ServiceAccountImport API and the controller's identity in a cluster";

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("dry-run", { type: "string", choices: ["client", "none"], describe: "client: print the objects instead of applying them" })
    .option("output", { alias: "o", type: "string", choices: ["yaml", "json"], describe: "output format with --dry-run" }) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  const objects = installObjects();
  if (args["dry-run"] === "client") return printManifests(objects, args.output === "json" ? "json" : "yaml");
  if (args.output) throw new UserError("-o is only for --dry-run=client");
  const session = Session.open(args);
  try {
    await applyAll(KubernetesObjectApi.makeApiClient(session.kc), objects);
  } catch (error) {
    throw session.fail(error, "installing");
  }
  for (const o of objects) console.log(`${o.kind!.toLowerCase()}/${o.metadata!.name} applied`);
}

export const uninstall = {
  command: "uninstall",
  describe: "Remove what install created (imports and their Secrets go with the CRD)",
  async handler(args: GlobalArgs): Promise<void> {
    const session = Session.open(args);
    const api = KubernetesObjectApi.makeApiClient(session.kc);
    try {
      for (const o of installObjects().reverse()) if (await remove(api, o)) console.log(`${o.kind!.toLowerCase()}/${o.metadata!.name} deleted`);
    } catch (error) {
      throw session.fail(error, "uninstalling");
    }
  },
};
