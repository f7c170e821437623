// The webhook's serving certificate across re-installs: kept, renewed by the same CA, or a new CA
// with the old one still trusted.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { webhookDnsNames, webhookSecret } from "../../../common/manifests.ts";
import { createCA, issue } from "../../../common/pki.ts";
import { planWebhookTls, splitPem, tlsFromSecretData } from "../../../common/serving-cert.ts";

const DNS = webhookDnsNames();
const DAY = 86_400_000;

function verifiesWith(certPem: string, caPem: string): boolean {
  return new X509Certificate(certPem).verify(new X509Certificate(caPem).publicKey);
}

describe("planWebhookTls", () => {
  it("creates a CA and a serving certificate for the Service's names", async () => {
    const plan = await planWebhookTls(undefined, DNS);
    expect(plan.action).toBe("created");
    const cert = new X509Certificate(plan.tls.cert);
    for (const name of DNS) expect(cert.checkHost(name)).toBe(name);
    expect(splitPem(plan.tls.caBundle)).toHaveLength(1);
    expect(verifiesWith(plan.tls.cert, plan.tls.caBundle)).toBe(true);
    expect(new X509Certificate(plan.tls.caBundle).ca).toBe(true);
  });

  it("keeps everything as it is on re-install, round-tripping through the Secret", async () => {
    const first = await planWebhookTls(undefined, DNS);
    const stored = tlsFromSecretData(webhookSecret(first.tls).data);
    const again = await planWebhookTls(stored, DNS);
    expect(again.action).toBe("reused");
    expect(again.tls).toEqual(first.tls);
  });

  it("re-issues the serving certificate with the same CA when it expires within a year", async () => {
    const first = await planWebhookTls(undefined, DNS);
    const later = Date.now() + 4.5 * 365 * DAY;
    const plan = await planWebhookTls(first.tls, DNS, later);
    expect(plan.action).toBe("renewed");
    expect(plan.reason).toContain("expires");
    expect(plan.tls.caBundle).toBe(first.tls.caBundle);
    expect(plan.tls.cert).not.toBe(first.tls.cert);
    expect(verifiesWith(plan.tls.cert, first.tls.caBundle)).toBe(true);
  });

  it("re-issues a serving certificate that does not name the Service", async () => {
    const first = await planWebhookTls(undefined, ["other.example.svc"]);
    const plan = await planWebhookTls(first.tls, DNS);
    expect(plan.action).toBe("renewed");
    expect(plan.reason).toContain(DNS[0]);
    expect(new X509Certificate(plan.tls.cert).checkHost(DNS[0]!)).toBe(DNS[0]);
  });

  it("replaces an expiring CA and keeps the old one in the bundle", async () => {
    const old = await createCA("old-ca", 300);
    const serving = await issue(old, { commonName: "x", usage: "server", dnsNames: DNS, days: 300 });
    const plan = await planWebhookTls({ caBundle: old.cert, caKey: old.key, ...serving }, DNS);
    expect(plan.action).toBe("rotated-ca");
    const bundle = splitPem(plan.tls.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]!.trim()).toBe(old.cert.trim());
    expect(verifiesWith(plan.tls.cert, bundle[0]!)).toBe(true);
  });

  it("starts over when the stored material is unusable", async () => {
    const first = await planWebhookTls(undefined, DNS);
    const other = await createCA("other");
    expect((await planWebhookTls({ ...first.tls, caKey: other.key }, DNS)).action).toBe("rotated-ca");
    expect((await planWebhookTls({ ...first.tls, caBundle: "garbage" }, DNS)).action).toBe("rotated-ca");
    expect((await planWebhookTls({ ...first.tls, cert: "garbage" }, DNS)).action).toBe("renewed");
    expect(tlsFromSecretData({ "tls.crt": "eA==" })).toBeUndefined();
  });
});
