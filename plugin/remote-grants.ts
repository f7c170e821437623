// Writing and removing grants in a remote cluster, as its admin (the user's kubeconfig context).
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type V1Namespace,
  type V1PolicyRule,
  type V1Role,
} from "@kubernetes/client-node";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import {
  DEFAULT_GRANT_MAX_EXPIRATION_SECONDS,
  GRANT_FOR_ANNOTATION,
  type GrantLimits,
  type GrantObjects,
  IMPORTER_LABEL,
  type Importer,
  grantAnnotations,
  grantLimitsOf,
  grantPolicy,
} from "../common/grant.ts";
import { tokenClaims } from "../common/import-secret.ts";
import { isNotFound } from "../common/kube.ts";
import { apply, exists, remove, rollback } from "./apply.ts";

/**
 * Applies the anchor first, then the Role and RoleBinding owned by it (so deleting the anchor
 * garbage-collects them). Returns what this call created, for the caller to undo on failure.
 */
export async function applyGrant(
  api: KubernetesObjectApi,
  build: (anchorUid?: string) => GrantObjects,
  extra: KubernetesObject[] = [],
): Promise<KubernetesObject[]> {
  const created: KubernetesObject[] = [];
  const step = async <T extends KubernetesObject>(object: T): Promise<T> => {
    const existed = await exists(api, object);
    const result = await apply(api, object);
    if (!existed) created.push(object);
    return result;
  };
  try {
    for (const object of extra) await step(object);
    const anchor = await step(build().anchor);
    const owned = build(anchor.metadata!.uid);
    await step(owned.role);
    await step(owned.roleBinding);
    return created;
  } catch (error) {
    await rollback(api, created);
    throw error;
  }
}

/** Deletes the anchor first: that revokes every token bound to it, even if the rest fails. */
export async function removeGrant(api: KubernetesObjectApi, grant: GrantObjects): Promise<boolean> {
  const revoked = await remove(api, grant.anchor);
  await remove(api, grant.roleBinding);
  await remove(api, grant.role);
  return revoked;
}

export function systemNamespaceObject(): V1Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: SYSTEM_NAMESPACE } };
}

/**
 * The audiences a remote API server gives a token that names none (TokenRequest defaults them to
 * its own): the `aud` claim of such a token, e.g. the importer identity's.
 */
export function defaultAudiencesOf(token: string): string[] {
  const aud = tokenClaims(token)?.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === "string" && a !== "") : [];
  if (audiences.length === 0) throw new Error("the remote API server issued a token without audiences: cannot tell which audiences are its own");
  return audiences;
}

/** Installs (or updates) the remote cluster's one grant policy and its binding. */
export async function installGrantPolicy(kc: KubeConfig, defaultAudiences: string[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const { policy, binding } = grantPolicy(defaultAudiences);
  await apply(api, policy);
  await apply(api, binding);
}

/** Removes the grant policy (once no importer identity is left in the remote cluster); false if it was not there. */
export async function removeGrantPolicy(kc: KubeConfig): Promise<boolean> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const { policy, binding } = grantPolicy([]);
  await remove(api, binding);
  return remove(api, policy);
}

export interface RecordedGrants {
  /** namespace/name of the importer's own anchors annotated now. */
  recorded: string[];
  /** namespace/name of other importers' anchors annotated now (with a plain import's limits: their imports are not readable here). */
  recordedOthers: string[];
  /** namespace/name of anchors whose Role names no service account: their tokens are refused once the policy is in. */
  unrecorded: string[];
}

/**
 * The migration of grants made before grants were enforced: their anchors record nothing, and
 * the grant policy refuses what they do not record. For each anchor without the annotations (of
 * every importer: the policy applies to all of them), records the service account its Role lets
 * the importer mint tokens for, with the audiences and lifetime `limitsFor` says (for this
 * importer's, what its import asks; for another's, a plain import's: the API server's audiences,
 * a day), and lets the Role read its anchor. Run before the policy is installed, so that no
 * working import of this importer breaks.
 */
export async function recordGrants(
  kc: KubeConfig,
  importer: Importer,
  limitsFor: (grantFor: string | undefined) => Promise<Omit<GrantLimits, "serviceAccount">>,
): Promise<RecordedGrants> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const anchors = (await core.listSecretForAllNamespaces({ labelSelector: IMPORTER_LABEL })).items;
  const result: RecordedGrants = { recorded: [], recordedOthers: [], unrecorded: [] };
  for (const anchor of anchors) {
    if (grantLimitsOf(anchor)) continue;
    const { name, namespace } = anchor.metadata as { name: string; namespace: string };
    let role: V1Role | undefined;
    try {
      role = await rbac.readNamespacedRole({ name, namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const mints = (r: V1PolicyRule) => r.resources?.includes("serviceaccounts/token") && r.verbs?.includes("create");
    const serviceAccount = role?.rules?.find(mints)?.resourceNames?.[0];
    if (!role || !serviceAccount) {
      result.unrecorded.push(`${namespace}/${name}`);
      continue;
    }
    const own = anchor.metadata?.labels?.[IMPORTER_LABEL] === importer.serviceAccount;
    const limits = own
      ? await limitsFor(anchor.metadata?.annotations?.[GRANT_FOR_ANNOTATION])
      : { audiences: [], maxExpirationSeconds: DEFAULT_GRANT_MAX_EXPIRATION_SECONDS };
    anchor.metadata!.annotations = { ...anchor.metadata!.annotations, ...grantAnnotations({ serviceAccount, ...limits }) };
    await core.replaceNamespacedSecret({ name, namespace, body: anchor });
    const identity = anchor.metadata?.annotations?.[GRANT_FOR_ANNOTATION] === "identity";
    if (!identity && !role.rules!.some((r) => r.resources?.includes("secrets") && r.verbs?.includes("get") && r.resourceNames?.includes(name))) {
      role.rules!.push({ apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: [name] });
      await rbac.replaceNamespacedRole({ name, namespace, body: role });
    }
    (own ? result.recorded : result.recordedOthers).push(`${namespace}/${name}`);
  }
  return result;
}
