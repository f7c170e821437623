// The API servers' structured authentication (--authentication-config, AuthenticationConfiguration
// apiserver.config.k8s.io/v1, GA in Kubernetes 1.34): the file each local API server reads, a JWT
// authenticator that makes one cluster trust another's service-account issuer, and a write that
// waits for the server to reload the file. The server watches the file (and re-reads it every
// minute); its reload is witnessed by the metric apiserver_authentication_config_controller_
// last_config_info{hash="sha256:<hex of the file's bytes>"} (success) or by
// apiserver_authentication_config_controller_automatic_reloads_total{status="failure"} rising.
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, statSync, writeFileSync, fsyncSync } from "node:fs";
import { request } from "node:https";
import { setTimeout as delay } from "node:timers/promises";
import type { ClusterInfo } from "./cluster.ts";

export const AUTHENTICATION_API_VERSION = "apiserver.config.k8s.io/v1";
/** The API server accepts at most this many JWT authenticators. */
export const MAX_JWT_AUTHENTICATORS = 64;

export interface CelRule {
  expression: string;
  message: string;
}

export interface JwtAuthenticator {
  issuer: {
    url: string;
    discoveryURL?: string;
    /** PEM: the CA that signs the issuer's (or discoveryURL's) serving certificate. */
    certificateAuthority?: string;
    audiences: string[];
    audienceMatchPolicy?: "MatchAny";
  };
  claimValidationRules?: CelRule[];
  claimMappings: {
    username: { expression: string } | { claim: string; prefix: string };
    groups?: { expression: string } | { claim: string; prefix: string };
    uid?: { expression: string } | { claim: string };
  };
  userValidationRules?: CelRule[];
}

export interface AuthenticationConfiguration {
  apiVersion: typeof AUTHENTICATION_API_VERSION;
  kind: "AuthenticationConfiguration";
  jwt: JwtAuthenticator[];
}

/** A configuration with these JWT authenticators (none: the server trusts no other issuer). */
export function authenticationConfig(jwt: JwtAuthenticator[] = []): AuthenticationConfiguration {
  return { apiVersion: AUTHENTICATION_API_VERSION, kind: "AuthenticationConfiguration", jwt };
}

/** The file's text: JSON, which the server's YAML decoder reads. */
export function serializeAuthenticationConfig(config: AuthenticationConfiguration): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The hash the server reports for the file it applied: sha256 of the file's exact bytes. */
export function configHash(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

export interface TrustOptions {
  /** The trusted cluster's service-account issuer (https). */
  issuer: string;
  /** The CA of the issuer's serving certificate (discovery and JWKS are fetched over HTTPS). */
  caPem: string;
  /** The audience tokens must carry for this cluster, e.g. its name. */
  audience: string;
  /** Prepended to the token's sub, e.g. "cluster1:"; must not start with "system:". */
  usernamePrefix: string;
  /** The longest token lifetime (exp - iat) accepted, in seconds. */
  maxTokenSeconds: number;
}

/**
 * A JWT authenticator that trusts another cluster's service-account tokens: only service accounts
 * (sub system:serviceaccount:…), only for one audience, no longer-lived than maxTokenSeconds,
 * mapped to usernames under usernamePrefix (never system:, so never a local service account or a
 * system group member).
 */
export function trustIssuer(options: TrustOptions): JwtAuthenticator {
  const prefix = options.usernamePrefix;
  if (prefix === "" || prefix.startsWith("system:")) throw new Error(`the username prefix must be non-empty and outside system:, not "${prefix}"`);
  if (!Number.isInteger(options.maxTokenSeconds) || options.maxTokenSeconds < 600) {
    throw new Error(`the maximum token age must be a whole number of seconds, at least 600 (TokenRequest's minimum), not ${options.maxTokenSeconds}`);
  }
  return {
    issuer: { url: options.issuer, certificateAuthority: options.caPem, audiences: [options.audience] },
    claimValidationRules: [
      { expression: "claims.sub.startsWith('system:serviceaccount:')", message: `only service accounts of ${options.issuer} are trusted` },
      {
        expression: `has(claims.iat) && claims.exp - claims.iat <= ${options.maxTokenSeconds}`,
        message: `tokens may live at most ${options.maxTokenSeconds} s`,
      },
    ],
    claimMappings: { username: { expression: `${celString(prefix)} + claims.sub` } },
    userValidationRules: [{ expression: "!user.username.startsWith('system:')", message: "federated usernames may not start with system:" }],
  };
}

const celString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/**
 * What the API server's validation would refuse in these JWT authenticators, one line each (the
 * rules of the issue): at most 64, issuers https, unique, and not the server's own issuer(s).
 */
export function jwtRuleViolations(config: AuthenticationConfiguration, ownIssuers: string[]): string[] {
  const problems: string[] = [];
  if (config.jwt.length > MAX_JWT_AUTHENTICATORS) problems.push(`${config.jwt.length} JWT authenticators: at most ${MAX_JWT_AUTHENTICATORS} are allowed`);
  const seen = new Set<string>();
  config.jwt.forEach((a, i) => {
    const url = a.issuer.url;
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      problems.push(`jwt[${i}]: issuer "${url}" is not a URL`);
    }
    if (parsed && parsed.protocol !== "https:") problems.push(`jwt[${i}]: issuer "${url}" must use https`);
    if (seen.has(url)) problems.push(`jwt[${i}]: issuer "${url}" appears twice; each issuer may have one authenticator`);
    seen.add(url);
    if (ownIssuers.includes(url)) problems.push(`jwt[${i}]: issuer "${url}" is this server's own service-account issuer`);
    if (a.issuer.audiences.length === 0) problems.push(`jwt[${i}]: issuer "${url}" needs at least one audience`);
  });
  return problems;
}

export interface ReloadMetrics {
  success: number;
  failure: number;
  /** The hash of the configuration in force, if the server reports it. */
  configHash?: string;
}

/** Reads the reload metrics from the API server's /metrics text. */
export function parseReloadMetrics(text: string): ReloadMetrics {
  const metrics: ReloadMetrics = { success: 0, failure: 0 };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const reloads = /^apiserver_authentication_config_controller_automatic_reloads_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (reloads) {
      const status = /status="([^"]*)"/.exec(reloads[1]!)?.[1];
      if (status === "success" || status === "failure") metrics[status] += Number(reloads[2]);
      continue;
    }
    const info = /^apiserver_authentication_config_controller_last_config_info\{([^}]*)\}\s+1\b/.exec(line);
    if (info) {
      const hash = /(?:^|,)hash="([^"]*)"/.exec(info[1]!)?.[1];
      if (hash) metrics.configHash = hash;
    }
  }
  return metrics;
}

/**
 * How long a reload may take: the server applies new JWT authenticators only once they are healthy
 * (issuer discovery and JWKS fetched), checking at once and then every 10 s, for up to a minute.
 */
export const RELOAD_TIMEOUT_MS = 75_000;

/** The server refused the file (it keeps the configuration it had); message: its log's reason. */
export class AuthenticationConfigRejected extends Error {}

/** The cluster's API server's reload metrics (as its admin). */
export async function reloadMetrics(info: ClusterInfo): Promise<ReloadMetrics> {
  return parseReloadMetrics(await getAsAdmin(info, "/metrics"));
}

/**
 * Writes the cluster's authentication configuration atomically (a temporary file renamed over it)
 * and waits until its API server has applied it (the metric reports the file's hash) or refused it
 * (the failure count rises: throws AuthenticationConfigRejected with the server's logged reason).
 * Resolves with the time from the rename to the witnessed reload.
 */
export async function writeAuthenticationConfig(info: ClusterInfo, config: AuthenticationConfiguration, timeoutMs = RELOAD_TIMEOUT_MS): Promise<number> {
  const text = serializeAuthenticationConfig(config);
  const hash = configHash(text);
  const before = await reloadMetrics(info);
  const logOffset = statSync(info.apiserver.log).size;
  const tmp = `${info.authenticationConfig}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, "r");
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, info.authenticationConfig);
  const written = performance.now();
  if (before.configHash === hash) return 0;
  const deadline = Date.now() + timeoutMs;
  let last = before;
  while (Date.now() < deadline) {
    last = await reloadMetrics(info);
    if (last.configHash === hash) return performance.now() - written;
    if (last.failure > before.failure) {
      const reason = reloadLogSince(info.apiserver.log, logOffset) ?? "see the API server's log";
      throw new AuthenticationConfigRejected(`${info.name}: the API server refused the authentication configuration ${info.authenticationConfig}: ${reason}`);
    }
    await delay(50);
  }
  throw new Error(
    `${info.name}: the API server did not reload ${info.authenticationConfig} within ${timeoutMs} ms ` +
      `(config in force ${last.configHash ?? "unknown"}, written ${hash}; reloads ${last.success} ok, ${last.failure} failed)`,
  );
}

/** The last authentication-config error the API server logged after offset, one line. */
function reloadLogSince(log: string, offset: number): string | undefined {
  const text = readFileSync(log).subarray(offset).toString("utf8");
  const lines = text.split("\n").filter((l) => /authentication config/.test(l) && /^E\d{4}/.test(l));
  const line = lines.at(-1);
  if (!line) return undefined;
  return line.replace(/^E\S+\s+\S+\s+\d+\s+\S+\]\s*/, "").slice(0, 600);
}

function getAsAdmin(info: ClusterInfo, path: string): Promise<string> {
  return new Promise((done, fail) => {
    const req = request(`${info.server}${path}`, { ca: info.caPem, cert: info.adminCertPem, key: info.adminKeyPem, timeout: 5_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => (res.statusCode === 200 ? done(text) : fail(new Error(`GET ${path} answered ${res.statusCode}: ${text.slice(0, 200)}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${info.server}${path} timed out`)));
    req.on("error", fail);
    req.end();
  });
}
