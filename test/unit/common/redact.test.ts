import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { redactTokens } from "../../../common/redact.ts";

const jwt = [{ alg: "RS256", kid: "k" }, { sub: "system:serviceaccount:ns:sa", exp: 1 }]
  .map((part) => Buffer.from(JSON.stringify(part)).toString("base64url"))
  .concat("c2lnbmF0dXJl_-x")
  .join(".");

describe("redactTokens", () => {
  it("replaces JWTs wherever they appear", () => {
    expect(redactTokens(`token=${jwt} rest`)).toBe("token=[REDACTED] rest");
    expect(redactTokens(JSON.stringify({ status: { token: jwt } }))).toBe('{"status":{"token":"[REDACTED]"}}');
  });

  it("replaces Bearer credentials, keeping the scheme", () => {
    expect(redactTokens("Authorization: Bearer abc.DEF-123_~+/==")).toBe("Authorization: Bearer [REDACTED]");
    expect(redactTokens(`authorization: bearer ${jwt}`)).toBe("authorization: bearer [REDACTED]");
  });

  it("leaves ordinary text alone", () => {
    const text = 'Unauthorized: invalid bearer token; GET https://10.0.0.1:6443/api/v1/namespaces/eyJ "x"';
    expect(redactTokens(text)).toBe(text);
  });

  it("leaves no JWT behind and is idempotent (property)", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
    const token = fc.tuple(segment, segment, segment).map(([a, b, c]) => `eyJ${a}.${b}.${c}`);
    fc.assert(
      fc.property(fc.string(), token, fc.string(), (before, t, after) => {
        const out = redactTokens(`${before}${t}${after}`);
        expect(out).not.toContain(t);
        expect(redactTokens(out)).toBe(out);
      }),
    );
  });
});
