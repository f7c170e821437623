// kubectl mcsa describe NAME: spec, conditions, token expiry, Secret, pods using it, events.
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { IMPORT_ANNOTATION, type ServiceAccountImport } from "../../common/api.ts";
import { formatAge } from "../../common/duration.ts";
import { parseImportAnnotation } from "../../common/names.ts";
import { type CommandEnv, println } from "../env.ts";
import { grantSummary, table } from "../output.ts";
import { type GlobalArgs, type NameArgs, withName } from "../session.ts";

type Args = NameArgs;

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return withName(y)
    .epilog(
      examplesText([
        ["status, token expiry, the pods that use it, events", "kubectl mcsa describe cluster2-default-pod-lister -n default"],
      ]),
    );
}

/** The pods whose annotation names this import (what removing it would break). */
export function podsUsing(pods: { metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> } }[], name: string, namespace: string): string[] {
  return pods
    .filter((p) => (p.metadata?.namespace ?? namespace) === namespace && parseImportAnnotation(p.metadata?.annotations?.[IMPORT_ANNOTATION]).includes(name))
    .map((p) => p.metadata!.name!);
}

export function describeText(sai: ServiceAccountImport, pods: string[], events: string[][], now: Date): string {
  const expires = sai.status?.expirationTimestamp;
  return [
    `Name:              ${sai.metadata.name}`,
    `Namespace:         ${sai.metadata.namespace}`,
    `Cluster:           ${sai.spec.clusterName}`,
    `Remote Namespace:  ${sai.spec.namespace}`,
    `Service Account:   ${sai.spec.name}`,
    `Token Lifetime:    ${sai.spec.expirationSeconds ?? 3600}s`,
    `Audiences:         ${sai.spec.audiences?.length ? sai.spec.audiences.join(", ") : "<the remote API server's own>"}`,
    `Grant Allows:      ${grantSummary(sai.status?.grant)}`,
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
  ].join("\n");
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const session = env.open(args);
  const sai = await session.getImport(args.name);
  const now = env.now();
  const namespace = sai.metadata.namespace!;
  let pods: string[];
  let events: string[][];
  try {
    pods = podsUsing(await session.listPods(namespace), args.name, namespace);
  } catch (error) {
    pods = [`<cannot list pods: ${(error as Error).message.split("\n")[0]}>`];
  }
  try {
    const list = await session.listEvents(namespace, `involvedObject.name=${args.name},involvedObject.kind=${sai.kind}`);
    events = list
      .sort((a, b) => new Date(a.lastTimestamp ?? 0).getTime() - new Date(b.lastTimestamp ?? 0).getTime())
      .map((e) => [e.type ?? "", e.reason ?? "", e.lastTimestamp ? formatAge(new Date(e.lastTimestamp), now) : "", e.source?.component ?? "", e.message ?? ""]);
  } catch {
    events = [];
  }
  println(env.out, describeText(sai, pods, events, now));
}
