// kubectl mcsa kubeconfig NAME: the import's ready kubeconfig (it embeds the current token: the
// user asked for it).
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { type CommandEnv, println } from "../env.ts";
import { importSecretOf } from "../import-secret.ts";
import { type GlobalArgs, type NameArgs, withName } from "../session.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .epilog(
      examplesText([
        ["a kubeconfig for cluster2 as pod-lister", "kubectl mcsa kubeconfig cluster2-default-pod-lister > remote.kubeconfig"],
      ]),
    );
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const { contents } = await importSecretOf(env.open(args), args.name);
  println(env.out, contents.config);
}
