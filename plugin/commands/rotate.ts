// kubectl mcsa rotate NAME: asks the controller for a new token now, and waits for it.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { ROTATE_ANNOTATION, readyCondition } from "../../common/api.ts";
import { durationFlag } from "../flags.ts";
import { type CommandEnv, println } from "../env.ts";
import { type GlobalArgs, type NameArgs, withName } from "../session.ts";
import { waitFor } from "../wait.ts";

interface Args extends NameArgs {
  wait: boolean;
  timeout: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .option("wait", { type: "boolean", default: true, describe: "wait for the new token (--no-wait to return at once)" })
    .option("timeout", { type: "string", default: "60s", describe: "how long to wait" })
    .epilog(
      examplesText([
        ["a new token now; the previous one stays valid until it expires", "kubectl mcsa rotate cluster2-default-pod-lister"],
      ]),
    ) as Argv<Args>;
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const timeoutSeconds = durationFlag(args.timeout, "--timeout");
  const session = env.open(args);
  const sai = await session.getImport(args.name);
  const namespace = sai.metadata.namespace!;
  const request = env.now().toISOString();
  await session.patchImportMetadata(args.name, namespace, { annotations: { [ROTATE_ANNOTATION]: request } });
  if (!args.wait) {
    println(env.out, `serviceaccountimport "${args.name}": rotation requested`);
    return;
  }
  const done = await waitFor(env, session, args.name, namespace, timeoutSeconds, (s) => s.status?.rotationRequest === request && readyCondition(s)?.status === "True", "rotated");
  println(env.out, `serviceaccountimport "${args.name}" rotated: new token valid until ${done.status?.expirationTimestamp}`);
}
