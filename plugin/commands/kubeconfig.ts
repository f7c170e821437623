// kubectl mcsa kubeconfig NAME: the import's ready kubeconfig (it embeds the current token: the
// user asked for it).
import type { Argv } from "yargs";
import { UserError, isNotFound } from "../../common/kube.ts";
import { type GlobalArgs, type NameArgs, Session, withName } from "../session.ts";
import { importSecretOf } from "../import-secret.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y).example("$0 kubeconfig cluster2-default-pod-lister > remote.kubeconfig", "");
}

export async function handler(args: Args): Promise<void> {
  const session = Session.open(args);
  const { contents } = await importSecretOf(session, args.name).catch((error: unknown) => {
    if (isNotFound(error)) throw new UserError(`the Secret of serviceaccountimport "${args.name}" is gone: the controller recreates it`);
    throw error;
  });
  process.stdout.write(contents.config.endsWith("\n") ? contents.config : contents.config + "\n");
}
