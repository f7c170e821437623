// The smuggling bug of issue 11, reproduced on raw sockets: a request whose Connection header
// lists content-length must not reach the remote with its body unframed. (Before the fix, the
// upstream parsed GET /api/v1/namespaces/kube-system/secrets, completed by the second request's
// line and headers, its Authorization included.)
import { describe, expect, it } from "vitest";
import { exchange, ID_HEADER, invariantProblems, proxyUnderTest } from "./proxy-fixture.ts";

const under = proxyUnderTest();

describe("proxy framing", () => {
  it("a body whose length header the Connection header names cannot smuggle a request that captures the next one", async () => {
    const { upstream, proxy, token } = under;
    // An unfinished request in the body: on an unframed forward, the next request's line and
    // headers (its Authorization included) become the smuggled request's headers.
    const smuggled = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\nX-Captured: ";
    const first =
      `GET /api/first HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: s1\r\nConnection: keep-alive, content-length\r\n` +
      `Content-Length: ${Buffer.byteLength(smuggled)}\r\n\r\n${smuggled}`;
    const before = upstream.seen.length;
    const one = await exchange(proxy.port, first, { finals: 1 });
    const two = await exchange(proxy.port, `GET /api/second HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: s2\r\n\r\n`, { finals: 1 });
    one.socket.destroy();
    two.socket.destroy();
    const seen = upstream.seen.slice(before);
    const sent = [
      { id: "s1", method: "GET", upstreamUrl: "/api/first" },
      { id: "s2", method: "GET", upstreamUrl: "/api/second" },
    ];
    expect(invariantProblems(token, seen, sent, [...one.responses, ...two.responses])).toEqual([]);
    expect(seen.map((r) => [r.method, r.url, r.body])).toEqual([
      ["GET", "/api/first", smuggled],
      ["GET", "/api/second", ""],
    ]);
  });
});
