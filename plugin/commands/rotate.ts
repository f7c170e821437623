// kubectl mcsa rotate NAME: asks the controller for a new token now, and waits for it.
import type { Argv } from "yargs";
import { ROTATE_ANNOTATION, readyCondition } from "../../common/api.ts";
import { ImportClient } from "../../common/import-client.ts";
import { parseDuration } from "../../common/duration.ts";
import { type GlobalArgs, type NameArgs, Session, withName } from "../session.ts";
import { waitFor } from "../wait.ts";

interface Args extends NameArgs {
  wait: boolean;
  timeout: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .option("wait", { type: "boolean", default: true, describe: "wait for the new token (--no-wait to return at once)" })
    .option("timeout", { type: "string", default: "60s", describe: "how long to wait" }) as Argv<Args>;
}

export async function handler(args: Args): Promise<void> {
  const timeoutSeconds = parseDuration(args.timeout);
  const session = Session.open(args);
  const sai = await session.getImport(args.name);
  const request = new Date().toISOString();
  try {
    await new ImportClient(session.kc).patchMetadata(sai.metadata.namespace!, args.name, { annotations: { [ROTATE_ANNOTATION]: request } });
  } catch (error) {
    throw session.fail(error, `requesting a new token for "${args.name}"`);
  }
  if (!args.wait) {
    console.log(`serviceaccountimport "${args.name}": rotation requested`);
    return;
  }
  const done = await waitFor(
    session,
    args.name,
    sai.metadata.namespace!,
    timeoutSeconds,
    (s) => s.status?.rotationRequest === request && readyCondition(s)?.status === "True",
    "rotated",
  );
  console.log(`serviceaccountimport "${args.name}" rotated: new token valid until ${done.status?.expirationTimestamp}`);
}
