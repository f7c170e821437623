// kubectl mcsa check NAME: with the import's own token, asks the remote server who it is
// (SelfSubjectReview) and what it may do in its namespace (SelfSubjectRulesReview).
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import type { ServiceAccountImportStatus } from "../../common/api.ts";
import { UserError, describeApiError } from "../../common/kube.ts";
import { type CommandEnv, println } from "../env.ts";
import { importSecretOf } from "../import-secret.ts";
import { grantSummary, table } from "../output.ts";
import { type GlobalArgs, type NameArgs, type TokenReview, withName } from "../session.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .epilog(
      examplesText([
        ["who cluster2 says the token is, and what it may do there", "kubectl mcsa check cluster2-default-pod-lister"],
      ]),
    );
}

export function reviewText(clusterName: string, server: string, name: string, namespace: string, review: TokenReview, grant?: ServiceAccountImportStatus["grant"]): string {
  const user = review.user;
  const rows = (review.rules?.resourceRules ?? []).map((r) => [
    (r.resources ?? []).map((res) => (r.apiGroups?.some((g) => g) ? `${res}.${r.apiGroups.filter((g) => g).join(",")}` : res)).join(","),
    (r.resourceNames ?? []).join(",") || "*",
    (r.verbs ?? []).join(","),
  ]);
  return [
    `cluster "${clusterName}" (${server}) authenticates "${name}" as ${user?.username}`,
    `groups: ${(user?.groups ?? []).join(", ") || "<none>"}`,
    `may do in namespace "${namespace}":`,
    table([["RESOURCES", "RESOURCE-NAMES", "VERBS"], ...rows]),
    ...(review.rules?.incomplete ? [`(incomplete: ${review.rules.evaluationError ?? "the server could not list every rule"})`] : []),
    `its grant allows: ${grantSummary(grant)}`,
  ].join("\n");
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const session = env.open(args);
  const { sai, contents } = await importSecretOf(session, args.name);
  let review: TokenReview;
  try {
    review = await session.reviewToken({ clusterName: sai.spec.clusterName, server: contents.server, caPem: contents.caPem, token: contents.token }, contents.namespace);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(describeApiError(error, `cluster "${sai.spec.clusterName}" (${contents.server}) did not accept the import's token`, contents.server));
  }
  println(env.out, reviewText(sai.spec.clusterName, contents.server, args.name, contents.namespace, review, sai.status?.grant));
}
