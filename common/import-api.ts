// Changing a ServiceAccountImport's metadata with a JSON merge patch: the controller lifting its
// finalizer, and \`kubectl mcsa rotate\` asking for a new token.
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, type ObjectMeta, PLURAL, VERSION } from "./api.ts";

export async function patchImportMetadata(custom: CustomObjectsApi, namespace: string, name: string, metadata: ObjectMeta): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: { metadata } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}
