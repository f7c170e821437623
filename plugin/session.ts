// What every command needs: the kubeconfig and context kubectl would use, the namespace, clients.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  KubernetesObjectApi,
} from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { GROUP, PLURAL, type ServiceAccountImport, VERSION } from "../common/api.ts";
import { UserError, contextNamespace, describeApiError, isNotFound, loadKubeConfig } from "../common/kube.ts";

export interface GlobalArgs {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  "all-namespaces"?: boolean;
}

/** The args of a command that acts on one import, named by its first positional. */
export interface NameArgs extends GlobalArgs {
  name: string;
}

export function withName<T extends GlobalArgs>(y: Argv<T>, describe = "the import's name"): Argv<T & { name: string }> {
  return y.positional("name", { type: "string", demandOption: true, describe }) as unknown as Argv<T & { name: string }>;
}

export class Session {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly contextName: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
    this.contextName = kc.getCurrentContext();
  }

  static open(args: GlobalArgs, context = args.context): Session {
    const kc = loadKubeConfig({ kubeconfig: args.kubeconfig, context });
    return new Session(kc, args.namespace || contextNamespace(kc));
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? "the API server";
  }

  get core(): CoreV1Api {
    return this.kc.makeApiClient(CoreV1Api);
  }

  get custom(): CustomObjectsApi {
    return this.kc.makeApiClient(CustomObjectsApi);
  }

  get objects(): KubernetesObjectApi {
    return KubernetesObjectApi.makeApiClient(this.kc);
  }

  /** Turns an API failure into a one-line user error naming the context. */
  fail(error: unknown, what: string): never {
    if (error instanceof UserError) throw error;
    throw new UserError(describeApiError(error, `${what} (context "${this.contextName}")`, this.server));
  }

  async getImport(name: string, namespace = this.namespace): Promise<ServiceAccountImport> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as ServiceAccountImport;
    } catch (error) {
      if (isNotFound(error)) throw this.notFound(error, name, namespace);
      this.fail(error, `reading serviceaccountimport "${name}"`);
    }
  }

  async listImports(allNamespaces: boolean): Promise<ServiceAccountImport[]> {
    try {
      const list = (allNamespaces
        ? await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
        : await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: this.namespace })) as {
        items: ServiceAccountImport[];
      };
      return list.items;
    } catch (error) {
      if (isNotFound(error)) throw crdMissing(this.contextName);
      this.fail(error, "listing serviceaccountimports");
    }
  }

  /** A 404 is either the import missing or the whole API (CRD) missing: say which. */
  notFound(error: unknown, name: string, namespace: string): UserError {
    const body = String((error as { body?: unknown }).body ?? "");
    if (body.includes('"kind":"namespaces"')) return new UserError(`namespace "${namespace}" not found (context "${this.contextName}")`);
    if (body.includes(`"name":"${name}"`)) {
      return new UserError(`serviceaccountimport "${name}" not found in namespace "${namespace}" (context "${this.contextName}")`);
    }
    return crdMissing(this.contextName);
  }
}

export function crdMissing(context: string): UserError {
  return new UserError(`the ServiceAccountImport API is not installed in context "${context}": run kubectl mcsa install --context ${context}`);
}
