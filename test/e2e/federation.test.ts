// Groundwork of federated imports (issue 13): cluster2 trusts cluster1's service-account issuer as a
// JWT authenticator in its --authentication-config file, reloaded without a restart. A cluster1
// service-account token for the audience "cluster2" is a cluster2 identity ("cluster1:" + sub) that
// RBAC can let exchange itself for a cluster2 service account's token. Runs without the node.
import { AuthenticationV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, describe, expect, inject, it } from "vitest";
import {
  AuthenticationConfigRejected,
  type AuthenticationConfiguration,
  authenticationConfig,
  configHash,
  jwtRuleViolations,
  reloadMetrics,
  serializeAuthenticationConfig,
  trustIssuer,
  writeAuthenticationConfig,
} from "../../harness/auth-config.ts";
import { adminConfig, cluster, createPodReader, statusOf, tokenConfig, uniqueName } from "../../harness/kube.ts";
import { eventually } from "../../harness/run.ts";

const state = inject("clusters");
const c1 = cluster(state, "cluster1");
const c2 = cluster(state, "cluster2");
const AUDIENCE = "cluster2";
const PREFIX = "cluster1:";
const MAX_TOKEN_SECONDS = 3600;
const namespace = "default";
const trust = trustIssuer({ issuer: c1.issuer, caPem: c1.caPem, audience: AUDIENCE, usernamePrefix: PREFIX, maxTokenSeconds: MAX_TOKEN_SECONDS });

const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const core2 = adminConfig(state, "cluster2").makeApiClient(CoreV1Api);
const rbac2 = adminConfig(state, "cluster2").makeApiClient(RbacAuthorizationV1Api);

/** A cluster1 service-account token for these audiences. */
async function cluster1Token(sa: string, audiences: string[], expirationSeconds = 600): Promise<string> {
  const tr = await core1.createNamespacedServiceAccountToken({ name: sa, namespace, body: { spec: { audiences, expirationSeconds } } });
  const token = tr.status?.token;
  if (!token) throw new Error(`cluster1 returned no token for ${sa}`);
  return token;
}

/** Who cluster2 says the token is (SelfSubjectReview), or the HTTP status it refused it with. */
async function whoAtCluster2(token: string): Promise<string | number> {
  try {
    const review = await tokenConfig(c2, token).makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    return review.status?.userInfo?.username ?? "";
  } catch (error) {
    return statusOf(Promise.reject(error));
  }
}

const figures: string[] = [];

afterAll(async () => {
  // Leave cluster2 trusting no one, as the other test files expect.
  await writeAuthenticationConfig(c2, authenticationConfig());
  console.log(`[federation] ${figures.join("; ")}`);
});

describe("federation groundwork: cluster2 trusts cluster1's issuer", () => {
  it("a cluster1 token for cluster2's audience authenticates as a mapped user, exchanges for a cluster2 token, and is cut off when the trust is removed", async () => {
    const app = uniqueName("fed-app");
    await core1.createNamespacedServiceAccount({ namespace, body: { metadata: { name: app } } });
    const federatedUser = `${PREFIX}system:serviceaccount:${namespace}:${app}`;

    const token1 = await cluster1Token(app, [AUDIENCE]);
    expect(await whoAtCluster2(token1), "before the trust, cluster2 refuses cluster1's token").toBe(401);

    const reloadMs = await writeAuthenticationConfig(c2, authenticationConfig([trust]));
    figures.push(`trust added: reload witnessed after ${reloadMs.toFixed(0)} ms`);
    expect((await reloadMetrics(c2)).configHash).toBe(configHash(serializeAuthenticationConfig(authenticationConfig([trust]))));

    expect(await whoAtCluster2(token1)).toBe(federatedUser);
    // The same service account's token for another audience, its default audience (cluster1's
    // issuer), and one longer-lived than the maximum age: all refused.
    expect(await whoAtCluster2(await cluster1Token(app, ["other"]))).toBe(401);
    expect(await whoAtCluster2(await cluster1Token(app, []))).toBe(401);
    expect(await whoAtCluster2(await cluster1Token(app, [AUDIENCE], 2 * MAX_TOKEN_SECONDS))).toBe(401);
    // cluster2's own tokens still work as before (the service-account authenticator is separate).
    const imported = uniqueName("fed-imported");
    await createPodReader(state, "cluster2", namespace, imported, ["list"]);

    // The federated user may not mint tokens until RBAC in cluster2 lets it, for one service account.
    const asFederated = tokenConfig(c2, token1).makeApiClient(CoreV1Api);
    const anchor = await core2.createNamespacedSecret({ namespace, body: { metadata: { name: uniqueName("fed-anchor") }, type: "Opaque" } });
    const request = {
      name: imported,
      namespace,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 600,
          boundObjectRef: { apiVersion: "v1", kind: "Secret", name: anchor.metadata!.name!, uid: anchor.metadata!.uid! },
        },
      },
    };
    expect(await statusOf(asFederated.createNamespacedServiceAccountToken(request))).toBe(403);
    const grant = uniqueName("fed-exchange");
    await rbac2.createNamespacedRole({
      namespace,
      body: { metadata: { name: grant }, rules: [{ apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"], resourceNames: [imported] }] },
    });
    await rbac2.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: grant },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: grant },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: federatedUser }],
      },
    });
    const exchanged = await eventually("the federated user to be allowed to create a token for the imported service account (RBAC)", async () => {
      try {
        return (await asFederated.createNamespacedServiceAccountToken(request)).status?.token;
      } catch {
        return undefined;
      }
    }, 30_000);
    // Only that service account: another one's token stays forbidden.
    expect(await statusOf(asFederated.createNamespacedServiceAccountToken({ ...request, name: "default" }))).toBe(403);
    const claims = JSON.parse(Buffer.from(exchanged.split(".")[1]!, "base64url").toString()) as { iss: string; "kubernetes.io": { secret?: { name: string } } };
    expect(claims.iss).toBe(c2.issuer);
    expect(claims["kubernetes.io"].secret?.name).toBe(anchor.metadata!.name);
    expect(await whoAtCluster2(exchanged)).toBe(`system:serviceaccount:${namespace}:${imported}`);
    const asImported = tokenConfig(c2, exchanged).makeApiClient(CoreV1Api);
    expect(await statusOf(asImported.listNamespacedPod({ namespace }))).toBe(200);
    expect(await statusOf(asImported.listNamespacedSecret({ namespace }))).toBe(403);

    // Revocation of the trust: the cluster1 token stops working; the exchanged token is cluster2's
    // own and lives on until its anchor Secret is deleted (or it expires).
    const removed = performance.now();
    const removeMs = await writeAuthenticationConfig(c2, authenticationConfig());
    await eventually("cluster2 to refuse cluster1's token after the trust was removed", async () => ((await whoAtCluster2(token1)) === 401 ? true : undefined), 30_000, 100);
    figures.push(`trust removed: reload witnessed after ${removeMs.toFixed(0)} ms, token refused (401) after ${(performance.now() - removed).toFixed(0)} ms`);
    expect(await statusOf(asImported.listNamespacedPod({ namespace }))).toBe(200);
    const deleted = performance.now();
    await core2.deleteNamespacedSecret({ name: anchor.metadata!.name!, namespace });
    await eventually("the exchanged token to be refused once its anchor Secret is gone", async () => ((await statusOf(asImported.listNamespacedPod({ namespace }))) === 401 ? true : undefined), 30_000, 100);
    figures.push(`anchor Secret deleted: exchanged token refused after ${(performance.now() - deleted).toFixed(0)} ms`);
  }, 240_000);

  it("the API server refuses JWT authenticators that break the issuer rules and keeps the configuration in force", async () => {
    await writeAuthenticationConfig(c2, authenticationConfig([trust]));
    const inForce = (await reloadMetrics(c2)).configHash;
    const app = uniqueName("fed-rules");
    await core1.createNamespacedServiceAccount({ namespace, body: { metadata: { name: app } } });
    const token1 = await cluster1Token(app, [AUDIENCE]);

    const own = trustIssuer({ issuer: c2.issuer, caPem: c2.caPem, audience: AUDIENCE, usernamePrefix: "self:", maxTokenSeconds: MAX_TOKEN_SECONDS });
    const plainHttp = { ...trust, issuer: { ...trust.issuer, url: c1.issuer.replace(/^https:/, "http:") } };
    const many = Array.from({ length: 65 }, (_, i) => ({ ...trust, issuer: { ...trust.issuer, url: `https://issuer-${i}.invalid` } }));
    const cases: [string, AuthenticationConfiguration, RegExp][] = [
      ["cluster2's own issuer", authenticationConfig([own]), /disallowed issuers|service account issuer/i],
      ["an http issuer", authenticationConfig([plainHttp]), /https/i],
      ["the same issuer twice", authenticationConfig([trust, trust]), /duplicate/i],
      ["65 authenticators", authenticationConfig(many), /64/],
    ];
    for (const [what, config, reason] of cases) {
      expect(jwtRuleViolations(config, [c2.issuer]), `the harness's rules flag ${what}`).not.toEqual([]);
      const refused = await writeAuthenticationConfig(c2, config).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused, `cluster2 refuses ${what}`).toBeInstanceOf(AuthenticationConfigRejected);
      const message = (refused as Error).message;
      expect(message, `the server's reason for ${what}`).toMatch(reason);
      figures.push(`${what}: ${message.replace(/^.*?: the API server refused[^:]*: /, "")}`);
      expect((await reloadMetrics(c2)).configHash, `after ${what}, the configuration in force is unchanged`).toBe(inForce);
      expect(await whoAtCluster2(token1), `after ${what}, the trust in force still works`).toBe(`${PREFIX}system:serviceaccount:${namespace}:${app}`);
    }
  }, 240_000);
});
