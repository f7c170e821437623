// Idempotent writes: server-side apply under our field manager, as `kubectl apply --server-side`.
import { type KubernetesObject, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { isNotFound } from "../common/kube.ts";

export const FIELD_MANAGER = "kubectl-mcsa";

export async function apply<T extends KubernetesObject>(api: KubernetesObjectApi, object: T): Promise<T> {
  return api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/** Whether the object exists now (to know, on failure, what this run created and must undo). */
export async function exists(api: KubernetesObjectApi, object: KubernetesObject): Promise<boolean> {
  try {
    await api.read(object as KubernetesObject & { metadata: { name: string } });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/** Deletes; already gone counts as done. */
export async function remove(api: KubernetesObjectApi, object: KubernetesObject): Promise<boolean> {
  try {
    await api.delete(object);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/**
 * Applies objects in order; if one fails, deletes those this call created (not those that
 * already existed), so that a failed command leaves nothing half-created.
 */
export async function applyAll(api: KubernetesObjectApi, objects: KubernetesObject[]): Promise<KubernetesObject[]> {
  const created: KubernetesObject[] = [];
  const applied: KubernetesObject[] = [];
  try {
    for (const object of objects) {
      const existed = await exists(api, object);
      applied.push(await apply(api, object));
      if (!existed) created.push(object);
    }
    return applied;
  } catch (error) {
    await rollback(api, created);
    throw error;
  }
}

export async function rollback(api: KubernetesObjectApi, created: KubernetesObject[]): Promise<void> {
  for (const object of [...created].reverse()) await remove(api, object).catch(() => undefined);
}
