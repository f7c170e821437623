// The smuggling bug of issue 11, reproduced on raw sockets: a request whose Connection header
// lists content-length must not reach the remote with its body unframed. (Before the fix, the
// upstream parsed GET /api/v1/namespaces/kube-system/secrets, completed by the second request's
// line and headers, its Authorization included.)
import { describe, expect, it } from "vitest";
import { waitFor } from "./helpers.ts";
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

  it("an app that hangs up halfway through a body leaves no half request on a pooled connection", async () => {
    const { upstream, proxy, token } = under;
    const before = upstream.seen.length;
    const half = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\n";
    const cut = await exchange(proxy.port, `POST /api/cut HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: h1\r\nContent-Length: 1000\r\n\r\n${half}`, {
      finals: 0,
    });
    // Hang up only once the upstream has the headers and the half body.
    await waitFor("the half body upstream", () => [...upstream.raw.values()].some((raw) => raw.includes("POST /api/cut") && raw.endsWith(half)));
    cut.socket.destroy();
    const next = await exchange(proxy.port, `GET /api/next HTTP/1.1\r\nHost: localhost\r\n${ID_HEADER}: h2\r\n\r\n`, { finals: 1 });
    next.socket.destroy();
    const seen = upstream.seen.slice(before);
    expect(invariantProblems(token, seen, [{ id: "h2", method: "GET", upstreamUrl: "/api/next" }], next.responses)).toEqual([]);
    expect(seen.map((r) => r.url)).toEqual(["/api/next"]);
  });
});
