// The webhook's view of the cluster: namespace labels and ServiceAccountImports. Informers keep a
// cache so that most admissions need no API call; the cache is only trusted when it says yes
// (the namespace is labelled, the import is ready). Anything else is read with a GET, so that an
// import created or made ready a moment ago is found even before its watch event arrives.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
  VersionApi,
  makeInformer,
} from "@kubernetes/client-node";
import { GROUP, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, PLURAL, type ServiceAccountImport, VERSION, isReady } from "../common/api.ts";
import { apiMessage, isNotFound } from "../common/kube.ts";
import type { Logger } from "../common/log.ts";
import { keepRunning } from "../common/informer.ts";
import type { Lookup } from "./admission.ts";

/** Reads of the API that take longer than this fail the admission with a clear message. */
const GET_TIMEOUT_MS = 3_000;

function timeout<T>(work: Promise<T>, what: string, ms = GET_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server in ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface LookupStats {
  cacheHits: number;
  gets: number;
}

export class ClusterLookup implements Lookup {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private namespaces: ObjectCache<KubernetesObject> | undefined;
  private imports: ObjectCache<KubernetesObject> | undefined;
  private readonly runners: { stop(): Promise<void> }[] = [];
  readonly stats: LookupStats = { cacheHits: 0, gets: 0 };

  constructor(kc: KubeConfig, log: Logger) {
    this.kc = kc;
    this.log = log;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  /**
   * Starts the informers: labelled namespaces only (the webhook acts nowhere else), and every
   * import. Resolves once both have listed; a failure to list is logged, not fatal: look-ups then
   * fall back to GETs until the watch recovers.
   */
  async start(): Promise<void> {
    const selector = `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`;
    const namespaces = makeInformer<KubernetesObject>(
      this.kc,
      "/api/v1/namespaces",
      () => this.core.listNamespace({ labelSelector: selector }) as never,
      selector,
    );
    const imports = makeInformer<KubernetesObject>(
      this.kc,
      `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      () => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as never,
    );
    this.runners.push(keepRunning(namespaces, "labelled namespaces", this.log), keepRunning(imports, "service account imports", this.log));
    this.namespaces = namespaces;
    this.imports = imports;
    const results = await Promise.allSettled([namespaces.start(), imports.start()]);
    for (const r of results) {
      if (r.status === "rejected") this.log.warn("webhook cache not filled; reading the API on every admission until it is", { error: apiMessage(r.reason) });
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
  }

  async namespaceLabels(namespace: string): Promise<Record<string, string> | undefined> {
    const cached = this.namespaces?.get(namespace)?.metadata?.labels;
    if (cached?.[NAMESPACE_LABEL] === NAMESPACE_LABEL_VALUE) {
      this.stats.cacheHits++;
      return cached;
    }
    this.stats.gets++;
    try {
      const ns = await timeout(this.core.readNamespace({ name: namespace }), `reading namespace ${namespace}`);
      return ns.metadata?.labels ?? {};
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(apiMessage(error), { cause: error });
    }
  }

  async serviceAccountImport(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    const cached = this.imports?.get(name, namespace) as unknown as ServiceAccountImport | undefined;
    if (cached !== undefined && isReady(cached)) {
      this.stats.cacheHits++;
      return cached;
    }
    this.stats.gets++;
    try {
      return (await timeout(
        this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }),
        `reading serviceaccountimport ${namespace}/${name}`,
      )) as ServiceAccountImport;
    } catch (error) {
      if (isNotFound(error)) return undefined;
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
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 1 || (major === 1 && minor >= 29);
}

/** The API server's version (e.g. v1.37.2), from /version. */
export async function serverVersion(kc: KubeConfig): Promise<string> {
  const info = await timeout(kc.makeApiClient(VersionApi).getCode(), "reading the server version", 10_000);
  return info.gitVersion;
}
