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
      "ValidatingAdmissionPolicy/mcsa-secrets",
      "ValidatingAdmissionPolicyBinding/mcsa-secrets",
      "ServiceAccount/mcsa-controller",
      "ClusterRole/mcsa-controller",
      "ClusterRoleBinding/mcsa-controller",
      "Role/mcsa-controller",
      "RoleBinding/mcsa-controller",
      "ServiceAccount/mcsa-webhook",
      "ClusterRole/mcsa-webhook",
      "ClusterRoleBinding/mcsa-webhook",
      "Secret/mcsa-webhook-tls",
      "Deployment/mcsa-manager",
      "Service/mcsa-webhook",
      "NetworkPolicy/mcsa-webhook",
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

  it("gives the manager no read of Secrets outside its namespace, the webhook none at all, and confines their writes by admission", async () => {
    const objects = await dryRun();
    const named = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;
    const secretVerbs = (role: Obj) => role.rules.filter((r: Obj) => r.resources.includes("secrets")).flatMap((r: Obj) => r.verbs).sort();
    expect(secretVerbs(named("ClusterRole", "mcsa-controller"))).toEqual(["create", "delete", "patch", "update"]);
    expect(secretVerbs(named("Role", "mcsa-controller"))).toEqual(["list", "patch", "watch"]);
    expect(named("Role", "mcsa-controller").metadata.namespace).toBe("multicluster-service-account");
    // The webhook: delete only, to ask whether a Secret exists (a precondition no object meets; admission refuses it anyway).
    expect(secretVerbs(named("ClusterRole", "mcsa-webhook"))).toEqual(["delete"]);
    expect(named("ClusterRole", "mcsa-webhook").rules.flatMap((r: Obj) => r.verbs).filter((v: string) => !["get", "list", "watch"].includes(v))).toEqual(["delete"]);
    expect(named("Role", "mcsa-controller").rules).toContainEqual({ apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"], resourceNames: ["mcsa-webhook"] });
    const container = byKind(objects, "Deployment").spec.template.spec.containers[0];
    expect(container.args).toContain("--webhook-as=mcsa-webhook");

    const policy = named("ValidatingAdmissionPolicy", "mcsa-secrets").spec;
    expect(policy.failurePolicy).toBe("Fail");
    expect(policy.matchConstraints.resourceRules).toEqual([{ apiGroups: [""], apiVersions: ["*"], resources: ["secrets"], operations: ["CREATE", "UPDATE", "DELETE"] }]);
    expect(policy.matchConditions[0].expression).toBe(
      "request.userInfo.username in ['system:serviceaccount:multicluster-service-account:mcsa-controller', 'system:serviceaccount:multicluster-service-account:mcsa-webhook']",
    );
    const cel = policy.validations.map((v: Obj) => v.expression).join("\n");
    for (const part of ["type == 'Opaque'", "'multicluster.admiralty.io/service-account-import.name' in", "r.kind == 'ServiceAccountImport'", "r.controller", "request.operation == 'UPDATE'"]) {
      expect(cel).toContain(part);
    }
    expect(policy.validations.every((v: Obj) => v.reason === "Forbidden")).toBe(true);
    expect(named("ValidatingAdmissionPolicyBinding", "mcsa-secrets").spec).toEqual({ policyName: "mcsa-secrets", validationActions: ["Deny"] });
  });

  it("lets only the webhook's port into the manager's pods (NetworkPolicy)", async () => {
    const objects = await dryRun();
    const policy = byKind(objects, "NetworkPolicy");
    const deployment = byKind(objects, "Deployment");
    expect(policy.metadata.namespace).toBe("multicluster-service-account");
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: deployment.spec.selector.matchLabels },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ protocol: "TCP", port: 8443 }] }],
    });
    expect(deployment.spec.template.spec.containers[0].ports).toEqual([{ name: "webhook", containerPort: 8443, protocol: "TCP" }]);
  });

  it("with --webhook-client-ca-file, has the webhook require the API server's client certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcsa-install-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const ca = await createCA("apiserver-webhook-client");
    writeFileSync(join(dir, "client-ca.pem"), ca.cert);
    const objects = await dryRun("--webhook-client-ca-file", join(dir, "client-ca.pem"));
    const configMap = byKind(objects, "ConfigMap");
    expect(configMap.metadata).toMatchObject({ name: "mcsa-webhook-client-ca", namespace: "multicluster-service-account" });
    expect(configMap.data["ca.crt"]).toBe(ca.cert);
    const pod = byKind(objects, "Deployment").spec.template.spec;
    expect(pod.containers[0].args).toContain("--webhook-client-ca=/etc/mcsa/webhook-client-ca/ca.crt");
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: "webhook-client-ca", mountPath: "/etc/mcsa/webhook-client-ca", readOnly: true });
    expect(pod.volumes).toContainEqual({ name: "webhook-client-ca", configMap: { name: "mcsa-webhook-client-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } });
    // Without it: no ConfigMap, no flag.
    const plain = await dryRun();
    expect(plain.map((o) => o.kind)).not.toContain("ConfigMap");
    expect(byKind(plain, "Deployment").spec.template.spec.containers[0].args.some((a: string) => a.startsWith("--webhook-client-ca"))).toBe(false);
    const refusal = async (...args: string[]) => (await run(["install", "--dry-run=client", ...args])).err;
    expect(await refusal("--webhook-client-ca-file", "/dev/null")).toContain("--webhook-client-ca-file /dev/null holds no PEM certificate");
    expect(await refusal("--webhook-url", "https://127.0.0.1:1/x", "--webhook-ca-file", join(dir, "client-ca.pem"), "--webhook-client-ca-file", join(dir, "client-ca.pem"))).toContain(
      "--webhook-client-ca-file is for the in-cluster webhook",
    );
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
