// The authentication configuration's pure parts: the file's text and hash, the JWT authenticator
// that trusts another cluster's issuer, the issuer rules, and reading the reload metrics.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  MAX_JWT_AUTHENTICATORS,
  authenticationConfig,
  configHash,
  jwtRuleViolations,
  parseReloadMetrics,
  serializeAuthenticationConfig,
  trustIssuer,
} from "../../../harness/auth-config.ts";

const options = { issuer: "https://127.0.0.1:6443", caPem: "-----BEGIN CERTIFICATE-----\n…", audience: "cluster2", usernamePrefix: "cluster1:", maxTokenSeconds: 3600 };

describe("authentication configuration file", () => {
  it("is a v1 AuthenticationConfiguration with no JWT authenticator by default", () => {
    const text = serializeAuthenticationConfig(authenticationConfig());
    expect(JSON.parse(text)).toEqual({ apiVersion: "apiserver.config.k8s.io/v1", kind: "AuthenticationConfiguration", jwt: [] });
    expect(text.endsWith("\n")).toBe(true);
  });

  it("is identified by the sha256 of its exact bytes, as the server's metric reports it", () => {
    const text = serializeAuthenticationConfig(authenticationConfig());
    expect(configHash(text)).toBe(`sha256:${createHash("sha256").update(Buffer.from(text)).digest("hex")}`);
    expect(configHash(text)).not.toBe(configHash(text.trimEnd()));
  });
});

describe("trustIssuer", () => {
  it("accepts one audience, service accounts only, a bounded lifetime, and maps usernames under the prefix", () => {
    const a = trustIssuer(options);
    expect(a.issuer).toEqual({ url: options.issuer, certificateAuthority: options.caPem, audiences: ["cluster2"] });
    expect(a.claimMappings.username).toEqual({ expression: "'cluster1:' + claims.sub" });
    const rules = a.claimValidationRules!.map((r) => r.expression);
    expect(rules).toContain("claims.sub.startsWith('system:serviceaccount:')");
    expect(rules).toContain("has(claims.iat) && claims.exp - claims.iat <= 3600");
    expect(a.userValidationRules!.map((r) => r.expression)).toEqual(["!user.username.startsWith('system:')"]);
  });

  it("quotes the prefix as a CEL string", () => {
    expect(trustIssuer({ ...options, usernamePrefix: "it's:" }).claimMappings.username).toEqual({ expression: "'it\\'s:' + claims.sub" });
  });

  it.each([
    ["an empty prefix", { usernamePrefix: "" }, /prefix/],
    ["a system: prefix", { usernamePrefix: "system:serviceaccount:" }, /outside system:/],
    ["a lifetime under TokenRequest's minimum", { maxTokenSeconds: 599 }, /at least 600/],
    ["a fractional lifetime", { maxTokenSeconds: 600.5 }, /whole number/],
  ])("refuses %s in one line", (_what, change, message) => {
    expect(() => trustIssuer({ ...options, ...change })).toThrow(message);
  });
});

describe("jwtRuleViolations", () => {
  const own = "https://127.0.0.1:7443";
  const trust = trustIssuer(options);
  const at = (url: string) => ({ ...trust, issuer: { ...trust.issuer, url } });

  it("finds nothing in a valid configuration", () => {
    expect(jwtRuleViolations(authenticationConfig([trust]), [own])).toEqual([]);
    expect(jwtRuleViolations(authenticationConfig(), [own])).toEqual([]);
  });

  it.each([
    ["the server's own issuer", [at(own)], /own service-account issuer/],
    ["an http issuer", [at("http://127.0.0.1:6443")], /must use https/],
    ["not a URL", [at("cluster1")], /not a URL/],
    ["the same issuer twice", [trust, trust], /appears twice/],
    ["no audience", [{ ...trust, issuer: { ...trust.issuer, audiences: [] } }], /at least one audience/],
    ["too many authenticators", Array.from({ length: MAX_JWT_AUTHENTICATORS + 1 }, (_, i) => at(`https://issuer-${i}.example`)), /at most 64/],
  ])("flags %s", (_what, jwt, message) => {
    const problems = jwtRuleViolations(authenticationConfig(jwt), [own]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});

describe("parseReloadMetrics", () => {
  it("reads the reload counts and the hash of the configuration in force", () => {
    const text = [
      "# HELP apiserver_authentication_config_controller_automatic_reloads_total [BETA] Total number of automatic reloads",
      "# TYPE apiserver_authentication_config_controller_automatic_reloads_total counter",
      'apiserver_authentication_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:aa",status="failure"} 2',
      'apiserver_authentication_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:aa",status="success"} 3',
      'apiserver_authentication_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash="sha256:aa",status="success"} 1.7e+09',
      'apiserver_authentication_config_controller_last_config_info{apiserver_id_hash="sha256:aa",hash="sha256:bb"} 1',
      'apiserver_request_total{code="200"} 9',
    ].join("\n");
    expect(parseReloadMetrics(text)).toEqual({ success: 3, failure: 2, configHash: "sha256:bb" });
  });

  it("reads a server that has not reloaded yet as zero reloads, and no hash if none is reported", () => {
    expect(parseReloadMetrics("apiserver_request_total 1\n")).toEqual({ success: 0, failure: 0 });
  });
});
