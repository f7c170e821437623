// A small typed client for ServiceAccountImports: the one place that spells out group, version
// and plural. Errors are client-node's (ApiException), so callers test them with isNotFound etc.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "./api.ts";
import type { ObjectMeta, ServiceAccountImport } from "./import-api.ts";
import { SharedInformer } from "./informer.ts";
import type { Logger } from "./log.ts";

const RESOURCE = { group: GROUP, version: VERSION, plural: PLURAL } as const;

/** Where the watch of every import in the cluster is. */
const WATCH_PATH = `/apis/${GROUP}/${VERSION}/${PLURAL}`;

export type ImportCache = SharedInformer<ServiceAccountImport>;

export class ImportClient {
  private readonly kc: KubeConfig;
  private readonly api: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  /** The imports of one namespace, or of every namespace, optionally only those a label selector picks. */
  async list(namespace?: string, labelSelector?: string, limit?: number): Promise<ServiceAccountImport[]> {
    const list = (namespace === undefined
      ? await this.api.listClusterCustomObject({ ...RESOURCE, labelSelector, limit })
      : await this.api.listNamespacedCustomObject({ ...RESOURCE, namespace, labelSelector, limit })) as { items?: ServiceAccountImport[] };
    return list.items ?? [];
  }

  async get(namespace: string, name: string): Promise<ServiceAccountImport> {
    return (await this.api.getNamespacedCustomObject({ ...RESOURCE, namespace, name })) as ServiceAccountImport;
  }

  async create(sai: ServiceAccountImport): Promise<ServiceAccountImport> {
    return (await this.api.createNamespacedCustomObject({ ...RESOURCE, namespace: namespaceOf(sai), body: sai })) as ServiceAccountImport;
  }

  /** Replaces the whole object (metadata and spec); fails with 409 if it changed since it was read. */
  async replace(sai: ServiceAccountImport): Promise<ServiceAccountImport> {
    const { namespace, name } = keyOf(sai);
    return (await this.api.replaceNamespacedCustomObject({ ...RESOURCE, namespace, name, body: sai })) as ServiceAccountImport;
  }

  /** Replaces the status subresource; fails with 409 if the object changed since it was read. */
  async replaceStatus(sai: ServiceAccountImport): Promise<ServiceAccountImport> {
    const { namespace, name } = keyOf(sai);
    return (await this.api.replaceNamespacedCustomObjectStatus({ ...RESOURCE, namespace, name, body: sai })) as ServiceAccountImport;
  }

  /** A JSON merge patch of metadata (a finalizer lifted, a rotation requested). */
  async patchMetadata(namespace: string, name: string, metadata: ObjectMeta): Promise<void> {
    await this.api.patchNamespacedCustomObject(
      { ...RESOURCE, namespace, name, body: { metadata } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  async delete(namespace: string, name: string): Promise<void> {
    await this.api.deleteNamespacedCustomObject({ ...RESOURCE, namespace, name });
  }

  /** A cache of every import in the cluster, kept by a watch; start it once, share it within the process. */
  cache(log: Logger): ImportCache {
    return new SharedInformer<ServiceAccountImport>(
      (track) => makeInformer<KubernetesObject>(this.kc, WATCH_PATH, track(() => this.api.listClusterCustomObject(RESOURCE) as never)),
      "service account imports",
      log,
    );
  }
}

function namespaceOf(sai: ServiceAccountImport): string {
  const namespace = sai.metadata.namespace;
  if (!namespace) throw new Error(`service account import ${sai.metadata.name ?? ""} has no namespace`);
  return namespace;
}

function keyOf(sai: ServiceAccountImport): { namespace: string; name: string } {
  const name = sai.metadata.name;
  if (!name) throw new Error("service account import has no name");
  return { namespace: namespaceOf(sai), name };
}
