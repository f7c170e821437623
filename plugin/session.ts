// What every command needs: the kubeconfig and context kubectl would use, the namespace, and the
// API calls the commands make, behind one interface (Session) so that unit tests give commands a
// fake one, and so that a typed ServiceAccountImport client can replace these calls in one place.
import { readFileSync } from "node:fs";
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  type V1Pod,
  type V1Secret,
  type V1SubjectRulesReviewStatus,
  type V1ServiceAccount,
  type V1UserInfo,
} from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { SYSTEM_NAMESPACE, type ObjectMeta, type ServiceAccountImport } from "../common/api.ts";
import type { GrantObjects, Importer } from "../common/grant.ts";
import { ImportClient } from "../common/import-client.ts";
import { UserError, contextNamespace, describeApiError, isNotFound, loadKubeConfig } from "../common/kube.ts";
import { CLUSTER_NAME_LABEL, type Registration, parseRegistration, registrationSecretName } from "../common/registration.ts";
import { mintIdentityToken, remoteConfig } from "../common/remote.ts";
import { applyAll, rollback } from "./apply.ts";
import { applyGrant, removeGrant } from "./remote-grants.ts";

export interface GlobalArgs {
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
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

/** What a remote cluster says of a token: who it is and what it may do in a namespace. */
export interface TokenReview {
  user?: V1UserInfo;
  rules?: V1SubjectRulesReviewStatus;
}

export interface ClusterInfo {
  name: string;
  server: string;
  caPem?: string;
}

export interface Session {
  readonly namespace: string;
  readonly contextName: string;
  /** The API server's URL, for messages and to tell two contexts apart. */
  readonly server: string;
  /** The kubeconfig, for the commands that build many objects (install, bootstrap, unbootstrap). */
  readonly kc: KubeConfig;
  /** The context's cluster: its kubeconfig name, URL and CA (PEM), which bootstrap and export pass on. */
  cluster(): ClusterInfo;
  /** An API failure as one user error naming the context. */
  fail(error: unknown, what: string): never;
  getImport(name: string, namespace?: string): Promise<ServiceAccountImport>;
  listImports(allNamespaces: boolean, labelSelector?: string): Promise<ServiceAccountImport[]>;
  createImport(sai: ServiceAccountImport): Promise<void>;
  /** Deletes; false if it was already gone. */
  deleteImport(name: string, namespace: string): Promise<boolean>;
  patchImportMetadata(name: string, namespace: string, metadata: ObjectMeta): Promise<void>;
  /** The registration bootstrap wrote for a remote cluster, if any. */
  readRegistration(clusterName: string): Promise<Registration | undefined>;
  listRegistrations(): Promise<Registration[]>;
  readSecret(name: string, namespace: string): Promise<V1Secret>;
  listPods(namespace?: string): Promise<V1Pod[]>;
  listNamespaces(): Promise<string[]>;
  listEvents(namespace: string, fieldSelector: string): Promise<CoreV1Event[]>;
  readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined>;
  /** The uid of kube-system: what tells two clusters apart whatever their kubeconfig names. */
  clusterUid(): Promise<string | undefined>;
  /** Applies objects in order (server-side apply); on failure deletes what this call created. */
  applyAll(objects: KubernetesObject[]): Promise<void>;
  /** A token of the importer identity in this (remote) cluster, for the registration. */
  mintIdentityToken(clusterName: string, importer: Importer): Promise<string>;
  /** Applies a grant (anchor first); returns what this call created, for rollback. */
  applyGrant(build: (anchorUid?: string) => GrantObjects, extra?: KubernetesObject[]): Promise<KubernetesObject[]>;
  removeGrant(grant: GrantObjects): Promise<boolean>;
  rollback(created: KubernetesObject[]): Promise<void>;
  createToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds: number): Promise<{ token: string; expirationTimestamp: string }>;
  /** Asks a remote server, with an import's token, who it is and what it may do in `namespace`. */
  reviewToken(remote: Pick<Registration, "clusterName" | "server" | "caPem" | "token">, namespace: string): Promise<TokenReview>;
}

export class KubeSession implements Session {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly contextName: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
    this.contextName = kc.getCurrentContext();
  }

  /** The primary session takes every global flag; another context (--from, --remote-context) only the file. */
  static open(args: GlobalArgs, context?: string): KubeSession {
    const primary = context === undefined;
    const kc = loadKubeConfig(
      primary ? { kubeconfig: args.kubeconfig, context: args.context, cluster: args.cluster, user: args.user } : { kubeconfig: args.kubeconfig, context },
    );
    return new KubeSession(kc, (primary && args.namespace) || contextNamespace(kc));
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? "the API server";
  }

  private get core(): CoreV1Api {
    return this.kc.makeApiClient(CoreV1Api);
  }

  private get imports(): ImportClient {
    return new ImportClient(this.kc);
  }

  private get objects(): KubernetesObjectApi {
    return KubernetesObjectApi.makeApiClient(this.kc);
  }

  cluster(): ClusterInfo {
    const cluster = this.kc.getCurrentCluster()!;
    const caPem = cluster.caData ? Buffer.from(cluster.caData, "base64").toString("utf8") : cluster.caFile ? readFileSync(cluster.caFile, "utf8") : undefined;
    return { name: cluster.name, server: cluster.server, ...(caPem ? { caPem } : {}) };
  }

  fail(error: unknown, what: string): never {
    if (error instanceof UserError) throw error;
    throw new UserError(describeApiError(error, `${what} (context "${this.contextName}")`, this.server));
  }

  async getImport(name: string, namespace = this.namespace): Promise<ServiceAccountImport> {
    try {
      return await this.imports.get(namespace, name);
    } catch (error) {
      if (isNotFound(error)) throw this.notFound(error, name, namespace);
      this.fail(error, `reading serviceaccountimport "${name}"`);
    }
  }

  async listImports(allNamespaces: boolean, labelSelector?: string): Promise<ServiceAccountImport[]> {
    try {
      return await this.imports.list(allNamespaces ? undefined : this.namespace, labelSelector);
    } catch (error) {
      if (isNotFound(error)) throw crdMissing(this.contextName);
      this.fail(error, "listing serviceaccountimports");
    }
  }

  async createImport(sai: ServiceAccountImport): Promise<void> {
    const namespace = sai.metadata.namespace ?? this.namespace;
    try {
      await this.imports.create({ ...sai, metadata: { ...sai.metadata, namespace } });
    } catch (error) {
      if (isNotFound(error)) throw this.notFound(error, "", namespace);
      this.fail(error, `creating serviceaccountimport "${sai.metadata.name}"`);
    }
  }

  async deleteImport(name: string, namespace: string): Promise<boolean> {
    try {
      await this.imports.delete(namespace, name);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      this.fail(error, `deleting serviceaccountimport "${name}"`);
    }
  }

  async patchImportMetadata(name: string, namespace: string, metadata: ObjectMeta): Promise<void> {
    try {
      await this.imports.patchMetadata(namespace, name, metadata);
    } catch (error) {
      this.fail(error, `updating serviceaccountimport "${name}"`);
    }
  }

  async readRegistration(clusterName: string): Promise<Registration | undefined> {
    try {
      return parseRegistration(await this.core.readNamespacedSecret({ name: registrationSecretName(clusterName), namespace: SYSTEM_NAMESPACE }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      this.fail(error, `reading the registration of cluster "${clusterName}"`);
    }
  }

  async listRegistrations(): Promise<Registration[]> {
    try {
      const secrets = await this.core.listNamespacedSecret({ namespace: SYSTEM_NAMESPACE, labelSelector: CLUSTER_NAME_LABEL });
      return secrets.items.map(parseRegistration);
    } catch (error) {
      if (isNotFound(error)) return [];
      this.fail(error, "listing registered clusters");
    }
  }

  async readSecret(name: string, namespace: string): Promise<V1Secret> {
    return this.core.readNamespacedSecret({ name, namespace });
  }

  async listPods(namespace?: string): Promise<V1Pod[]> {
    return (namespace ? await this.core.listNamespacedPod({ namespace }) : await this.core.listPodForAllNamespaces()).items;
  }

  async listNamespaces(): Promise<string[]> {
    return (await this.core.listNamespace()).items.map((n) => n.metadata!.name!);
  }

  async listEvents(namespace: string, fieldSelector: string): Promise<CoreV1Event[]> {
    return (await this.core.listNamespacedEvent({ namespace, fieldSelector })).items;
  }

  async readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined> {
    try {
      return await this.core.readNamespacedServiceAccount({ name, namespace });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      this.fail(error, `reading service account ${namespace}/${name}`);
    }
  }

  clusterUid(): Promise<string | undefined> {
    return this.core.readNamespace({ name: "kube-system" }).then(
      (ns) => ns.metadata?.uid,
      () => undefined,
    );
  }

  async applyAll(objects: KubernetesObject[]): Promise<void> {
    await applyAll(this.objects, objects);
  }

  async mintIdentityToken(clusterName: string, importer: Importer): Promise<string> {
    return (await mintIdentityToken(this.kc, clusterName, importer)).token;
  }

  applyGrant(build: (anchorUid?: string) => GrantObjects, extra?: KubernetesObject[]): Promise<KubernetesObject[]> {
    return applyGrant(this.objects, build, extra);
  }

  removeGrant(grant: GrantObjects): Promise<boolean> {
    return removeGrant(this.objects, grant);
  }

  rollback(created: KubernetesObject[]): Promise<void> {
    return rollback(this.objects, created);
  }

  async createToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds: number) {
    const result = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences, expirationSeconds } },
    });
    return { token: result.status?.token ?? "", expirationTimestamp: new Date(result.status!.expirationTimestamp!).toISOString().replace(/\.\d{3}Z$/, "Z") };
  }

  async reviewToken(remote: Pick<Registration, "clusterName" | "server" | "caPem" | "token">, namespace: string): Promise<TokenReview> {
    const kc = remoteConfig(remote);
    const who = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } });
    let rules;
    try {
      rules = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace } } });
    } catch (error) {
      throw new UserError(describeApiError(error, `listing what the import may do in namespace "${namespace}"`, remote.server));
    }
    return { user: who.status?.userInfo, rules: rules.status };
  }

  /** A 404 is either the import missing or the whole API (CRD) missing: say which. */
  notFound(error: unknown, name: string, namespace: string): UserError {
    const body = String((error as { body?: unknown }).body ?? "");
    if (body.includes('"kind":"namespaces"')) return new UserError(`namespace "${namespace}" not found (context "${this.contextName}")`);
    if (body.includes(`"name":"${name}"`)) return importNotFound(name, namespace, this.contextName);
    return crdMissing(this.contextName);
  }
}

export function importNotFound(name: string, namespace: string, context: string): UserError {
  return new UserError(`serviceaccountimport "${name}" not found in namespace "${namespace}" (context "${context}")`);
}

export function isImportNotFound(error: unknown): boolean {
  return error instanceof UserError && /^serviceaccountimport ".*" not found in namespace/.test(error.message);
}

export function crdMissing(context: string): UserError {
  return new UserError(`the ServiceAccountImport API is not installed in context "${context}": run kubectl mcsa install --context ${context}`);
}
