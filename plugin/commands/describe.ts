// kubectl mcsa describe NAME: spec, conditions, token expiry, Secret, pods using it, events.
import type { Argv } from "yargs";
import { IMPORT_ANNOTATION } from "../../common/api.ts";
import { formatAge } from "../../common/duration.ts";
import { parseImportAnnotation } from "../../common/names.ts";
import { table } from "../output.ts";
import { type GlobalArgs, type NameArgs, Session, withName } from "../session.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y);
}

export async function handler(args: Args): Promise<void> {
  const session = Session.open(args);
  const sai = await session.getImport(args.name);
  const now = new Date();
  const namespace = sai.metadata.namespace!;
  let pods: string[];
  let events: string[][];
  try {
    const list = await session.core.listNamespacedPod({ namespace });
    pods = list.items
      .filter((p) => parseImportAnnotation(p.metadata?.annotations?.[IMPORT_ANNOTATION]).includes(args.name))
      .map((p) => p.metadata!.name!);
  } catch (error) {
    pods = [`<cannot list pods: ${(error as Error).message.split("\n")[0]}>`];
  }
  try {
    const list = await session.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${args.name},involvedObject.kind=${sai.kind}` });
    events = list.items
      .sort((a, b) => new Date(a.lastTimestamp ?? 0).getTime() - new Date(b.lastTimestamp ?? 0).getTime())
      .map((e) => [e.type ?? "", e.reason ?? "", e.lastTimestamp ? formatAge(new Date(e.lastTimestamp), now) : "", e.source?.component ?? "", e.message ?? ""]);
  } catch {
    events = [];
  }
  const expires = sai.status?.expirationTimestamp;
  const lines = [
    `Name:              ${sai.metadata.name}`,
    `Namespace:         ${namespace}`,
    `Cluster:           ${sai.spec.clusterName}`,
    `Remote Namespace:  ${sai.spec.namespace}`,
    `Service Account:   ${sai.spec.name}`,
    `Token Lifetime:    ${sai.spec.expirationSeconds ?? 3600}s`,
    `Secret:            ${sai.status?.secrets?.map((s) => s.name).join(", ") || "<none>"}`,
    `Token Issued:      ${sai.status?.issuedAt ?? "<none>"}`,
    `Token Expires:     ${expires ? `${expires} (in ${formatAge(now, new Date(expires))})` : "<none>"}`,
    `Used By Pods:      ${pods.length ? pods.join(", ") : "<none>"}`,
    "Conditions:",
    ...(sai.status?.conditions?.length
      ? table([["  Type", "Status", "Reason", "Since", "Message"], ...sai.status.conditions.map((c) => [`  ${c.type}`, c.status, c.reason, c.lastTransitionTime, c.message])]).split("\n")
      : ["  <none>"]),
    "Events:" + (events.length ? "" : "  <none>"),
    ...(events.length ? table([["  Type", "Reason", "Age", "From", "Message"], ...events.map((e) => [`  ${e[0]}`, ...e.slice(1)])]).split("\n") : []),
  ];
  console.log(lines.join("\n"));
}
