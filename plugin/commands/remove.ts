// kubectl mcsa remove NAME: the controller revokes the import's remote tokens (its finalizer),
// then the import and its Secret go. With --remote-context the plugin revokes directly too.
// Pods that use the import lose their remote access: remove says which, and needs --force then.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { poll } from "../../common/poll.ts";
import { UserError } from "../../common/errors.ts";
import { type GrantObjects, importGrant } from "../../common/grant.ts";
import { type CommandEnv, println } from "../env.ts";
import { durationFlag } from "../flags.ts";
import { type GlobalArgs, type NameArgs, isImportNotFound, withName } from "../session.ts";
import { podsUsing } from "./describe.ts";

interface Args extends NameArgs {
  "remote-context"?: string;
  wait: boolean;
  timeout: string;
  force: boolean;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .option("remote-context", { type: "string", describe: "context of the remote cluster: also delete the grant there directly" })
    .option("wait", { type: "boolean", default: true, describe: "wait until the import is gone (--no-wait to return at once)" })
    .option("timeout", { type: "string", default: "60s", describe: "how long to wait" })
    .option("force", { type: "boolean", default: false, describe: "remove it even though pods use it (they lose their remote access)" })
    .epilog(
      examplesText([
        ["revoke its tokens, then delete it and its Secret", "kubectl mcsa remove cluster2-default-pod-lister"],
      ]),
    ) as Argv<Args>;
}

export function inUseError(name: string, namespace: string, pods: string[]): UserError {
  const shown = pods.slice(0, 5).join(", ") + (pods.length > 5 ? ` and ${pods.length - 5} more` : "");
  return new UserError(
    `serviceaccountimport "${name}" is used by ${pods.length} pod(s) in namespace "${namespace}" (${shown}): removing it revokes their remote access; pass --force to remove it anyway`,
  );
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const timeoutSeconds = durationFlag(args.timeout, "--timeout");
  const session = env.open(args);
  const sai = await session.getImport(args.name);
  const namespace = sai.metadata.namespace!;
  const users = podsUsing(await session.listPods(namespace).catch((error: unknown) => session.fail(error, "listing the pods that use the import")), args.name, namespace);
  if (users.length > 0 && !args.force) throw inUseError(args.name, namespace, users);
  const remote = args["remote-context"] ? env.open(args, args["remote-context"]) : undefined;
  // Read what the grant is called before the import goes.
  let grant: GrantObjects | undefined;
  if (remote) {
    const registration = await session.readRegistration(sai.spec.clusterName);
    if (registration) {
      grant = importGrant({
        importer: registration.importer,
        localNamespace: namespace,
        importName: args.name,
        remoteNamespace: sai.spec.namespace,
        serviceAccount: sai.spec.name,
      });
    }
  }
  await session.deleteImport(args.name, namespace);
  // The controller revokes first (its finalizer), with the grant it was given; waiting for it
  // before touching the grant ourselves keeps it able to.
  let gone = !args.wait;
  if (args.wait) {
    const absent = () =>
      session.getImport(args.name, namespace).then(
        () => false,
        (error: unknown) => {
          if (isImportNotFound(error)) return true;
          throw error;
        },
      );
    gone = (await poll(absent, { timeoutMs: timeoutSeconds * 1000, intervalMs: 250, now: () => env.now().getTime(), sleep: (ms) => env.sleep(ms) })).done;
  }
  if (remote && grant) {
    try {
      await remote.removeGrant(grant);
    } catch (error) {
      remote.fail(error, "deleting the import's grant");
    }
  }
  const forced = users.length > 0 ? ` (${users.length} pod(s) that used it lost their remote access: ${users.join(", ")})` : "";
  if (!args.wait) {
    println(env.out, `serviceaccountimport "${args.name}" deleting (the controller revokes its tokens first)${forced}`);
    return;
  }
  if (!gone) {
    throw new UserError(
      `serviceaccountimport "${args.name}" is still being deleted after ${args.timeout}: the controller revokes its tokens first; ` +
        (remote ? "its grant is now deleted remotely, which revoked them; " : "") +
        "is the controller running, and can it reach the remote cluster? (kubectl mcsa describe shows why)",
    );
  }
  println(env.out, `serviceaccountimport "${args.name}" removed: its tokens are revoked and its Secret deleted${forced}`);
}
