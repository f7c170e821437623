// The webhook's serving certificate and CA, as `kubectl mcsa install` keeps them in a Secret.
// Re-installing reuses them (pods keep being admitted, nothing restarts); a serving certificate
// that is expiring, or does not name the Service, is re-issued by the same CA; a CA that is
// expiring is replaced, and the old one stays in the caBundle while it is valid, so the webhook's
// current certificate is trusted until the pod picks up the new one.
import "reflect-metadata";
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { WebhookTls } from "./manifests.ts";
import { type CertificateAuthority, createCA, issue } from "./pki.ts";

const DAY = 86_400_000;
export const CA_DAYS = 3650;
export const SERVING_DAYS = 5 * 365;
/** A CA with less left is replaced. */
export const CA_MIN_REMAINING_DAYS = 2 * 365;
/** A serving certificate with less left is re-issued. */
export const SERVING_MIN_REMAINING_DAYS = 365;

export type TlsAction = "created" | "reused" | "renewed" | "rotated-ca";

export interface TlsPlan {
  tls: WebhookTls;
  action: TlsAction;
  /** Why it was not reused, for the install's output. */
  reason?: string;
}

/** PEM certificates of a bundle, in order. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((pem) => `${pem}\n`) ?? [];
}

function parse(pem: string): NodeX509 | undefined {
  try {
    return new NodeX509(pem);
  } catch {
    return undefined;
  }
}

const remainingDays = (cert: NodeX509, now: number) => (new Date(cert.validTo).getTime() - now) / DAY;

/** A CA to sign with, from its PEM certificate and PKCS#8 key. */
async function loadCA(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const der = x509.PemConverter.decode(keyPem)[0]!;
  const privateKey = await webcrypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
  const publicKey = await certificate.publicKey.export(algorithm, ["verify"], webcrypto as unknown as Parameters<typeof certificate.publicKey.export>[2]);
  return { keys: { privateKey, publicKey } as webcrypto.CryptoKeyPair, certificate, cert: certPem, key: keyPem };
}

/** Why the stored CA cannot be kept, or undefined. */
function caProblem(ca: NodeX509 | undefined, caKey: string, now: number): string | undefined {
  if (ca === undefined) return "no CA certificate";
  if (!ca.ca) return "the CA certificate is not a CA";
  if (remainingDays(ca, now) < CA_MIN_REMAINING_DAYS) return `the CA expires on ${new Date(ca.validTo).toISOString()}`;
  try {
    if (!ca.checkPrivateKey(createPrivateKey(caKey))) return "the CA key does not match its certificate";
  } catch {
    return "the CA key is unreadable";
  }
  return undefined;
}

/** Why the stored serving certificate cannot be kept, or undefined. */
function servingProblem(existing: WebhookTls, ca: NodeX509, dnsNames: string[], now: number): string | undefined {
  const cert = parse(existing.cert);
  if (cert === undefined) return "no serving certificate";
  if (!cert.verify(createPublicKey(ca.publicKey.export({ type: "spki", format: "pem" })))) return "the serving certificate is not signed by the CA";
  if (remainingDays(cert, now) < SERVING_MIN_REMAINING_DAYS) return `the serving certificate expires on ${new Date(cert.validTo).toISOString()}`;
  const missing = dnsNames.find((name) => cert.checkHost(name, { subject: "never" }) === undefined);
  if (missing !== undefined) return `the serving certificate does not name ${missing}`;
  try {
    if (!cert.checkPrivateKey(createPrivateKey(existing.key))) return "the serving key does not match its certificate";
  } catch {
    return "the serving key is unreadable";
  }
  return undefined;
}

/**
 * What the webhook's Secret should hold: the existing material when it is still good, else
 * material renewed as little as possible (serving certificate only, or CA and serving certificate).
 */
export async function planWebhookTls(existing: WebhookTls | undefined, dnsNames: string[], now = Date.now()): Promise<TlsPlan> {
  const serving = async (ca: CertificateAuthority, caRemaining: number) =>
    issue(ca, { commonName: dnsNames[0] ?? "mcsa-webhook", usage: "server", dnsNames, days: Math.floor(Math.min(SERVING_DAYS, caRemaining)) });

  const fresh = async (oldBundle: string[]): Promise<WebhookTls> => {
    const ca = await createCA("mcsa-webhook-ca", CA_DAYS);
    const pair = await serving(ca, CA_DAYS);
    // Old CAs still valid stay trusted until the pod has the new certificate.
    const keep = oldBundle.filter((pem) => {
      const c = parse(pem);
      return c !== undefined && remainingDays(c, now) > 0;
    });
    return { caBundle: [ca.cert, ...keep.slice(0, 1)].join(""), caKey: ca.key, cert: pair.cert, key: pair.key };
  };

  if (existing === undefined) return { tls: await fresh([]), action: "created" };
  const bundle = splitPem(existing.caBundle);
  const ca = parse(bundle[0] ?? "");
  const badCA = caProblem(ca, existing.caKey, now);
  if (badCA !== undefined || ca === undefined) return { tls: await fresh(bundle), action: "rotated-ca", reason: badCA };
  const badServing = servingProblem(existing, ca, dnsNames, now);
  if (badServing === undefined) return { tls: existing, action: "reused" };
  const loaded = await loadCA(bundle[0]!, existing.caKey);
  const pair = await serving(loaded, remainingDays(ca, now));
  return { tls: { ...existing, cert: pair.cert, key: pair.key }, action: "renewed", reason: badServing };
}

/** The Secret's data (base64) as PEM strings, or undefined if a key is missing. */
export function tlsFromSecretData(data: Record<string, string> | undefined): WebhookTls | undefined {
  const get = (k: string) => (data?.[k] ? Buffer.from(data[k], "base64").toString("utf8") : undefined);
  const [caBundle, caKey, cert, key] = [get("ca.crt"), get("ca.key"), get("tls.crt"), get("tls.key")];
  if (caBundle === undefined || caKey === undefined || cert === undefined || key === undefined) return undefined;
  return { caBundle, caKey, cert, key };
}
