// The proxy on raw sockets, table-driven: framing, smuggling, request-target and Host forms,
// methods, upgrades, path encodings and headers. Each case writes exact bytes to the proxy; the
// upstream is a local HTTPS server (our own port) that records what it parsed. For every case:
// the answers the app gets, what the upstream saw, and the invariant (proxy-fixture.ts): exactly
// one Authorization per upstream request, the import's, and every answer to its own request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImportProxy } from "../../../sidecar/proxy.ts";
import {
  exchange,
  ID_HEADER,
  invariantProblems,
  pairs,
  startProxy,
  startRecordingUpstream,
  type RecordingUpstream,
  type SeenRequest,
  type SentRequest,
} from "./proxy-fixture.ts";
import { waitFor } from "./helpers.ts";

interface RequestSpec {
  method?: string;
  target?: string;
  /** null: no Host header. */
  host?: string | null;
  headers?: string[];
  body?: string;
  version?: string;
}

interface MatrixCase {
  name: string;
  /** The bytes: r() writes one request tagged with an id and remembers it. */
  send: (r: (spec?: RequestSpec) => string) => string;
  /** Through the proxy that allows exec, attach and port-forward. */
  allowStreams?: boolean;
  /** Final answers on the connection, in order (a probe GET follows unless the connection closes). */
  statuses: number[];
  interim?: number[];
  /** The proxy closes the connection after these answers. */
  closes?: boolean;
  /** What the upstream parsed, in order: "METHOD url", and the bodies when given. */
  upstream: string[];
  bodies?: string[];
  /** After a 101: data the app sends, echoed by the upstream through the tunnel. */
  tunnel?: string;
  check?: (seen: SeenRequest[]) => void;
}

const crlf = (...lines: string[]) => lines.map((l) => `${l}\r\n`).join("");
const smuggledGet = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: localhost\r\n\r\n";
const unfinished = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: localhost\r\nX-Captured: ";
const chunk = (s: string) => `${Buffer.byteLength(s, "latin1").toString(16)}\r\n${s}\r\n0\r\n\r\n`;
const headerNames = (r: SeenRequest) => pairs(r.rawHeaders).map(([n]) => n);

const CASES: MatrixCase[] = [
  // --- framing
  { name: "GET without a body", send: (r) => r(), statuses: [200], upstream: ["GET /api"] },
  {
    name: "pipelined GET, POST with a length, chunked PUT, DELETE",
    send: (r) =>
      r({ target: "/api/1" }) +
      r({ method: "POST", target: "/api/2", headers: ["Content-Length: 3"], body: "abc" }) +
      r({ method: "PUT", target: "/api/3", headers: ["Transfer-Encoding: chunked"], body: chunk("defg") }) +
      r({ method: "DELETE", target: "/api/4" }),
    statuses: [200, 200, 200, 200],
    upstream: ["GET /api/1", "POST /api/2", "PUT /api/3", "DELETE /api/4"],
    bodies: ["", "abc", "defg", ""],
  },
  {
    name: "chunked body with extensions and trailers",
    send: (r) => r({ method: "POST", headers: ["Transfer-Encoding: chunked"], body: "3;x=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n" }),
    statuses: [200],
    upstream: ["POST /api"],
    bodies: ["abc"],
    check: ([seen]) => expect(pairs(seen?.rawHeaders ?? [])).toContainEqual(["transfer-encoding", "chunked"]),
  },
  {
    name: "POST with Content-Length: 0",
    send: (r) => r({ method: "POST", headers: ["Content-Length: 0"] }),
    statuses: [200],
    upstream: ["POST /api"],
    bodies: [""],
  },
  {
    name: "HTTP/1.0 POST with a length",
    send: (r) => r({ method: "POST", version: "1.0", headers: ["Content-Length: 2"], body: "hi" }),
    statuses: [200],
    closes: true,
    upstream: ["POST /api"],
    bodies: ["hi"],
  },
  ...[
    ["Content-Length and Transfer-Encoding", ["Content-Length: 3", "Transfer-Encoding: chunked"]],
    ["Transfer-Encoding and Content-Length", ["Transfer-Encoding: chunked", "Content-Length: 3"]],
    ["two Content-Lengths", ["Content-Length: 3", "Content-Length: 3"]],
    ["Content-Length +3", ["Content-Length: +3"]],
    ["Content-Length 3, 3", ["Content-Length: 3, 3"]],
    ["Content-Length -1", ["Content-Length: -1"]],
    ["Content-Length 0x3", ["Content-Length: 0x3"]],
    ["Transfer-Encoding chunked, gzip", ["Transfer-Encoding: chunked, gzip"]],
    ["Transfer-Encoding identity", ["Transfer-Encoding: identity"]],
    ["Transfer-Encoding twice", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]],
    ["Transfer-Encoding with a vertical tab", ["Transfer-Encoding: \x0bchunked"]],
    ["Transfer-Encoding with a space before the colon", ["Transfer-Encoding : chunked"]],
  ].map(
    ([name, headers]): MatrixCase => ({
      name: `refused by Node's parser: ${name as string}`,
      send: (r) => r({ method: "POST", headers: headers as string[], body: "3\r\nabc\r\n0\r\n\r\n" }),
      statuses: [400],
      closes: true,
      upstream: [],
    }),
  ),
  {
    name: "Transfer-Encoding gzip, chunked (Node takes it, the proxy does not)",
    send: (r) => r({ method: "POST", headers: ["Transfer-Encoding: gzip, chunked"], body: chunk("abc") }),
    statuses: [400],
    upstream: [],
  },
  {
    name: "Transfer-Encoding Chunked",
    send: (r) => r({ method: "POST", headers: ["Transfer-Encoding: Chunked"], body: chunk("abc") }),
    statuses: [200],
    upstream: ["POST /api"],
    bodies: ["abc"],
  },
  // --- smuggling through the Connection header
  {
    name: "Connection lists content-length, the body is a whole request",
    send: (r) => r({ target: "/api/x", headers: ["Connection: keep-alive, content-length", `Content-Length: ${smuggledGet.length}`], body: smuggledGet }),
    statuses: [200],
    upstream: ["GET /api/x"],
    bodies: [smuggledGet],
  },
  {
    name: "Connection lists Content-Length, the body is an unfinished request",
    send: (r) => r({ method: "POST", headers: ["Connection: Content-Length", `Content-Length: ${unfinished.length}`], body: unfinished }),
    statuses: [200],
    upstream: ["POST /api"],
    bodies: [unfinished],
  },
  {
    name: "Connection lists transfer-encoding, the chunked body is a request",
    send: (r) => r({ method: "POST", headers: ["Connection: transfer-encoding", "Transfer-Encoding: chunked"], body: chunk(smuggledGet) }),
    statuses: [200],
    upstream: ["POST /api"],
    bodies: [smuggledGet],
  },
  {
    name: "Connection lists authorization and host",
    send: (r) => r({ headers: ["Connection: authorization, host", "Authorization: Bearer app-token"] }),
    statuses: [200],
    upstream: ["GET /api"],
  },
  {
    name: "Connection: close",
    send: (r) => r({ headers: ["Connection: close"] }),
    statuses: [200],
    closes: true,
    upstream: ["GET /api"],
  },
  {
    name: "Expect: 100-continue",
    send: (r) => r({ method: "POST", headers: ["Expect: 100-continue", "Content-Length: 3"], body: "abc" }),
    interim: [100],
    statuses: [200],
    upstream: ["POST /api"],
    bodies: ["abc"],
    check: ([seen]) => expect(headerNames(seen as SeenRequest)).not.toContain("expect"),
  },
  { name: "Expect: something else", send: (r) => r({ headers: ["Expect: teapot"] }), statuses: [417], upstream: [] },
  // --- request-target forms
  { name: "absolute-form", send: (r) => r({ target: "http://localhost/api" }), statuses: [400], upstream: [] },
  { name: "asterisk-form", send: (r) => r({ method: "OPTIONS", target: "*" }), statuses: [400], upstream: [] },
  { name: "network-path reference", send: (r) => r({ target: "//evil.com/api" }), statuses: [400], upstream: [] },
  { name: "authority-form CONNECT", send: (r) => r({ method: "CONNECT", target: "localhost:443", host: "localhost:443" }), statuses: [405], closes: true, upstream: [] },
  // --- Host forms
  ...["localhost", "localhost:17001", "LocalHost", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:17001"].map(
    (host): MatrixCase => ({ name: `Host ${host}`, send: (r) => r({ host }), statuses: [200], upstream: ["GET /api"] }),
  ),
  ...["evil.com", "evil.com:17001", "localhost.evil.com", "127.0.0.2", ""].map(
    (host): MatrixCase => ({ name: `Host ${JSON.stringify(host)}`, send: (r) => r({ host }), statuses: [403], upstream: [] }),
  ),
  { name: "two Host headers", send: (r) => r({ headers: ["Host: evil.com"] }), statuses: [400], upstream: [] },
  { name: "no Host, HTTP/1.1", send: (r) => r({ host: null }), statuses: [400], closes: true, upstream: [] },
  { name: "no Host, HTTP/1.0", send: (r) => r({ host: null, version: "1.0" }), statuses: [403], closes: true, upstream: [] },
  // --- methods
  ...["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map(
    (method): MatrixCase => ({ name: `method ${method}`, send: (r) => r({ method }), statuses: [200], upstream: [`${method} /api`] }),
  ),
  ...["TRACE", "PROPFIND", "LOCK"].map((method): MatrixCase => ({ name: `method ${method}`, send: (r) => r({ method }), statuses: [405], upstream: [] })),
  { name: "method FOO (not HTTP)", send: (r) => r({ method: "FOO" }), statuses: [400], closes: true, upstream: [] },
  // --- upgrades
  ...[
    ["SPDY/3.1", "POST", "/api/v1/namespaces/d/pods/p/exec?command=sh"],
    ["websocket", "GET", "/api/v1/namespaces/d/pods/p/attach?stdout=1"],
    ["websocket", "GET", "/api/v1/namespaces/d/pods/p/portforward?ports=80"],
    ["SPDY/3.1", "POST", "/api/v1/nodes/n/proxy/exec/d/p/c?cmd=sh"],
  ].flatMap(([protocol, method, target]): MatrixCase[] => [
    {
      name: `${protocol} upgrade to ${target}, not allowed`,
      send: (r) => r({ method, target, headers: ["Connection: Upgrade", `Upgrade: ${protocol}`] }),
      statuses: [403],
      closes: true,
      upstream: [],
    },
    {
      name: `${protocol} upgrade to ${target}, allowed`,
      allowStreams: true,
      send: (r) => r({ method, target, headers: ["Connection: Upgrade", `Upgrade: ${protocol}`] }),
      statuses: [101],
      tunnel: "hello",
      upstream: [`${method} ${target}`],
      check: ([seen]) => expect(pairs(seen?.rawHeaders ?? [])).toContainEqual(["upgrade", protocol]),
    },
  ]),
  {
    name: "websocket upgrade to a watch",
    send: (r) => r({ target: "/api/v1/namespaces/d/pods?watch=1", headers: ["Connection: Upgrade", "Upgrade: websocket"] }),
    statuses: [101],
    tunnel: "frame",
    upstream: ["GET /api/v1/namespaces/d/pods?watch=1"],
  },
  {
    name: "upgrade with a body: the body is tunnel data, sent only after the 101",
    allowStreams: true,
    send: (r) => r({ method: "POST", target: "/api/v1/namespaces/d/pods/p/exec", headers: ["Connection: Upgrade, content-length", "Upgrade: SPDY/3.1", "Content-Length: 5"], body: "early" }),
    statuses: [101],
    tunnel: "x",
    upstream: ["POST /api/v1/namespaces/d/pods/p/exec"],
    check: ([seen]) => expect(headerNames(seen as SeenRequest)).not.toContain("content-length"),
  },
  { name: "h2c upgrade", send: (r) => r({ headers: ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"] }), statuses: [400], closes: true, upstream: [] },
  {
    name: "Upgrade without Connection: upgrade is a plain request",
    send: (r) => r({ headers: ["Upgrade: websocket"] }),
    statuses: [200],
    upstream: ["GET /api"],
    check: ([seen]) => expect(headerNames(seen as SeenRequest)).not.toContain("upgrade"),
  },
  {
    name: "exec without an upgrade, not allowed",
    send: (r) => r({ method: "POST", target: "/api/v1/namespaces/d/pods/p/exec?command=sh" }),
    statuses: [403],
    upstream: [],
  },
  // --- path encodings
  ...["/api/%2e%2e/secrets", "/api/%2E%2E/secrets", "/api/../secrets", "/api/%2e/v1", "/api/a%2fb", "/api/a%2Fb", "/api/a%5cb", "/api/a\\b", "/api;x/v1", "/api/v1;/pods", "/api/a%3bb", "/api/%252e%252e/x", "/api/a%252fb", "/api//v1", "/api/%zz", "/api/a%00"].map(
    (target): MatrixCase => ({ name: `path ${target}`, send: (r) => r({ target }), statuses: [400], upstream: [] }),
  ),
  { name: "path with an encoded letter", send: (r) => r({ target: "/api/v1/namespaces/%64efault" }), statuses: [200], upstream: ["GET /api/v1/namespaces/%64efault"] },
  { name: "query with %2f, .. and ;", send: (r) => r({ target: "/api/v1/pods?labelSelector=a%2F..;b" }), statuses: [200], upstream: ["GET /api/v1/pods?labelSelector=a%2F..;b"] },
  // --- headers
  {
    name: "the app's identities and forwarding headers are dropped",
    send: (r) =>
      r({
        headers: [
          "Authorization: Bearer app",
          "Authorization: Basic eDp5",
          "Proxy-Authorization: Basic eDp5",
          "Impersonate-User: system:admin",
          "X-Remote-User: system:admin",
          "X-Remote-Group: system:masters",
          "X-Forwarded-For: 10.0.0.1",
          "X-Forwarded-Proto: https",
          "Forwarded: for=10.0.0.1",
          "Cookie: session=1",
          "X-Custom: kept",
        ],
      }),
    statuses: [200],
    upstream: ["GET /api"],
    check: ([seen]) => {
      const names = headerNames(seen as SeenRequest);
      expect(names.filter((n) => /^(impersonate-|x-remote-|x-forwarded-|forwarded$|proxy-authorization$|cookie$)/.test(n))).toEqual([]);
      expect(names).toContain("x-custom");
    },
  },
  { name: "a header value with obs-text", send: (r) => r({ headers: ["X-Latin: caf\xe9"] }), statuses: [200], upstream: ["GET /api"] },
  { name: "headers larger than Node's limit", send: (r) => r({ headers: [`X-Big: ${"a".repeat(20_000)}`] }), statuses: [431], closes: true, upstream: [] },
];

let upstream: RecordingUpstream;
let plain: { proxy: ImportProxy; token: string };
let streams: { proxy: ImportProxy; token: string };
beforeAll(async () => {
  upstream = await startRecordingUpstream();
  plain = await startProxy(upstream);
  streams = await startProxy(upstream, { allow: ["exec", "attach", "portforward"] });
});
afterAll(async () => {
  await plain.proxy.close();
  await streams.proxy.close();
  await upstream.close();
});

describe(`proxy matrix (${CASES.length} cases, raw sockets)`, () => {
  it.each(CASES.map((c, i) => ({ ...c, i })))("$name", async (c) => {
    const { proxy, token } = c.allowStreams ? streams : plain;
    const sent: SentRequest[] = [];
    const r = (spec: RequestSpec = {}) => {
      const id = `c${c.i}-${sent.length}`;
      const method = spec.method ?? "GET";
      const target = spec.target ?? "/api";
      sent.push({ id, method, upstreamUrl: target });
      const host = spec.host === null ? "" : `Host: ${spec.host ?? "localhost"}\r\n`;
      return `${method} ${target} HTTP/${spec.version ?? "1.1"}\r\n${host}${ID_HEADER}: ${id}\r\n${crlf(...(spec.headers ?? []))}\r\n${spec.body ?? ""}`;
    };
    let bytes = c.send(r);
    const upgrade = c.statuses.includes(101);
    const probe = !c.closes && !upgrade;
    if (probe) bytes += r({ target: "/api/probe" });
    const before = upstream.seen.length;
    const result = await exchange(proxy.port, bytes, {
      finals: c.closes ? Number.POSITIVE_INFINITY : c.statuses.length + (probe ? 1 : 0),
      isHead: (i) => sent[i]?.method === "HEAD",
    });
    if (upgrade && c.tunnel !== undefined) {
      result.socket.write(c.tunnel);
      await waitFor("the upstream to echo through the tunnel", () => result.received().includes(`echo:${c.tunnel}`));
    }
    result.socket.destroy();

    const finals = result.responses.filter((x) => x.status >= 200 || x.status === 101);
    expect(finals.map((x) => x.status)).toEqual([...c.statuses, ...(probe ? [200] : [])]);
    expect(result.responses.filter((x) => x.status < 200 && x.status !== 101).map((x) => x.status)).toEqual(c.interim ?? []);
    if (c.closes) expect(result.closed).toBe(true);
    // The proxy's own refusals are Kubernetes Status objects (Node's own 400s and 417s are not ours).
    for (const refused of finals.filter((x) => x.status >= 400 && x.headers.some(([n, v]) => n === "content-type" && v === "application/json"))) {
      expect(JSON.parse(refused.body)).toMatchObject({ kind: "Status", code: refused.status });
    }

    // Pipelined requests go upstream concurrently, on several pooled connections: compare in the order sent.
    const order = (x: SeenRequest) => sent.findIndex((s) => pairs(x.rawHeaders).some(([n, v]) => n === ID_HEADER.toLowerCase() && v === s.id));
    const seen = upstream.seen.slice(before).sort((a, b) => order(a) - order(b));
    expect(invariantProblems(token, seen, sent, result.responses)).toEqual([]);
    const expected = [...c.upstream, ...(probe ? ["GET /api/probe"] : [])];
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(expected);
    if (c.bodies) expect(seen.slice(0, c.bodies.length).map((s) => s.body)).toEqual(c.bodies);
    c.check?.(seen);
  });

  it("refusals the proxy makes itself are Kubernetes Status objects", async () => {
    const result = await exchange(plain.proxy.port, "TRACE /api HTTP/1.1\r\nHost: localhost\r\n\r\n", { finals: 1 });
    result.socket.destroy();
    expect(JSON.parse(result.responses[0]?.body ?? "")).toMatchObject({ kind: "Status", reason: "MethodNotAllowed", code: 405 });
  });
});
