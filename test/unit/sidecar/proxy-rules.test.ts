import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  filterRequestHeaders,
  filterResponseHeaders,
  isCrossSite,
  isLoopbackHost,
  rawStatusResponse,
  statusBody,
  targetPath,
} from "../../../sidecar/proxy-rules.ts";

const names = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

describe("proxy rules", () => {
  it("accept only loopback Host headers, with any port", () => {
    for (const ok of ["localhost", "LOCALHOST", "localhost:17001", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:17001"]) {
      expect(isLoopbackHost(ok), ok).toBe(true);
    }
    for (const bad of [undefined, "", "evil.com", "localhost.evil.com", "127.0.0.1.nip.io", "127.0.0.2", "[::2]", "::1", "localhost:99999", "localhost:", "10.0.0.1:17001", "127.0.0.1 evil"]) {
      expect(isLoopbackHost(bad), String(bad)).toBe(false);
    }
  });

  it("drop the app's credentials, impersonation and hop-by-hop headers, keeping the rest and repeats", () => {
    const raw = [
      "Host", "127.0.0.1:17001",
      "Authorization", "Bearer app-token",
      "authorization", "Basic eDp5",
      "Proxy-Authorization", "Basic eDp5",
      "Impersonate-User", "system:admin",
      "Impersonate-Group", "system:masters",
      "impersonate-group", "system:authenticated",
      "Impersonate-Uid", "1",
      "Impersonate-Extra-Scopes", "all",
      "Connection", "keep-alive, X-Hop",
      "X-Hop", "1",
      "Keep-Alive", "timeout=5",
      "TE", "trailers",
      "Accept", "application/json",
      "X-Custom", "a",
      "X-Custom", "b",
      "Content-Type", "application/json",
      "Transfer-Encoding", "chunked",
    ];
    expect(filterRequestHeaders(raw)).toEqual([
      "Accept", "application/json",
      "X-Custom", "a",
      "X-Custom", "b",
      "Content-Type", "application/json",
      "Transfer-Encoding", "chunked",
    ]);
  });

  it("keep Upgrade for upgrades and ask for one", () => {
    const raw = ["Host", "localhost", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "k", "Sec-WebSocket-Protocol", "v5.channel.k8s.io", "Authorization", "Bearer x", "X-Stream-Protocol-Version", "v4.channel.k8s.io"];
    expect(filterRequestHeaders(raw, { upgrade: true })).toEqual([
      "Upgrade", "websocket",
      "Sec-WebSocket-Key", "k",
      "Sec-WebSocket-Protocol", "v5.channel.k8s.io",
      "X-Stream-Protocol-Version", "v4.channel.k8s.io",
      "Connection", "Upgrade",
    ]);
  });

  it("never pass Authorization or Impersonate-* whatever the case and value (property)", () => {
    const credential = fc.constantFrom("authorization", "proxy-authorization", "impersonate-user", "impersonate-group", "impersonate-uid", "impersonate-extra-x");
    const casing = fc.array(fc.boolean(), { minLength: 30, maxLength: 30 });
    const header = fc.oneof(
      fc.tuple(credential, casing).map(([n, c]) => n.split("").map((ch, i) => (c[i] ? ch.toUpperCase() : ch)).join("")),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(header, fc.string()), { maxLength: 20 }), fc.boolean(), (pairs, upgrade) => {
        const out = names(filterRequestHeaders(pairs.flat(), { upgrade }));
        return out.every((n) => n !== "authorization" && n !== "proxy-authorization" && n !== "host" && !n.startsWith("impersonate-"));
      }),
    );
  });

  it("drop hop-by-hop response headers", () => {
    const raw = ["Content-Type", "application/json", "Transfer-Encoding", "chunked", "Connection", "keep-alive", "Keep-Alive", "timeout=5", "Audit-Id", "x", "Cache-Control", "no-cache, private"];
    expect(filterResponseHeaders(raw)).toEqual(["Content-Type", "application/json", "Audit-Id", "x", "Cache-Control", "no-cache, private"]);
    expect(filterResponseHeaders(["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "a"], { upgrade: true })).toEqual([
      "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "a",
    ]);
  });

  it("refuse requests a browser sends from another site's page (exec over WebSocket), not those of clients", () => {
    expect(isCrossSite(undefined, undefined)).toBe(false);
    expect(isCrossSite("http://127.0.0.1:17001", undefined)).toBe(false);
    expect(isCrossSite("http://localhost:3000", "same-site")).toBe(false);
    expect(isCrossSite("https://evil.example", undefined)).toBe(true);
    expect(isCrossSite("null", undefined)).toBe(true);
    expect(isCrossSite("not a url", undefined)).toBe(true);
    expect(isCrossSite(undefined, "cross-site")).toBe(true);
  });

  it("refuse dot segments, which could climb out of the server URL's path on a gateway", () => {
    expect(targetPath("/clusters/b", "/../a/api/v1/secrets")).toBeUndefined();
    expect(targetPath("/clusters/b", "/%2e%2e/a/api")).toBeUndefined();
    expect(targetPath("", "/api/./v1")).toBeUndefined();
    expect(targetPath("/clusters/b", "/api/v1/pods?labelSelector=a%2F..")).toBe("/clusters/b/api/v1/pods?labelSelector=a%2F..");
  });

  it("drop a bearer token the app puts in Sec-WebSocket-Protocol, keeping the other protocols", () => {
    const out = filterRequestHeaders(["Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.ZXlKaGJHY2lPaUpT, v5.channel.k8s.io"], { upgrade: true });
    expect(out.slice(0, 2)).toEqual(["Sec-WebSocket-Protocol", "v5.channel.k8s.io"]);
    expect(filterRequestHeaders(["Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.abc"], { upgrade: true })).toEqual(["Connection", "Upgrade"]);
  });

  it("join the server's path with the request's path and query", () => {
    expect(targetPath("/", "/api/v1/pods?watch=1")).toBe("/api/v1/pods?watch=1");
    expect(targetPath("/k8s/clusters/c-1/", "/api")).toBe("/k8s/clusters/c-1/api");
    expect(targetPath("/", "http://evil/api")).toBeUndefined();
    expect(targetPath("/", "//evil/api")).toBeUndefined();
    expect(targetPath("/", undefined)).toBeUndefined();
  });

  it("answer with Kubernetes Status objects", () => {
    expect(JSON.parse(statusBody({ code: 503, reason: "ServiceUnavailable", message: "no token" }))).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "no token",
      reason: "ServiceUnavailable",
      code: 503,
    });
    const raw = rawStatusResponse({ code: 403, reason: "Forbidden", message: "host" }, "Forbidden");
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    const [head, body] = raw.split("\r\n\r\n");
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body ?? "")}`);
    expect(JSON.parse(body ?? "").code).toBe(403);
  });
});
