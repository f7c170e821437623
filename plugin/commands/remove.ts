// kubectl mcsa remove NAME: the controller revokes the import's remote tokens (its finalizer),
// then the import and its Secret go. With --remote-context the plugin revokes directly too.
import { KubernetesObjectApi } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { GROUP, PLURAL, SYSTEM_NAMESPACE, VERSION } from "../../common/api.ts";
import { parseDuration } from "../../common/duration.ts";
import { importGrant } from "../../common/grant.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import { parseRegistration, registrationSecretName } from "../../common/registration.ts";
import { removeGrant } from "../remote-grants.ts";
import { type GlobalArgs, type NameArgs, Session, withName } from "../session.ts";
import { setTimeout as delay } from "node:timers/promises";

interface Args extends NameArgs {
  "remote-context"?: string;
  wait: boolean;
  timeout: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .option("remote-context", { type: "string", describe: "context of the remote cluster: also delete the grant there directly" })
    .option("wait", { type: "boolean", default: true, describe: "wait until the import is gone (--no-wait to return at once)" })
    .option("timeout", { type: "string", default: "60s", describe: "how long to wait" }) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  const timeoutSeconds = parseDuration(args.timeout);
  const session = Session.open(args);
  const sai = await session.getImport(args.name);
  const namespace = sai.metadata.namespace!;
  const remote = args["remote-context"] ? Session.open(args, args["remote-context"]) : undefined;
  // Read what the grant is called before the import goes.
  let grant: ReturnType<typeof importGrant> | undefined;
  if (remote) {
    try {
      const secret = await session.core.readNamespacedSecret({ name: registrationSecretName(sai.spec.clusterName), namespace: SYSTEM_NAMESPACE });
      grant = importGrant({
        importer: parseRegistration(secret).importer,
        localNamespace: namespace,
        importName: args.name,
        remoteNamespace: sai.spec.namespace,
        serviceAccount: sai.spec.name,
      });
    } catch (error) {
      if (!isNotFound(error)) throw session.fail(error, `reading the registration of cluster "${sai.spec.clusterName}"`);
    }
  }
  try {
    await session.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: args.name });
  } catch (error) {
    if (!isNotFound(error)) throw session.fail(error, `deleting serviceaccountimport "${args.name}"`);
  }
  // The controller revokes first (its finalizer), with the grant it was given; waiting for it
  // before touching the grant ourselves keeps it able to.
  let gone = !args.wait;
  if (args.wait) {
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (!gone && Date.now() <= deadline) {
      try {
        await session.getImport(args.name, namespace);
        await delay(250);
      } catch (error) {
        if (!(error instanceof UserError && /not found/.test(error.message))) throw error;
        gone = true;
      }
    }
  }
  if (remote && grant) {
    try {
      await removeGrant(KubernetesObjectApi.makeApiClient(remote.kc), grant);
    } catch (error) {
      throw remote.fail(error, "deleting the import's grant");
    }
  }
  if (!args.wait) {
    console.log(`serviceaccountimport "${args.name}" deleting (the controller revokes its tokens first)`);
    return;
  }
  if (!gone) {
    throw new UserError(
      `serviceaccountimport "${args.name}" is still being deleted after ${args.timeout}: the controller revokes its tokens first; ` +
        (remote ? "its grant is now deleted remotely, which revoked them; " : "") +
        "is the controller running, and can it reach the remote cluster? (kubectl mcsa describe shows why)",
    );
  }
  console.log(`serviceaccountimport "${args.name}" removed: its tokens are revoked and its Secret deleted`);
}
