// What depends on a registered cluster (its identity, imports, and the pods that use them): what
// unbootstrap and remove would break, and what `kubectl mcsa clusters` shows.
import type { ServiceAccountImport } from "../common/api.ts";
import type { Registration } from "../common/registration.ts";
import { podsUsing } from "./commands/describe.ts";

export interface PodLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
}

export interface ClusterDependents {
  /** Other registrations of this context that use the same identity in the same remote server. */
  sharing: string[];
  /** Imports of it, as namespace/name. */
  imports: string[];
  /** Pods that use those imports, as namespace/name. */
  pods: string[];
}

export function dependentsOf(
  clusterName: string,
  identity: { server?: string; serviceAccount: string },
  registrations: Registration[],
  imports: ServiceAccountImport[],
  pods: PodLike[],
): ClusterDependents {
  const sharing = registrations
    .filter((r) => r.clusterName !== clusterName && r.importer.serviceAccount === identity.serviceAccount && (identity.server === undefined || r.server === identity.server))
    .map((r) => r.clusterName)
    .sort();
  const mine = imports.filter((i) => i.spec.clusterName === clusterName);
  const usedBy = new Set<string>();
  for (const sai of mine) {
    const namespace = sai.metadata.namespace ?? "default";
    for (const pod of podsUsing(pods, sai.metadata.name!, namespace)) usedBy.add(`${namespace}/${pod}`);
  }
  return { sharing, imports: mine.map((i) => `${i.metadata.namespace}/${i.metadata.name}`).sort(), pods: [...usedBy].sort() };
}

const some = (list: string[]) => list.slice(0, 5).join(", ") + (list.length > 5 ? ` and ${list.length - 5} more` : "");

/** Why unbootstrap refuses, as one line naming what depends and the next command; undefined if nothing does. */
export function unbootstrapBlocker(clusterName: string, context: string, identity: string, d: ClusterDependents): string | undefined {
  const reasons: string[] = [];
  if (d.sharing.length) reasons.push(`registration(s) ${some(d.sharing)} use the same identity ${identity} (unbootstrap them with --name first)`);
  if (d.imports.length) reasons.push(`${d.imports.length} import(s) use it (${some(d.imports)}; kubectl mcsa remove them first)`);
  if (d.pods.length) reasons.push(`${d.pods.length} pod(s) use those imports (${some(d.pods)})`);
  if (reasons.length === 0) return undefined;
  return `cluster "${clusterName}" is still needed in context "${context}": ${reasons.join("; ")}; pass --force to unbootstrap anyway`;
}
