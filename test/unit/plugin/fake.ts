// A fake Session and CommandEnv: every command runs in a unit test, its output captured, its
// API calls answered from memory. What a test does not set up answers as a cluster would (404s).
import { ApiException, type KubeConfig, type KubernetesObject, type V1Pod, type V1Secret, type V1ServiceAccount } from "@kubernetes/client-node";
import type { ObjectMeta, ServiceAccountImport } from "../../../common/api.ts";
import { UserError } from "../../../common/errors.ts";
import type { GrantObjects, Importer } from "../../../common/grant.ts";
import type { Registration } from "../../../common/registration.ts";
import type { CommandEnv } from "../../../plugin/env.ts";
import { main } from "../../../plugin/main.ts";
import { type ClusterInfo, type GlobalArgs, type Session, type TokenReview, crdMissing, importNotFound } from "../../../plugin/session.ts";

export class Captured {
  text = "";
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  get lines(): string[] {
    return this.text.split("\n").filter((l, i, all) => l !== "" || i < all.length - 1);
  }
}

export interface FakeCluster {
  context: string;
  namespace?: string;
  server?: string;
  clusterName?: string;
  caPem?: string;
  uid?: string;
  imports?: ServiceAccountImport[];
  registrations?: Registration[];
  secrets?: V1Secret[];
  pods?: V1Pod[];
  serviceAccounts?: V1ServiceAccount[];
  crdMissing?: boolean;
  review?: TokenReview;
  namespaces?: string[];
}

/** What the fake cluster was asked to change, in order. */
export type Call = [string, ...unknown[]];

export class FakeSession implements Session {
  readonly calls: Call[] = [];
  readonly namespace: string;
  readonly contextName: string;
  readonly server: string;
  readonly state: FakeCluster;
  constructor(state: FakeCluster, namespace?: string) {
    this.state = state;
    this.namespace = namespace ?? state.namespace ?? "default";
    this.contextName = state.context;
    this.server = state.server ?? `https://${state.context}.test:6443`;
  }
  get kc(): KubeConfig {
    throw new Error("FakeSession has no kubeconfig: this command path needs a real cluster (e2e)");
  }
  cluster(): ClusterInfo {
    return { name: this.state.clusterName ?? this.contextName, server: this.server, ...(this.state.caPem ? { caPem: this.state.caPem } : {}) };
  }
  fail(error: unknown, what: string): never {
    if (error instanceof UserError) throw error;
    throw new UserError(`${what} (context "${this.contextName}"): ${(error as Error).message}`);
  }
  private imports(): ServiceAccountImport[] {
    if (this.state.crdMissing) throw crdMissing(this.contextName);
    return (this.state.imports ??= []);
  }
  async getImport(name: string, namespace = this.namespace): Promise<ServiceAccountImport> {
    const found = this.imports().find((i) => i.metadata.name === name && (i.metadata.namespace ?? "default") === namespace);
    if (!found) throw importNotFound(name, namespace, this.contextName);
    return found;
  }
  async listImports(allNamespaces: boolean, labelSelector?: string): Promise<ServiceAccountImport[]> {
    this.calls.push(["listImports", allNamespaces, labelSelector]);
    return this.imports().filter((i) => allNamespaces || (i.metadata.namespace ?? "default") === this.namespace);
  }
  async createImport(sai: ServiceAccountImport): Promise<void> {
    this.calls.push(["createImport", sai]);
    this.imports().push(sai);
  }
  async deleteImport(name: string, namespace: string): Promise<boolean> {
    this.calls.push(["deleteImport", namespace, name]);
    const before = this.imports().length;
    this.state.imports = this.imports().filter((i) => !(i.metadata.name === name && i.metadata.namespace === namespace));
    return this.state.imports.length < before;
  }
  async patchImportMetadata(name: string, namespace: string, metadata: ObjectMeta): Promise<void> {
    this.calls.push(["patchImportMetadata", namespace, name, metadata]);
  }
  async readRegistration(clusterName: string): Promise<Registration | undefined> {
    return this.state.registrations?.find((r) => r.clusterName === clusterName);
  }
  async listRegistrations(): Promise<Registration[]> {
    return this.state.registrations ?? [];
  }
  async readSecret(name: string, namespace: string): Promise<V1Secret> {
    const found = this.state.secrets?.find((s) => s.metadata?.name === name && s.metadata?.namespace === namespace);
    if (!found) throw notFound();
    return found;
  }
  async listPods(namespace?: string): Promise<V1Pod[]> {
    return (this.state.pods ?? []).filter((p) => namespace === undefined || p.metadata?.namespace === namespace);
  }
  async listNamespaces(): Promise<string[]> {
    return this.state.namespaces ?? ["default", "kube-system"];
  }
  async listEvents(): Promise<never[]> {
    return [];
  }
  async readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined> {
    return this.state.serviceAccounts?.find((s) => s.metadata?.name === name && s.metadata?.namespace === namespace);
  }
  async clusterUid(): Promise<string | undefined> {
    return this.state.uid;
  }
  async applyAll(objects: KubernetesObject[]): Promise<void> {
    this.calls.push(["applyAll", objects]);
  }
  async mintIdentityToken(_clusterName: string, _importer: Importer): Promise<string> {
    return "minted-identity-token";
  }
  async applyGrant(build: (anchorUid?: string) => GrantObjects): Promise<KubernetesObject[]> {
    const grant = build("anchor-uid");
    this.calls.push(["applyGrant", grant]);
    return [grant.anchor];
  }
  async removeGrant(grant: GrantObjects): Promise<boolean> {
    this.calls.push(["removeGrant", grant]);
    return true;
  }
  async rollback(created: KubernetesObject[]): Promise<void> {
    this.calls.push(["rollback", created]);
  }
  async createToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds: number) {
    this.calls.push(["createToken", namespace, serviceAccount, audiences, expirationSeconds]);
    if (!this.state.serviceAccounts?.some((s) => s.metadata?.name === serviceAccount && s.metadata?.namespace === namespace)) {
      throw notFound();
    }
    return { token: "exported-token", expirationTimestamp: "2026-01-01T01:00:00Z" };
  }
  async reviewToken(): Promise<TokenReview> {
    return this.state.review ?? {};
  }
}

export interface FakeRun {
  code: number;
  out: string;
  err: string;
  sessions: Map<string, FakeSession>;
}

/** Runs one command line against fake clusters, one per context; the first is the current one. */
export async function run(argv: string[], clusters: FakeCluster[] = [{ context: "cluster1" }], now = new Date("2026-01-01T00:10:00Z")): Promise<FakeRun> {
  const out = new Captured();
  const err = new Captured();
  const sessions = new Map<string, FakeSession>();
  let clock = now.getTime();
  const env: CommandEnv = {
    out,
    err,
    open(args: GlobalArgs, context?: string) {
      const name = context ?? args.context ?? clusters[0]!.context;
      const state = clusters.find((c) => c.context === name);
      if (!state) throw new UserError(`context "${name}" not found in kubeconfig`);
      const session = sessions.get(name) ?? new FakeSession(state, context === undefined ? args.namespace : undefined);
      sessions.set(name, session);
      return session;
    },
    now: () => new Date(clock),
    sleep: async (ms) => {
      clock += ms;
    },
  };
  const code = await main(argv, env);
  return { code, out: out.text, err: err.text, sessions };
}

export function sai(name: string, o: Partial<{ namespace: string; cluster: string; sa: string; ready: boolean; labels: Record<string, string> }> = {}): ServiceAccountImport {
  return {
    apiVersion: "multicluster.admiralty.io/v1alpha1",
    kind: "ServiceAccountImport",
    metadata: {
      name,
      namespace: o.namespace ?? "default",
      creationTimestamp: "2026-01-01T00:00:00Z",
      ...(o.labels ? { labels: o.labels } : {}),
      managedFields: [{ manager: "kubectl-mcsa" }],
    } as ObjectMeta,
    spec: { clusterName: o.cluster ?? "cluster2", namespace: "default", name: o.sa ?? "pod-lister" },
    status:
      o.ready === false
        ? undefined
        : {
            secrets: [{ name: `${name}-token-abcde` }],
            expirationTimestamp: "2026-01-01T01:00:00Z",
            issuedAt: "2026-01-01T00:00:00Z",
            conditions: [{ type: "Ready", status: "True", reason: "TokenIssued", message: "ok", lastTransitionTime: "2026-01-01T00:00:01Z" }],
          },
  };
}

export function registration(clusterName: string, importer = "mcsa-importer-cluster1", server = "https://cluster2.test:6443"): Registration {
  return { clusterName, server, caPem: "CA", token: "identity-token", importer: { namespace: "multicluster-service-account", serviceAccount: importer } };
}

export function pod(name: string, imports: string, namespace = "default"): V1Pod {
  return { metadata: { name, namespace, annotations: { "multicluster.admiralty.io/service-account-import.name": imports } } };
}

/** One line on stderr, "error: …", exit 1, nothing on stdout: the house rule for bad input. */
export function expectOneLineError(result: FakeRun): string {
  if (result.code !== 1) throw new Error(`exit ${result.code}, expected 1 (stdout: ${result.out})`);
  if (result.out !== "") throw new Error(`stdout not empty: ${result.out}`);
  const lines = result.err.trimEnd().split("\n");
  if (lines.length !== 1 || !lines[0]!.startsWith("error: ")) throw new Error(`not one "error: " line: ${JSON.stringify(result.err)}`);
  return lines[0]!;
}

function notFound(): ApiException<string> {
  return new ApiException(404, "not found", '{"kind":"Status","code":404,"message":"not found"}', {});
}
