import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ProxyStream } from "../../../common/api.ts";
import {
  applyHeaderRules,
  filterResponseHeaders,
  isCrossSite,
  isLoopbackHost,
  pathSegments,
  rawStatusResponse,
  refusal,
  REQUEST_HEADER_RULES,
  REQUEST_RULES,
  requestFraming,
  RESPONSE_HEADER_RULES,
  statusBody,
  streamOf,
  targetPath,
  upstreamRequestHeaders,
  type HeaderVerdict,
  type RequestHead,
} from "../../../sidecar/proxy-rules.ts";

const names = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

function head(partial: Partial<RequestHead> = {}): RequestHead {
  return { method: "GET", url: "/api", httpVersion: "1.1", rawHeaders: ["Host", "127.0.0.1:17001"], upgrade: false, ...partial };
}

interface RuleCase {
  what: string;
  head: RequestHead;
  allow?: ProxyStream[];
  /** The refusal's code, or undefined when the rule lets the request through. */
  refused: number | undefined;
}

const exec = "/api/v1/namespaces/default/pods/p/exec?command=sh";
const withHost = (...more: string[]) => ["Host", "localhost", ...more];

/** Each request rule's own cases, by rule name: every rule must have some. */
const REQUEST_RULE_CASES: Record<string, RuleCase[]> = {
  "http-1": [
    { what: "HTTP/1.1", head: head(), refused: undefined },
    { what: "HTTP/1.0", head: head({ httpVersion: "1.0" }), refused: undefined },
    { what: "HTTP/2.0 on a text connection", head: head({ httpVersion: "2.0" }), refused: 400 },
    { what: "HTTP/0.9", head: head({ httpVersion: "0.9" }), refused: 400 },
  ],
  "loopback-host": [
    ...["localhost", "LOCALHOST", "localhost:17001", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:17001"].map((h) => ({
      what: h,
      head: head({ rawHeaders: ["Host", h] }),
      refused: undefined,
    })),
    ...["evil.com", "evil.com:17001", "", "localhost.evil.com", "127.0.0.2", "[::2]", "localhost:99999", "127.0.0.1 evil"].map((h) => ({
      what: JSON.stringify(h),
      head: head({ rawHeaders: ["Host", h] }),
      refused: 403,
    })),
    { what: "no Host (HTTP/1.0)", head: head({ rawHeaders: [], httpVersion: "1.0" }), refused: 403 },
    { what: "two Hosts, both loopback", head: head({ rawHeaders: ["Host", "localhost", "host", "localhost"] }), refused: 400 },
    { what: "two Hosts, one evil", head: head({ rawHeaders: ["Host", "localhost", "Host", "evil.com"] }), refused: 400 },
  ],
  "same-site": [
    { what: "a client library (no Origin)", head: head(), refused: undefined },
    { what: "a loopback page", head: head({ rawHeaders: withHost("Origin", "http://127.0.0.1:17001", "Sec-Fetch-Site", "same-origin") }), refused: undefined },
    { what: "another site's page", head: head({ rawHeaders: withHost("Origin", "https://evil.example") }), refused: 403 },
    { what: "a sandboxed frame", head: head({ rawHeaders: withHost("Origin", "null") }), refused: 403 },
    { what: "Sec-Fetch-Site: cross-site", head: head({ rawHeaders: withHost("Sec-Fetch-Site", "cross-site") }), refused: 403 },
  ],
  "api-method": [
    ...["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map((method) => ({ what: method, head: head({ method }), refused: undefined })),
    ...["TRACE", "TRACK", "CONNECT", "PROPFIND", "get"].map((method) => ({ what: method, head: head({ method }), refused: 405 })),
  ],
  "origin-form": [
    { what: "a path", head: head({ url: "/api/v1/pods?watch=1" }), refused: undefined },
    { what: "absolute-form", head: head({ url: "http://localhost/api" }), refused: 400 },
    { what: "authority-form", head: head({ url: "localhost:443" }), refused: 400 },
    { what: "asterisk-form", head: head({ url: "*" }), refused: 400 },
    { what: "a network-path reference", head: head({ url: "//evil/api" }), refused: 400 },
    { what: "a fragment", head: head({ url: "/api#x" }), refused: 400 },
  ],
  "plain-path": [
    { what: "a plain path", head: head({ url: "/api/v1/namespaces/default/pods" }), refused: undefined },
    { what: "a trailing slash", head: head({ url: "/apis/" }), refused: undefined },
    { what: "an encoded letter", head: head({ url: "/api/v1/namespaces/%64efault" }), refused: undefined },
    { what: "%2f in the query", head: head({ url: "/api/v1/pods?labelSelector=a%2F..;x" }), refused: undefined },
    { what: "..", head: head({ url: "/api/../secrets" }), refused: 400 },
    { what: "%2e%2e", head: head({ url: "/api/%2e%2e/secrets" }), refused: 400 },
    { what: "%2E.", head: head({ url: "/api/%2E./secrets" }), refused: 400 },
    { what: "%2e", head: head({ url: "/api/%2e/v1" }), refused: 400 },
    { what: "%2f", head: head({ url: "/api/v1/namespaces/a%2fb" }), refused: 400 },
    { what: "%5c", head: head({ url: "/api/v1/namespaces/a%5Cb" }), refused: 400 },
    { what: "a backslash", head: head({ url: "/api\\v1" }), refused: 400 },
    { what: "; in a segment", head: head({ url: "/api;x=1/v1" }), refused: 400 },
    { what: "%3b", head: head({ url: "/api%3bx/v1" }), refused: 400 },
    { what: "double-encoded ..", head: head({ url: "/api/%252e%252e/secrets" }), refused: 400 },
    { what: "double-encoded /", head: head({ url: "/api/a%252fb" }), refused: 400 },
    { what: "an empty segment", head: head({ url: "/api//v1" }), refused: 400 },
    { what: "a broken percent-encoding", head: head({ url: "/api/%zz" }), refused: 400 },
    { what: "an encoded NUL", head: head({ url: "/api/a%00" }), refused: 400 },
  ],
  "streams-opt-in": [
    { what: "exec, not allowed", head: head({ url: exec }), refused: 403 },
    { what: "exec, allowed", head: head({ url: exec }), allow: ["exec"], refused: undefined },
    { what: "exec, only attach allowed", head: head({ url: exec }), allow: ["attach"], refused: 403 },
    { what: "attach", head: head({ url: "/api/v1/namespaces/d/pods/p/attach" }), refused: 403 },
    { what: "portforward", head: head({ url: "/api/v1/namespaces/d/pods/p/portforward" }), refused: 403 },
    { what: "portforward, allowed", head: head({ url: "/api/v1/namespaces/d/pods/p/portforward" }), allow: ["portforward"], refused: undefined },
    { what: "EXEC in capitals", head: head({ url: "/api/v1/namespaces/d/pods/p/EXEC" }), refused: 403 },
    { what: "exec with an encoded letter", head: head({ url: "/api/v1/namespaces/d/pods/p/%65xec" }), refused: 403 },
    { what: "exec with a trailing slash", head: head({ url: "/api/v1/namespaces/d/pods/p/exec/" }), refused: 403 },
    { what: "the kubelet's exec behind nodes/proxy", head: head({ url: "/api/v1/nodes/n/proxy/exec/d/p/c" }), refused: 403 },
    { what: "the kubelet's run behind nodes/proxy", head: head({ url: "/api/v1/nodes/n/proxy/run/d/p/c" }), refused: 403 },
    { what: "the kubelet's portForward behind nodes/proxy", head: head({ url: "/api/v1/nodes/n/proxy/portForward/d/p" }), refused: 403 },
    { what: "pod logs", head: head({ url: "/api/v1/namespaces/d/pods/p/log?follow=true" }), refused: undefined },
    { what: "a pod named exec", head: head({ url: "/api/v1/namespaces/d/pods/exec" }), refused: undefined },
  ],
  "upgrade-protocol": [
    { what: "not an upgrade", head: head({ rawHeaders: withHost("Upgrade", "h2c") }), refused: undefined },
    { what: "SPDY/3.1", head: head({ upgrade: true, rawHeaders: withHost("Upgrade", "SPDY/3.1") }), refused: undefined },
    { what: "websocket", head: head({ upgrade: true, rawHeaders: withHost("Upgrade", "websocket") }), refused: undefined },
    { what: "h2c", head: head({ upgrade: true, rawHeaders: withHost("Upgrade", "h2c") }), refused: 400 },
    { what: "two protocols", head: head({ upgrade: true, rawHeaders: withHost("Upgrade", "websocket, h2c") }), refused: 400 },
    { what: "CONNECT (no Upgrade header)", head: head({ upgrade: true, method: "CONNECT" }), refused: 400 },
  ],
  "unambiguous-framing": [
    { what: "no body", head: head(), refused: undefined },
    { what: "a length", head: head({ rawHeaders: withHost("Content-Length", "5") }), refused: undefined },
    { what: "chunked", head: head({ rawHeaders: withHost("Transfer-Encoding", "chunked") }), refused: undefined },
    { what: "both", head: head({ rawHeaders: withHost("Content-Length", "5", "Transfer-Encoding", "chunked") }), refused: 400 },
    { what: "gzip, chunked", head: head({ rawHeaders: withHost("Transfer-Encoding", "gzip, chunked") }), refused: 400 },
    { what: "two lengths", head: head({ rawHeaders: withHost("Content-Length", "5", "Content-Length", "5") }), refused: 400 },
  ],
};

describe("request rules", () => {
  it("every rule has its own cases, and every case names a rule", () => {
    expect(Object.keys(REQUEST_RULE_CASES).sort()).toEqual(REQUEST_RULES.map((r) => r.name).sort());
  });
  for (const rule of REQUEST_RULES) {
    describe(rule.name, () => {
      it.each(REQUEST_RULE_CASES[rule.name] ?? [])("$what", (c) => {
        const reply = rule.check(c.head, { allow: new Set(c.allow ?? []) });
        expect(reply?.code).toBe(c.refused);
        if (reply) expect(reply.message).not.toMatch(/\n/);
      });
    });
  }

  it("answer with the first rule's refusal", () => {
    const evilTrace = head({ method: "TRACE", rawHeaders: ["Host", "evil.com"] });
    expect(refusal(evilTrace, { allow: new Set() })?.code).toBe(403);
    expect(refusal(head({ method: "TRACE" }), { allow: new Set() })?.code).toBe(405);
    expect(refusal(head({ url: "/api/v1/pods" }), { allow: new Set() })).toBeUndefined();
  });
});

describe("request framing", () => {
  it.each([
    { raw: [], framing: { kind: "none" } },
    { raw: ["Content-Length", "0"], framing: { kind: "none" } },
    { raw: ["Content-Length", " 12 "], framing: { kind: "length", length: 12 } },
    { raw: ["transfer-encoding", "Chunked"], framing: { kind: "chunked" } },
    { raw: ["Content-Length", "+5"], framing: undefined },
    { raw: ["Content-Length", "5, 5"], framing: undefined },
    { raw: ["Content-Length", "-1"], framing: undefined },
    { raw: ["Content-Length", "0x5"], framing: undefined },
    { raw: ["Content-Length", "9999999999999999"], framing: undefined },
    { raw: ["Transfer-Encoding", "identity"], framing: undefined },
    { raw: ["Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked"], framing: undefined },
    { raw: ["Transfer-Encoding", "chunked", "Content-Length", "3"], framing: undefined },
  ])("$raw", ({ raw, framing }) => {
    const got = requestFraming(raw);
    if (framing === undefined) expect(got).toHaveProperty("problem");
    else expect(got).toEqual(framing);
  });
});

describe("paths", () => {
  it("split into segments decoded once", () => {
    expect(pathSegments("/api/v1/namespaces/%64efault?x=%2f")).toEqual(["api", "v1", "namespaces", "default"]);
    expect(pathSegments("/")).toEqual([""]);
  });

  it.each([
    { url: "/api/v1/namespaces/d/pods/p/exec", stream: "exec" },
    { url: "/api/v1/namespaces/d/pods/p/attach", stream: "attach" },
    { url: "/api/v1/namespaces/d/pods/p/portforward", stream: "portforward" },
    { url: "/api/v1/nodes/n/proxy/cri/exec/x", stream: "exec" },
    { url: "/api/v1/nodes/n/proxy/attach/d/p/c", stream: "attach" },
    { url: "/api/v1/namespaces/d/pods/p/log", stream: undefined },
    { url: "/api/v1/namespaces/d/pods/p", stream: undefined },
    { url: "/apis/apps/v1/namespaces/d/deployments/exec", stream: undefined },
  ])("find the stream of $url", ({ url, stream }) => {
    const segments = pathSegments(url);
    expect(Array.isArray(segments) ? streamOf(segments) : "bad path").toBe(stream);
  });

  it("join the server's path with the request's path and query", () => {
    expect(targetPath("/", "/api/v1/pods?watch=1")).toBe("/api/v1/pods?watch=1");
    expect(targetPath("/k8s/clusters/c-1/", "/api")).toBe("/k8s/clusters/c-1/api");
    expect(targetPath("/clusters/b", "/%2e%2e/a/api")).toBeUndefined();
    expect(targetPath("/", "http://evil/api")).toBeUndefined();
    expect(targetPath("/", "//evil/api")).toBeUndefined();
    expect(targetPath("/", undefined)).toBeUndefined();
  });
});

interface HeaderCase {
  header: [string, string];
  upgrade?: boolean;
  listed?: string[];
  verdict: HeaderVerdict | undefined;
}

/** Each request header rule's own cases: the rule alone, on one header. */
const REQUEST_HEADER_RULE_CASES: Record<string, HeaderCase[]> = {
  "app-credentials": [
    { header: ["authorization", "Bearer app"], verdict: "drop" },
    { header: ["proxy-authorization", "Basic eDp5"], verdict: "drop" },
    { header: ["cookie", "session=1"], verdict: "drop" },
    { header: ["accept", "application/json"], verdict: undefined },
  ],
  impersonation: [
    { header: ["impersonate-user", "system:admin"], verdict: "drop" },
    { header: ["impersonate-extra-scopes", "all"], verdict: "drop" },
    { header: ["x-impersonate", "no"], verdict: undefined },
  ],
  "front-proxy-identity": [
    { header: ["x-remote-user", "system:admin"], verdict: "drop" },
    { header: ["x-remote-group", "system:masters"], verdict: "drop" },
    { header: ["x-remote-extra-scopes", "all"], verdict: "drop" },
    { header: ["x-remoteness", "1"], verdict: undefined },
  ],
  forwarding: [
    { header: ["x-forwarded-for", "10.0.0.1"], verdict: "drop" },
    { header: ["x-forwarded-proto", "https"], verdict: "drop" },
    { header: ["forwarded", "for=10.0.0.1"], verdict: "drop" },
    { header: ["x-forward", "1"], verdict: undefined },
  ],
  host: [
    { header: ["host", "localhost"], verdict: "drop" },
    { header: ["x-host", "a"], verdict: undefined },
  ],
  framing: [
    { header: ["content-length", "5"], verdict: "drop" },
    { header: ["transfer-encoding", "chunked"], verdict: "drop" },
    { header: ["content-type", "application/json"], verdict: undefined },
  ],
  upgrade: [
    { header: ["upgrade", "websocket"], upgrade: true, verdict: "keep" },
    { header: ["upgrade", "websocket"], upgrade: false, verdict: "drop" },
  ],
  expectation: [{ header: ["expect", "100-continue"], verdict: "drop" }],
  "hop-by-hop": [
    { header: ["connection", "keep-alive"], verdict: "drop" },
    { header: ["keep-alive", "timeout=5"], verdict: "drop" },
    { header: ["proxy-connection", "keep-alive"], verdict: "drop" },
    { header: ["te", "trailers"], verdict: "drop" },
    { header: ["trailer", "x"], verdict: "drop" },
    { header: ["accept-encoding", "gzip"], verdict: undefined },
  ],
  "connection-listed": [
    { header: ["x-hop", "1"], listed: ["x-hop"], verdict: "drop" },
    { header: ["x-hop", "1"], listed: [], verdict: undefined },
  ],
  "websocket-bearer": [
    { header: ["sec-websocket-protocol", "base64url.bearer.authorization.k8s.io.ZXlK, v5.channel.k8s.io"], verdict: { value: "v5.channel.k8s.io" } },
    { header: ["sec-websocket-protocol", "base64url.bearer.authorization.k8s.io.abc"], verdict: "drop" },
    { header: ["sec-websocket-protocol", "v4.channel.k8s.io"], verdict: { value: "v4.channel.k8s.io" } },
  ],
};

const RESPONSE_HEADER_RULE_CASES: Record<string, HeaderCase[]> = {
  "upgrade-handshake": [
    { header: ["upgrade", "websocket"], upgrade: true, verdict: "keep" },
    { header: ["connection", "Upgrade"], upgrade: true, verdict: "keep" },
    { header: ["connection", "keep-alive"], upgrade: false, verdict: undefined },
  ],
  "hop-by-hop": [
    { header: ["transfer-encoding", "chunked"], verdict: "drop" },
    { header: ["keep-alive", "timeout=5"], verdict: "drop" },
    { header: ["content-length", "12"], verdict: undefined },
  ],
  "connection-listed": [{ header: ["x-hop", "1"], listed: ["x-hop"], verdict: "drop" }],
  "proxy-authenticate": [{ header: ["proxy-authenticate", "Basic"], verdict: "drop" }],
};

for (const [kind, rules, cases] of [
  ["request header rules", REQUEST_HEADER_RULES, REQUEST_HEADER_RULE_CASES],
  ["response header rules", RESPONSE_HEADER_RULES, RESPONSE_HEADER_RULE_CASES],
] as const) {
  describe(kind, () => {
    it("every rule has its own cases, and every case names a rule", () => {
      expect(Object.keys(cases).sort()).toEqual(rules.map((r) => r.name).sort());
    });
    for (const rule of rules) {
      it.each(cases[rule.name] ?? [])(`${rule.name}: $header.0 $header.1`, (c) => {
        expect(rule.verdict(c.header[0], c.header[1], { upgrade: c.upgrade ?? false, listed: new Set(c.listed ?? []) })).toEqual(c.verdict);
      });
    }
  });
}

describe("upstream request headers", () => {
  const add = { host: "remote:6443", token: "T", framing: { kind: "none" } as const, upgrade: false };

  it("drop what the rules drop, keep the rest and repeats, then add the remote's host, the token and the proxy's framing", () => {
    const raw = [
      "Host", "127.0.0.1:17001",
      "Authorization", "Bearer app-token",
      "authorization", "Basic eDp5",
      "Impersonate-User", "system:admin",
      "X-Remote-User", "system:admin",
      "X-Forwarded-For", "10.0.0.1",
      "Connection", "keep-alive, X-Hop, content-length, transfer-encoding, authorization, host",
      "X-Hop", "1",
      "Accept", "application/json",
      "X-Custom", "a",
      "X-Custom", "b",
      "Content-Length", "7",
      "Expect", "100-continue",
    ];
    expect(upstreamRequestHeaders(raw, { ...add, framing: { kind: "length", length: 7 } })).toEqual([
      "Accept", "application/json",
      "X-Custom", "a",
      "X-Custom", "b",
      "Host", "remote:6443",
      "Authorization", "Bearer T",
      "Content-Length", "7",
    ]);
    expect(upstreamRequestHeaders(["Transfer-Encoding", "chunked"], { ...add, framing: { kind: "chunked" } })).toEqual([
      "Host", "remote:6443", "Authorization", "Bearer T", "Transfer-Encoding", "chunked",
    ]);
  });

  it("keep Upgrade for upgrades and ask for one, with no framing", () => {
    const raw = ["Host", "localhost", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "k", "Authorization", "Bearer x", "Content-Length", "3"];
    expect(upstreamRequestHeaders(raw, { ...add, upgrade: true, framing: { kind: "length", length: 3 } })).toEqual([
      "Upgrade", "websocket",
      "Sec-WebSocket-Key", "k",
      "Host", "remote:6443",
      "Authorization", "Bearer T",
      "Connection", "Upgrade",
    ]);
  });

  it("carry exactly one Authorization (the token), one Host and the proxy's framing only, whatever the app sends (property)", () => {
    const special = fc.constantFrom(
      "authorization", "proxy-authorization", "impersonate-user", "impersonate-extra-x", "x-remote-user", "x-forwarded-for", "forwarded",
      "host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te",
    );
    const casing = fc.array(fc.boolean(), { minLength: 30, maxLength: 30 });
    const header = fc.oneof(
      fc.tuple(special, casing).map(([n, c]) => n.split("").map((ch, i) => (c[i] ? ch.toUpperCase() : ch)).join("")),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
    );
    const framing = fc.constantFrom({ kind: "none" } as const, { kind: "length", length: 3 } as const, { kind: "chunked" } as const);
    fc.assert(
      fc.property(fc.array(fc.tuple(header, fc.string()), { maxLength: 20 }), fc.boolean(), framing, (pairs, upgrade, f) => {
        const out = upstreamRequestHeaders(pairs.flat(), { ...add, upgrade, framing: f });
        const n = names(out);
        const count = (name: string) => n.filter((x) => x === name).length;
        const framingHeaders = n.filter((x) => x === "content-length" || x === "transfer-encoding").length;
        return (
          count("authorization") === 1 &&
          out[n.indexOf("authorization") * 2 + 1] === "Bearer T" &&
          count("host") === 1 &&
          framingHeaders === (upgrade || f.kind === "none" ? 0 : 1) &&
          n.every((x) => !x.startsWith("impersonate-") && !x.startsWith("x-remote-") && !x.startsWith("x-forwarded-") && x !== "proxy-authorization")
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe("response headers", () => {
  it("drop hop-by-hop ones, keep an upgrade's handshake", () => {
    const raw = ["Content-Type", "application/json", "Transfer-Encoding", "chunked", "Connection", "keep-alive", "Keep-Alive", "timeout=5", "Audit-Id", "x", "Cache-Control", "no-cache, private"];
    expect(filterResponseHeaders(raw)).toEqual(["Content-Type", "application/json", "Audit-Id", "x", "Cache-Control", "no-cache, private"]);
    expect(filterResponseHeaders(["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "a"], { upgrade: true })).toEqual([
      "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "a",
    ]);
    expect(applyHeaderRules(["Connection", "x-a", "X-A", "1", "X-B", "2"], RESPONSE_HEADER_RULES)).toEqual(["X-B", "2"]);
  });
});

describe("helpers", () => {
  it("accept only loopback Host headers, with any port", () => {
    expect(isLoopbackHost(undefined)).toBe(false);
    expect(isLoopbackHost("[::1]:17001")).toBe(true);
    expect(isLoopbackHost("localhost:")).toBe(false);
  });

  it("tell a browser's cross-site request from a client's", () => {
    expect(isCrossSite(undefined, undefined)).toBe(false);
    expect(isCrossSite("http://localhost:3000", "same-site")).toBe(false);
    expect(isCrossSite("not a url", undefined)).toBe(true);
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
    const raw = rawStatusResponse({ code: 405, reason: "MethodNotAllowed", message: "m" });
    expect(raw).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    const [top, body] = raw.split("\r\n\r\n");
    expect(top).toContain(`Content-Length: ${Buffer.byteLength(body ?? "")}`);
    expect(JSON.parse(body ?? "").code).toBe(405);
  });
});
