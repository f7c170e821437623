// The controller's only way to the import Secrets: read, create, update and delete exactly the
// Secret an import owns. The controller's identity has no `get` on Secrets (RBAC would give it
// every Secret in the cluster); it writes with create/update/patch/delete, and a
// ValidatingAdmissionPolicy installed with it (common/manifests.ts managerSecretsPolicy) lets
// those through only for import Secrets: Opaque, labelled with and owned by a ServiceAccountImport,
// outside the system namespace. Reading goes through the same check: an empty merge patch (`{}`)
// changes nothing, so the API server writes nothing (the resourceVersion stays), but it is an
// UPDATE that admission sees, so a foreign Secret is refused and an import Secret comes back whole.
import { CoreV1Api, type KubeConfig, PatchStrategy, type V1Secret, setHeaderOptions } from "@kubernetes/client-node";
import type { ServiceAccountImport } from "../common/api.ts";
import { SECRETS_POLICY } from "../common/manifests.ts";
import { importSecretName, importSecretSkeleton } from "../common/import-secret.ts";
import { apiMessage, isConflict, isNotFound, statusCode } from "../common/kube.ts";
import { secretView } from "./plan.ts";

/** The body of a read: a merge patch that changes nothing. */
export const NO_OP_PATCH = {} as const;

export class ImportSecrets {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** The Secret, through admission (a no-op patch); undefined when it does not exist. */
  async read(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.patchNamespacedSecret({ name, namespace, body: NO_OP_PATCH }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * The Secret the import names in its status, else the one it would create; undefined if neither
   * exists, or if the one its status names is not an import Secret (the policy refuses to let us
   * read it): not ours either way, so the plan writes the import's own Secret.
   */
  async readFor(sai: ServiceAccountImport): Promise<V1Secret | undefined> {
    const name = sai.status?.secrets?.[0]?.name ?? importSecretName(sai.metadata.name!, sai.metadata.uid!);
    try {
      return await this.read(sai.metadata.namespace!, name);
    } catch (error) {
      if (statusCode(error) === 403 && apiMessage(error).includes(`ValidatingAdmissionPolicy '${SECRETS_POLICY}'`)) return undefined;
      throw error;
    }
  }

  /** Updates the import's Secret in place (pods' volumes follow it), or creates it. */
  async write(sai: ServiceAccountImport, existing: V1Secret | undefined, data: Record<string, string>): Promise<void> {
    const namespace = sai.metadata.namespace!;
    let current = existing;
    if (current === undefined) {
      const name = importSecretName(sai.metadata.name!, sai.metadata.uid!);
      try {
        await this.core.createNamespacedSecret({ namespace, body: { ...importSecretSkeleton(sai), data } });
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
        // Created by an earlier attempt whose status write failed: ours by its name; take it over.
        // A foreign Secret of that name is refused by admission: reading it fails as not ours.
        current = await this.read(namespace, name).catch(() => undefined);
        if (current === undefined || secretView(current, sai) === undefined) {
          throw new Error(`Secret ${namespace}/${name} exists and is not owned by this import`, { cause: error });
        }
      }
    }
    current.data = data;
    await this.core.replaceNamespacedSecret({ name: current.metadata!.name!, namespace, body: current });
  }

  /** Deletes the Secret; already gone counts as done. */
  async delete(namespace: string, name: string): Promise<void> {
    try {
      await this.core.deleteNamespacedSecret({ name, namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
