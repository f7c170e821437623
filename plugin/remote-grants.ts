// Writing and removing grants in a remote cluster, as its admin (the user's kubeconfig context).
import type { KubernetesObject, KubernetesObjectApi, V1Namespace } from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import type { GrantObjects } from "../common/grant.ts";
import { apply, exists, remove, rollback } from "./apply.ts";

/**
 * Applies the anchor first, then the Role and RoleBinding owned by it (so deleting the anchor
 * garbage-collects them). Returns what this call created, for the caller to undo on failure.
 */
export async function applyGrant(
  api: KubernetesObjectApi,
  build: (anchorUid?: string) => GrantObjects,
  extra: KubernetesObject[] = [],
): Promise<KubernetesObject[]> {
  const created: KubernetesObject[] = [];
  const step = async <T extends KubernetesObject>(object: T): Promise<T> => {
    const existed = await exists(api, object);
    const result = await apply(api, object);
    if (!existed) created.push(object);
    return result;
  };
  try {
    for (const object of extra) await step(object);
    const anchor = await step(build().anchor);
    const owned = build(anchor.metadata!.uid);
    await step(owned.role);
    await step(owned.roleBinding);
    return created;
  } catch (error) {
    await rollback(api, created);
    throw error;
  }
}

/** Deletes the anchor first: that revokes every token bound to it, even if the rest fails. */
export async function removeGrant(api: KubernetesObjectApi, grant: GrantObjects): Promise<boolean> {
  const revoked = await remove(api, grant.anchor);
  await remove(api, grant.roleBinding);
  await remove(api, grant.role);
  return revoked;
}

export function systemNamespaceObject(): V1Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: SYSTEM_NAMESPACE } };
}
