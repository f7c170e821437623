// kubectl mcsa check NAME: with the import's own token, asks the remote server who it is
// (SelfSubjectReview) and what it may do in its namespace (SelfSubjectRulesReview).
import { AuthenticationV1Api, AuthorizationV1Api } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { UserError, describeApiError } from "../../common/kube.ts";
import { remoteConfig } from "../../common/remote.ts";
import { table } from "../output.ts";
import { type GlobalArgs, type NameArgs, Session, withName } from "../session.ts";
import { importSecretOf } from "../import-secret.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y);
}

export async function handler(args: Args): Promise<void> {
  const session = Session.open(args);
  const { sai, contents } = await importSecretOf(session, args.name);
  const kc = remoteConfig({ clusterName: sai.spec.clusterName, server: contents.server, caPem: contents.caPem, token: contents.token });
  let who;
  try {
    who = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } });
  } catch (error) {
    throw new UserError(describeApiError(error, `cluster "${sai.spec.clusterName}" (${contents.server}) did not accept the import's token`, contents.server));
  }
  const user = who.status?.userInfo;
  console.log(`cluster "${sai.spec.clusterName}" (${contents.server}) authenticates "${args.name}" as ${user?.username}`);
  console.log(`groups: ${(user?.groups ?? []).join(", ") || "<none>"}`);
  let rules;
  try {
    rules = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace: contents.namespace } } });
  } catch (error) {
    throw new UserError(describeApiError(error, `listing what the import may do in namespace "${contents.namespace}"`, contents.server));
  }
  const rows = (rules.status?.resourceRules ?? []).map((r) => [
    (r.resources ?? []).map((res) => (r.apiGroups?.some((g) => g) ? `${res}.${r.apiGroups.filter((g) => g).join(",")}` : res)).join(","),
    (r.resourceNames ?? []).join(",") || "*",
    (r.verbs ?? []).join(","),
  ]);
  console.log(`may do in namespace "${contents.namespace}":`);
  console.log(table([["RESOURCES", "RESOURCE-NAMES", "VERBS"], ...rows]));
  if (rules.status?.incomplete) console.log(`(incomplete: ${rules.status.evaluationError ?? "the server could not list every rule"})`);
}
