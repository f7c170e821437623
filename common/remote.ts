// Calls to a remote cluster as the importer identity: mint tokens, revoke them, check health.
// Failures are classified into the reasons an import's status reports.
import { AuthenticationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, VersionApi } from "@kubernetes/client-node";
import { apiMessage, reuseConnections, statusCode } from "./kube.ts";
import { GRANT_POLICY_NAME, type GrantLimits, IDENTITY_TOKEN_SECONDS, type Importer, grantLimitsOf } from "./grant.ts";
import type { Registration } from "./registration.ts";

export type FailureReason =
  | "RemoteUnreachable"
  | "Unauthorized"
  /** RBAC: no grant of this service account to this cluster's importer at all. */
  | "Forbidden"
  /** The remote's grant policy: the import's grant is of another service account, or there is none in that namespace. */
  | "NotGranted"
  /** The remote's grant policy: the import asks for audiences or a lifetime beyond its grant. */
  | "GrantExceeded"
  | "NotFound"
  | "RemoteError"
  | "RegistrationMissing";

export class RemoteFailure extends Error {
  readonly reason: FailureReason;

  constructor(reason: FailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export function remoteConfig(reg: Pick<Registration, "clusterName" | "server" | "caPem" | "token">): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: reg.clusterName, server: reg.server, caData: Buffer.from(reg.caPem).toString("base64") }],
    users: [{ name: "importer", token: reg.token }],
    contexts: [{ name: reg.clusterName, cluster: reg.clusterName, user: "importer" }],
    currentContext: reg.clusterName,
  });
  return reuseConnections(kc);
}

export function classify(error: unknown, clusterName: string, what: string): RemoteFailure {
  const code = statusCode(error);
  const message = apiMessage(error);
  if (code === undefined) return new RemoteFailure("RemoteUnreachable", `cannot reach cluster "${clusterName}": ${message}`);
  if (code === 401) {
    return new RemoteFailure(
      "Unauthorized",
      `cluster "${clusterName}" no longer accepts this cluster's importer identity (401): run kubectl mcsa bootstrap again`,
    );
  }
  if (message.includes(`ValidatingAdmissionPolicy '${GRANT_POLICY_NAME}'`)) {
    // The remote's grant policy (grantPolicy) refused: 403 with its own message that says which
    // rule, or 422 when it could not be evaluated (no anchor in the namespace; params not synced).
    const rule = message.replace(/^.*? denied request: /s, "");
    if (/no params found/.test(rule)) {
      return new RemoteFailure("NotGranted", `cluster "${clusterName}" refuses ${what}: this cluster's importer has no grant in that namespace`);
    }
    if (/not yet synced/.test(rule)) return new RemoteFailure("RemoteUnreachable", `cluster "${clusterName}": its grant policy is starting (${rule})`);
    const exceeded = /allows (tokens of at most|the audiences)/.test(rule);
    return new RemoteFailure(exceeded ? "GrantExceeded" : "NotGranted", `cluster "${clusterName}" refuses ${what}: ${rule}`);
  }
  if (code === 403) return new RemoteFailure("Forbidden", `cluster "${clusterName}" forbids ${what}: ${message}`);
  if (code === 404) return new RemoteFailure("NotFound", `cluster "${clusterName}": ${message}`);
  if (code >= 500 || code === 429) return new RemoteFailure("RemoteUnreachable", `cluster "${clusterName}" answered ${code}: ${message}`);
  return new RemoteFailure("RemoteError", `cluster "${clusterName}": ${what} failed (${code}): ${message}`);
}

export interface MintedToken {
  token: string;
  issuedAt: Date;
  expiresAt: Date;
  /** What the anchor's grant allows, when asked for (readGrant) and readable. */
  grant?: GrantLimits;
}

export interface MintRequest {
  namespace: string;
  serviceAccount: string;
  expirationSeconds: number;
  audiences?: string[];
  /** Name of a Secret in the same namespace that the token is bound to. */
  anchor?: string;
  /** After minting, read what the anchor's grant allows (the grant's Role may get its anchor). */
  readGrant?: boolean;
}

export async function mintToken(kc: KubeConfig, clusterName: string, req: MintRequest): Promise<MintedToken> {
  const issuedAt = new Date();
  try {
    const result = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: req.serviceAccount,
      namespace: req.namespace,
      body: {
        spec: {
          audiences: req.audiences ?? [],
          expirationSeconds: req.expirationSeconds,
          boundObjectRef: req.anchor ? { apiVersion: "v1", kind: "Secret", name: req.anchor } : undefined,
        },
      },
    });
    const token = result.status?.token;
    const expiresAt = result.status?.expirationTimestamp ? new Date(result.status.expirationTimestamp) : undefined;
    if (!token || !expiresAt) throw new RemoteFailure("RemoteError", `cluster "${clusterName}" returned a TokenRequest without a token`);
    const grant = req.readGrant && req.anchor ? await readGrant(kc, req.namespace, req.anchor) : undefined;
    return { token, issuedAt, expiresAt, ...(grant && { grant }) };
  } catch (error) {
    if (error instanceof RemoteFailure) throw error;
    const what = `creating a token for service account ${req.namespace}/${req.serviceAccount}`;
    // The API server looks the bound object up: no anchor of that name in that namespace, no grant there.
    if (statusCode(error) === 404 && req.anchor && apiMessage(error).includes(`secrets "${req.anchor}"`)) {
      throw new RemoteFailure("NotGranted", `cluster "${clusterName}" refuses ${what}: the import has no grant in namespace ${req.namespace} (no anchor Secret ${req.anchor})`);
    }
    throw classify(error, clusterName, what);
  }
}

/**
 * What a grant allows, from its anchor's annotations; undefined when the anchor cannot be read
 * (a grant of before the Role could read it) or records nothing (before grants were enforced).
 */
export async function readGrant(kc: KubeConfig, namespace: string, anchor: string): Promise<GrantLimits | undefined> {
  try {
    return grantLimitsOf(await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: anchor, namespace }));
  } catch {
    return undefined;
  }
}

/**
 * Revokes a grant: deletes its anchor Secret (every token bound to it stops working), then its
 * RoleBinding (no new tokens; garbage collection usually got there first). Already gone is fine.
 */
export async function revokeGrant(kc: KubeConfig, clusterName: string, namespace: string, name: string): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({ name, namespace });
  } catch (error) {
    if (statusCode(error) !== 404) throw classify(error, clusterName, `deleting the grant ${namespace}/${name}`);
  }
  try {
    await kc.makeApiClient(RbacAuthorizationV1Api).deleteNamespacedRoleBinding({ name, namespace });
  } catch (error) {
    // 403: a grant from before this rule existed; the anchor's deletion already revoked it.
    if (statusCode(error) !== 404 && statusCode(error) !== 403) throw classify(error, clusterName, `deleting the grant ${namespace}/${name}`);
  }
}

/** An authenticated call: proves both that the remote answers and that it accepts our identity. */
export async function checkHealth(kc: KubeConfig, clusterName: string): Promise<RemoteFailure | undefined> {
  try {
    await kc.makeApiClient(VersionApi).getCode();
    return undefined;
  } catch (error) {
    return classify(error, clusterName, "reading its version");
  }
}

/** A new token for the importer identity itself, bound to its anchor (bootstrap, and renewal). */
export function mintIdentityToken(kc: KubeConfig, clusterName: string, importer: Importer): Promise<MintedToken> {
  return mintToken(kc, clusterName, {
    namespace: importer.namespace,
    serviceAccount: importer.serviceAccount,
    expirationSeconds: IDENTITY_TOKEN_SECONDS,
    anchor: importer.serviceAccount,
  });
}

/** What the remote made of a token: the user it authenticates as, refused (401), or no answer. */
export type TokenCheck =
  /** username: undefined when the server authenticated the token but has no SelfSubjectReview to say as whom (before 1.28). */
  | { kind: "user"; username?: string }
  | { kind: "rejected"; message: string }
  | { kind: "failed"; failure: RemoteFailure };

/**
 * Uses a token at the remote with a SelfSubjectReview made with the token itself (every
 * authenticated user may create one; it reads nothing): the cheapest proof that it works now.
 */
export async function checkToken(reg: Pick<Registration, "clusterName" | "server" | "caPem">, token: string): Promise<TokenCheck> {
  const kc = remoteConfig({ ...reg, token });
  try {
    const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } });
    return { kind: "user", username: review.status?.userInfo?.username ?? "" };
  } catch (error) {
    if (statusCode(error) === 401) return { kind: "rejected", message: `cluster "${reg.clusterName}" answered 401 Unauthorized` };
    // Authentication comes first: a 403 or 404 (no such API) means the token was accepted.
    if (statusCode(error) === 403 || statusCode(error) === 404) return { kind: "user" };
    return { kind: "failed", failure: classify(error, reg.clusterName, "reviewing the import's token") };
  }
}
