// Byte-level fuzz of the proxy on raw sockets: arbitrary bytes (biased towards the troublesome
// ones) in the path and in header names and values of a request, followed by a plain request on
// the same connection. Whatever the bytes, the invariant holds on the upstream's side (one
// Authorization per request, the import's; nothing smuggled; each answer to its own request),
// every path that reaches the upstream is one the path rules accept, and the proxy keeps serving.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pathSegments } from "../../../sidecar/proxy-rules.ts";
import { exchange, ID_HEADER, invariantProblems, proxyUnderTest, type SeenRequest, type SentRequest } from "./proxy-fixture.ts";

const RUNS = 300;

const tricky = fc.constantFrom(
  "%2e", "%2E", "%2f", "%2F", "%5c", "%25", "%", "%3b", "..", ".", ";", "\\", "/", "//", "?", "#", " ", "\t", "\r\n", "\r", "\n", ":", ",",
  "\x00", "\x7f", "\xff", "\x80", "chunked", "connection", "authorization", "Bearer x", "host", "upgrade", "websocket", "exec", "close",
  "keep-alive", "100-continue", "expect", "impersonate-user", "x-remote-user", "x-forwarded-for", "GET / HTTP/1.1", "HTTP/1.1",
);
const bytes = (maxLength: number) =>
  fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b)), tricky), { maxLength }).map((parts) => parts.join(""));
const headerName = fc.oneof(
  fc.constantFrom("Connection", "Authorization", "Host", "Upgrade", "Expect", "TE", "Trailer", "Keep-Alive", "Impersonate-User", "X-Remote-User", "Sec-WebSocket-Protocol"),
  bytes(12),
);
/** Lengths and codings would make the proxy wait for a body the fuzz never sends; the matrix covers them. */
const framingOrId = /content-length|transfer-encoding|x-req-id/i;

const under = proxyUnderTest();
let run = 0;

/**
 * Writes the fuzzed request (its head up to the id, then `rest`), then a plain one on the same
 * connection, and checks the invariant on what came of both. Returns the upstream's records.
 */
async function check(method: string, target: string, rest: string, upstreamUrl: string | undefined): Promise<{ seen: SeenRequest[]; statuses: number[] }> {
  const { upstream, proxy, token } = under;
  const n = run++;
  const first = `${method} ${target} HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: f${n}-0\r\n${rest}`;
  const second = `GET /api/after HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: f${n}-1\r\n\r\n`;
  const sent: SentRequest[] = [
    { id: `f${n}-0`, method, upstreamUrl },
    { id: `f${n}-1`, method: "GET", upstreamUrl: "/api/after" },
  ];
  const before = upstream.seen.length;
  const result = await exchange(proxy.port, first + second, { finals: 2 });
  result.socket.destroy();
  const seen = upstream.seen.slice(before);
  expect(invariantProblems(token, seen, sent, result.responses)).toEqual([]);
  for (const r of seen) expect(pathSegments(r.url), r.url).toBeInstanceOf(Array);
  return { seen, statuses: result.responses.filter((r) => r.status >= 200).map((r) => r.status) };
}

describe("proxy fuzz", () => {
  it(`arbitrary bytes in the path (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(bytes(40), async (path) => {
        fc.pre(!framingOrId.test(path));
        await check("GET", `/${path}`, "\r\n", undefined);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it(`arbitrary bytes in header names and values (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerName, bytes(30)), { minLength: 1, maxLength: 4 }), async (headers) => {
        fc.pre(!headers.some(([k, v]) => framingOrId.test(k) || framingOrId.test(v)));
        await check("GET", "/api/v1/pods", `${headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`, "/api/v1/pods");
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it(`arbitrary bodies, framed by length or chunks, whatever the Connection header lists (${RUNS} runs)`, async () => {
    const listed = fc.subarray(["content-length", "transfer-encoding", "authorization", "host", "keep-alive", "upgrade", "expect", "te"]);
    const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS");
    await fc.assert(
      fc.asyncProperty(method, bytes(60), fc.boolean(), listed, async (verb, body, chunked, connection) => {
        const framing = chunked ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${Buffer.byteLength(body, "latin1")}\r\n`;
        const payload = chunked && body.length > 0 ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : chunked ? "0\r\n\r\n" : body;
        const { seen, statuses } = await check(verb, "/api/body", `Connection: ${connection.join(", ")}\r\n${framing}\r\n${payload}`, "/api/body");
        expect(statuses).toEqual([200, 200]);
        expect(seen.find((r) => r.url === "/api/body")?.body).toBe(body);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it("the proxy still serves after the fuzz", async () => {
    const { upstream, proxy } = under;
    const result = await exchange(proxy.port, `GET /api HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: last\r\n\r\n`, { finals: 1 });
    result.socket.destroy();
    expect(result.responses.map((r) => r.status)).toEqual([200]);
    expect(upstream.seen.length).toBeGreaterThan(RUNS / 2);
  });
});
