// kubectl mcsa install --dry-run=client: the objects it would apply, for either webhook mode.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { loadAllYaml } from "@kubernetes/client-node";
import { afterEach, describe, expect, it, vi, onTestFinished } from "vitest";
import { DEFAULT_IMAGE, PRODUCT_VERSION } from "../../../common/manifests.ts";
import { createCA } from "../../../common/pki.ts";
import { run } from "../plugin/fake.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function dryRun(...args: string[]): Promise<Obj[]> {
  const result = await run(["install", "--dry-run=client", "-o", "yaml", ...args]);
  if (result.code !== 0) throw new Error(result.err);
  return loadAllYaml(result.out) as Obj[];
}

const byKind = (objects: Obj[], kind: string): Obj => {
  const found = objects.find((o) => o.kind === kind);
  if (!found) throw new Error(`no ${kind}`);
  return found;
};

afterEach(() => vi.restoreAllMocks());

describe("kubectl mcsa install --dry-run=client", () => {
  it("prints the API, the controller's identity, its Deployment, Service, serving Secret and the webhook configuration", async () => {
    const objects = await dryRun();
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "Namespace/multicluster-service-account",
      "CustomResourceDefinition/serviceaccountimports.multicluster.admiralty.io",
      "ServiceAccount/mcsa-controller",
      "ClusterRole/mcsa-controller",
      "ClusterRoleBinding/mcsa-controller",
      "Role/mcsa-controller",
      "RoleBinding/mcsa-controller",
      "Secret/mcsa-webhook-tls",
      "Deployment/mcsa-manager",
      "Service/mcsa-webhook",
      "MutatingWebhookConfiguration/mcsa-webhook",
    ]);
    expect(DEFAULT_IMAGE).toBe(`ghcr.io/kubectl-mcsa/mcsa:v${PRODUCT_VERSION}`);

    const webhook = byKind(objects, "MutatingWebhookConfiguration").webhooks[0];
    expect(webhook).toMatchObject({
      name: "sidecar-injector.multicluster.admiralty.io",
      admissionReviewVersions: ["v1"],
      clientConfig: { service: { namespace: "multicluster-service-account", name: "mcsa-webhook", path: "/mutate-pods", port: 443 } },
      rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
      namespaceSelector: { matchLabels: { "multicluster-service-account": "enabled" } },
      objectSelector: { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "NotIn", values: ["kubectl-mcsa"] }] },
      failurePolicy: "Fail",
      matchPolicy: "Equivalent",
      sideEffects: "None",
      timeoutSeconds: 5,
      reinvocationPolicy: "IfNeeded",
    });
    expect(webhook.matchConditions[0].expression).toContain("multicluster.admiralty.io/service-account-import.name");

    // The caBundle is the CA that signed the Secret's serving certificate, valid for the Service.
    const secret = byKind(objects, "Secret");
    const pem = (k: string) => Buffer.from(secret.data[k], "base64").toString("utf8");
    expect(Buffer.from(webhook.clientConfig.caBundle, "base64").toString("utf8")).toBe(pem("ca.crt"));
    const serving = new X509Certificate(pem("tls.crt"));
    expect(serving.verify(new X509Certificate(pem("ca.crt")).publicKey)).toBe(true);
    expect(serving.checkHost("mcsa-webhook.multicluster-service-account.svc")).toBeTruthy();
    expect(secret.type).toBe("kubernetes.io/tls");

    const deployment = byKind(objects, "Deployment");
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    expect(container.image).toBe(DEFAULT_IMAGE);
    expect(container.args).toEqual(expect.arrayContaining(["--webhook-listen=:8443", `--sidecar-image=${DEFAULT_IMAGE}`]));
    expect(pod.serviceAccountName).toBe("mcsa-controller");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    // The CA key never reaches the pod.
    expect(pod.volumes[0].secret.items.map((i: Obj) => i.key)).toEqual(["tls.crt", "tls.key"]);
    expect(deployment.spec.template.metadata.labels["app.kubernetes.io/name"]).toBe("kubectl-mcsa");
    const service = byKind(objects, "Service");
    expect(service.spec.ports).toEqual([{ name: "https", port: 443, targetPort: "webhook", protocol: "TCP" }]);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it("passes --image and --sidecar-image to the Deployment", async () => {
    const objects = await dryRun("--image", "reg.example/mcsa:dev", "--sidecar-image", "reg.example/sidecar:dev", "--log-level", "debug");
    const container = byKind(objects, "Deployment").spec.template.spec.containers[0];
    expect(container.image).toBe("reg.example/mcsa:dev");
    expect(container.args).toEqual(expect.arrayContaining(["--sidecar-image=reg.example/sidecar:dev", "--log-level=debug"]));
    const sameImage = byKind(await dryRun("--image", "reg.example/mcsa:dev"), "Deployment").spec.template.spec.containers[0];
    expect(sameImage.args).toContain("--sidecar-image=reg.example/mcsa:dev");
  });

  it("with --webhook-url, points the webhook at that URL with the given CA and creates no Deployment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcsa-install-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const ca = await createCA("local");
    writeFileSync(join(dir, "ca.pem"), ca.cert);
    const objects = await dryRun("--webhook-url", "https://127.0.0.1:9443/mutate-pods", "--webhook-ca-file", join(dir, "ca.pem"));
    expect(objects.map((o) => o.kind)).not.toContain("Deployment");
    expect(objects.map((o) => o.kind)).not.toContain("Service");
    expect(objects.map((o) => o.kind)).not.toContain("Secret");
    const webhook = byKind(objects, "MutatingWebhookConfiguration").webhooks[0];
    expect(webhook.clientConfig.url).toBe("https://127.0.0.1:9443/mutate-pods");
    expect(webhook.clientConfig.service).toBeUndefined();
    expect(Buffer.from(webhook.clientConfig.caBundle, "base64").toString("utf8")).toBe(ca.cert);
  });

  it("refuses a webhook URL that is not https, or comes without its CA", async () => {
    const refusal = async (...args: string[]) => (await run(["install", "--dry-run=client", ...args])).err;
    expect(await refusal("--webhook-url", "http://127.0.0.1:1/x", "--webhook-ca-file", "/dev/null")).toContain("must be an https URL");
    expect(await refusal("--webhook-url", "https://127.0.0.1:1/x")).toContain("needs --webhook-ca-file");
    expect(await refusal("--webhook-url", "https://127.0.0.1:1/x", "--webhook-ca-file", "/dev/null")).toContain("holds no PEM certificate");
    expect(await refusal("--webhook-ca-file", "/dev/null")).toContain("goes with --webhook-url");
  });
});
