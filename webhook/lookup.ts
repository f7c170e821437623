// The webhook's view of the cluster: namespace labels and ServiceAccountImports. Informers keep a
// cache so that most admissions need no API call (the imports' cache is the one the controller
// reads too); the cache is only trusted when it says yes (the namespace is labelled, the import is
// ready). Anything else is read with a GET, so that an import created or made ready a moment ago
// is found even before its watch event arrives.
import { CoreV1Api, type KubeConfig, type V1Namespace, makeInformer } from "@kubernetes/client-node";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, type ServiceAccountImport, isReady } from "../common/api.ts";
import { withTimeout } from "../common/deadline.ts";
import { type ImportCache, ImportClient } from "../common/import-client.ts";
import { SharedInformer } from "../common/informer.ts";
import { apiMessage, isConflict, isNotFound } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { versionAtLeast } from "../common/version.ts";
import type { Lookup } from "./admission.ts";

/** Reads of the API that take longer than this fail the admission with a clear message. */
const GET_TIMEOUT_MS = 3_000;
/** A uid no object has (the API server generates random v4 UUIDs). */
export const NO_SUCH_UID = "00000000-0000-0000-0000-000000000000";

export class ClusterLookup implements Lookup {
  private readonly core: CoreV1Api;
  private readonly client: ImportClient;
  private readonly log: Logger;
  private readonly namespaces: SharedInformer<V1Namespace>;
  private readonly imports: ImportCache;

  /** imports: the process's one cache of imports (started here if nobody has yet). */
  constructor(kc: KubeConfig, log: Logger, imports: ImportCache) {
    this.log = log;
    this.core = kc.makeApiClient(CoreV1Api);
    this.client = new ImportClient(kc);
    this.imports = imports;
    // Labelled namespaces only: the webhook acts nowhere else.
    const selector = `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`;
    this.namespaces = new SharedInformer<V1Namespace>(
      (track) => makeInformer<V1Namespace>(kc, "/api/v1/namespaces", track(() => this.core.listNamespace({ labelSelector: selector })), selector),
      "labelled namespaces",
      log,
    );
  }

  /**
   * Starts the caches. Resolves once both have listed; a failure to list is logged, not fatal:
   * look-ups then fall back to GETs until the watch recovers.
   */
  async start(): Promise<void> {
    const results = await Promise.allSettled([this.namespaces.start(), this.imports.start()]);
    for (const r of results) {
      if (r.status === "rejected") this.log.warn("webhook cache not filled; reading the API on every admission until it is", { error: apiMessage(r.reason) });
    }
  }

  /** Stops the namespaces' cache; the imports' cache is its owner's to stop. */
  async stop(): Promise<void> {
    await this.namespaces.stop();
  }

  async namespaceLabels(namespace: string): Promise<Record<string, string> | undefined> {
    const cached = this.namespaces.get(namespace)?.metadata?.labels;
    if (cached?.[NAMESPACE_LABEL] === NAMESPACE_LABEL_VALUE) return cached;
    try {
      const ns = await withTimeout(this.core.readNamespace({ name: namespace }), `reading namespace ${namespace}`, GET_TIMEOUT_MS);
      return ns.metadata?.labels ?? {};
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(apiMessage(error), { cause: error });
    }
  }

  async serviceAccountImport(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    const cached = this.imports.get(name, namespace);
    if (cached !== undefined && isReady(cached)) return cached;
    try {
      return await withTimeout(this.client.get(namespace, name), `reading serviceaccountimport ${namespace}/${name}`, GET_TIMEOUT_MS);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(apiMessage(error), { cause: error });
    }
  }

  /**
   * Whether the Secret exists, without reading it (the webhook's identity has no get on Secrets):
   * a dry-run delete whose uid precondition matches no object. The API server answers 404 when
   * there is no such Secret and 409 when there is, both before admission runs; nothing is deleted
   * (the precondition fails, it is a dry run, and the admission policy refuses every Secret write
   * of the webhook's identity anyway).
   */
  async secretExists(namespace: string, name: string): Promise<boolean> {
    try {
      await withTimeout(
        this.core.deleteNamespacedSecret({ name, namespace, dryRun: "All", body: { preconditions: { uid: NO_SUCH_UID } } }),
        `looking for Secret ${namespace}/${name}`,
        GET_TIMEOUT_MS,
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      if (isConflict(error)) return true;
      throw new Error(apiMessage(error), { cause: error });
    }
  }
}

/** An in-memory Lookup: for tests and the benchmark, which measure the webhook without an API server. */
export class StaticLookup implements Lookup {
  private readonly labels: Map<string, Record<string, string>>;
  private readonly imports: Map<string, ServiceAccountImport>;
  constructor(labels: Record<string, Record<string, string>>, imports: ServiceAccountImport[]) {
    this.labels = new Map(Object.entries(labels));
    this.imports = new Map(imports.map((i) => [`${i.metadata.namespace}/${i.metadata.name}`, i]));
  }
  namespaceLabels(namespace: string): Record<string, string> | undefined {
    return this.labels.get(namespace);
  }
  serviceAccountImport(namespace: string, name: string): ServiceAccountImport | undefined {
    return this.imports.get(`${namespace}/${name}`);
  }
}

/** Native sidecars (init containers with restartPolicy Always) are on by default from Kubernetes 1.29. */
export function supportsNativeSidecars(gitVersion: string): boolean {
  return versionAtLeast(gitVersion, 1, 29);
}
