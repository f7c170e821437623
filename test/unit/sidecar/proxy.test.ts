// The proxy against a fake remote API server: a local HTTPS server with its own CA.
import { once } from "node:events";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { createServer as createHttpsServer, type Server } from "node:https";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ProxyStream } from "../../../common/api.ts";
import { createCA, issue } from "../../../common/pki.ts";
import { createLogger } from "../../../common/log.ts";
import { freePort } from "../../../harness/processes.ts";
import { SidecarMetrics } from "../../../sidecar/metrics.ts";
import { ImportProxy } from "../../../sidecar/proxy.ts";
import { fakeToken, inOneHour, waitFor } from "./helpers.ts";

let caPem: string;
let otherCaPem: string;
let remote: Server;
let server: string;
const logs: string[] = [];
const logger = createLogger("test", { write: (l) => logs.push(l), level: "debug" });
let releaseStream: (() => void) | undefined;
const proxies: ImportProxy[] = [];

beforeAll(async () => {
  const ca = await createCA("remote-ca");
  caPem = ca.cert;
  otherCaPem = (await createCA("other-ca")).cert;
  const cert = await issue(ca, { commonName: "remote", usage: "server", ipAddresses: ["127.0.0.1"] });
  remote = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    if (req.url?.startsWith("/stream")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"type":"ADDED"}\n');
      releaseStream = () => res.end('{"type":"DELETED"}\n');
      return;
    }
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", connection: "keep-alive" });
      res.end(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, body }));
    });
  });
  remote.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (req.url?.startsWith("/forbidden")) {
      const body = '{"kind":"Status","code":403}';
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    const auth = req.headers.authorization ?? "";
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nX-Auth-Seen: ${auth.startsWith("Bearer ") ? "bearer" : "none"}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.on("data", (d: Buffer) => socket.write(`echo:${d.toString()}`));
  });
  remote.listen(0, "127.0.0.1");
  await once(remote, "listening");
  server = `https://127.0.0.1:${(remote.address() as AddressInfo).port}`;
});
afterEach(async () => {
  releaseStream?.();
  releaseStream = undefined;
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  remote.closeAllConnections();
  await new Promise((r) => remote.close(r));
});

async function startProxy(token = fakeToken(inOneHour()), options: { server?: string; ca?: string; now?: () => number; allow?: ProxyStream[] } = {}) {
  const metrics = new SidecarMetrics();
  const proxy = new ImportProxy({ name: "a", port: 0, address: "127.0.0.1", metrics, logger, now: options.now, connectTimeoutMs: 2_000, allow: options.allow });
  proxies.push(proxy);
  if (token !== "") {
    const exp = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()).exp as number;
    proxy.setCredentials({ token, expiry: new Date(exp * 1000), server: options.server ?? server, caPem: options.ca ?? caPem });
  }
  await proxy.listen();
  return { proxy, metrics, token };
}

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

function call(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`request to ${path} timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

const headerPairs = (raw: string[]) => raw.reduce<[string, string][]>((acc, v, i) => (i % 2 ? acc : [...acc, [v.toLowerCase(), raw[i + 1] as string]]), []);

describe("import proxy", () => {
  it("adds the bearer token and drops the app's credentials and impersonation headers", async () => {
    const { proxy, token, metrics } = await startProxy();
    const r = await call(proxy.port, "/api/v1/namespaces/default/pods?limit=1", {
      headers: {
        Authorization: "Bearer app-token",
        "Proxy-Authorization": "Basic eDp5",
        "Impersonate-User": "system:admin",
        "Impersonate-Group": "system:masters",
        "X-Custom": "kept",
      },
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { url: string; rawHeaders: string[] };
    expect(seen.url).toBe("/api/v1/namespaces/default/pods?limit=1");
    const pairs = headerPairs(seen.rawHeaders);
    expect(pairs.filter(([n]) => n === "authorization")).toEqual([["authorization", `Bearer ${token}`]]);
    expect(pairs.some(([n]) => n.startsWith("impersonate-") || n === "proxy-authorization")).toBe(false);
    expect(pairs).toContainEqual(["x-custom", "kept"]);
    expect(pairs).toContainEqual(["host", new URL(server).host]);
    expect(metrics.requests.value({ import: "a", code: "200" })).toBe(1);
    // The response's hop-by-hop headers are the proxy's own business (the remote's says timeout=5).
    expect(r.headers["keep-alive"]).toBe("timeout=65");
  });

  it("passes request bodies", async () => {
    const { proxy } = await startProxy();
    const r = await call(proxy.port, "/api/v1/namespaces/default/configmaps", { method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" } });
    expect(JSON.parse(r.body)).toMatchObject({ method: "POST", body: '{"a":1}' });
  });

  it("refuses Host headers that are not loopback, before calling the remote", async () => {
    const { proxy, metrics } = await startProxy();
    for (const host of ["evil.example", "localhost.evil.example:17001", "10.1.2.3:17001"]) {
      const r = await call(proxy.port, "/api", { headers: { Host: host } });
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", status: "Failure", reason: "Forbidden", code: 403 });
    }
    for (const host of ["localhost:1", "127.0.0.1", "[::1]:17001"]) expect((await call(proxy.port, "/api", { headers: { Host: host } })).status).toBe(200);
    expect(metrics.requests.value({ import: "a", code: "403" })).toBe(3);
  });

  it("answers 503 with a Status without a token, or with an expired one", async () => {
    const none = await startProxy("");
    const r = await call(none.proxy.port, "/api");
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", apiVersion: "v1", reason: "ServiceUnavailable", code: 503 });
    const expired = await startProxy(fakeToken(Math.floor(Date.now() / 1000) - 1));
    const e = await call(expired.proxy.port, "/api");
    expect(e.status).toBe(503);
    expect(JSON.parse(e.body).message).toMatch(/token expired at/);
  });

  it("a request that arrives before the first credentials waits for them instead of getting a 503 (a restarted sidecar)", async () => {
    const early = await startProxy("");
    const reply = call(early.proxy.port, "/api");
    // The request is in the proxy's hands (accepted, parsed, held) before the credentials arrive.
    await waitFor("the request to be held for the first credentials", () => early.proxy.waitingForCredentials === 1 || undefined);
    const token = fakeToken(inOneHour());
    early.proxy.setCredentials({ token, expiry: new Date(Date.now() + 3_600_000), server, caPem });
    expect((await reply).status).toBe(200);
    expect(early.metrics.requests.value({ import: "a", code: "503" })).toBe(0);
  });

  it("answers 502 with a Status, quickly, when the remote is unreachable or not verified by the CA", async () => {
    const closed = `https://127.0.0.1:${await freePort()}`;
    const down = await startProxy(undefined, { server: closed });
    const started = Date.now();
    const r = await call(down.proxy.port, "/api");
    expect(r.status).toBe(502);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", status: "Failure", code: 502 });
    const wrongCa = await startProxy(undefined, { ca: otherCaPem });
    const w = await call(wrongCa.proxy.port, "/api");
    expect(w.status).toBe(502);
    expect(JSON.parse(w.body).message).toMatch(/certificate/);
  });

  it("uses a new token on the next request, on the same connection pool", async () => {
    const { proxy } = await startProxy();
    const next = fakeToken(inOneHour());
    proxy.setCredentials({ token: next, expiry: undefined, server, caPem });
    const r = await call(proxy.port, "/api");
    expect(headerPairs((JSON.parse(r.body) as { rawHeaders: string[] }).rawHeaders)).toContainEqual(["authorization", `Bearer ${next}`]);
    // A new CA gets a new pool: with the wrong one, requests fail; back to the right one, they work.
    proxy.setCredentials({ token: next, expiry: undefined, server, caPem: otherCaPem });
    expect((await call(proxy.port, "/api")).status).toBe(502);
    proxy.setCredentials({ token: next, expiry: undefined, server, caPem });
    expect((await call(proxy.port, "/api")).status).toBe(200);
  });

  it("streams responses without waiting for their end", async () => {
    const { proxy } = await startProxy();
    const firstLine = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port: proxy.port, path: "/stream?watch=1" }, (res) => {
        res.setEncoding("utf8");
        res.once("data", (chunk: string) => {
          resolve(chunk);
          res.destroy();
        });
      });
      req.on("error", reject);
      req.end();
    });
    expect(firstLine).toBe('{"type":"ADDED"}\n');
  });

  it("refuses exec, attach and port-forward unless allowed, upgraded or not", async () => {
    const { proxy, metrics } = await startProxy(undefined, { allow: ["attach"] });
    const exec = await call(proxy.port, "/api/v1/namespaces/default/pods/p/exec?command=sh", { method: "POST" });
    expect(exec.status).toBe(403);
    expect(JSON.parse(exec.body).message).toBe("exec through the mcsa proxy is off: allow it with the pod annotation multicluster.admiralty.io/proxy-allow: exec (sidecar flag --proxy-allow)");
    expect((await call(proxy.port, "/api/v1/namespaces/default/pods/p/portforward", { method: "POST" })).status).toBe(403);
    expect((await call(proxy.port, "/api/v1/namespaces/default/pods/p/attach", { method: "POST" })).status).toBe(200);
    expect(metrics.requests.value({ import: "a", code: "403" })).toBe(2);
  });

  it("tunnels upgrades with the bearer token, and relays a refused upgrade", async () => {
    const { proxy } = await startProxy(undefined, { allow: ["exec"] });
    const socket = connect(proxy.port, "127.0.0.1");
    await once(socket, "connect");
    socket.write(
      "GET /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        "Authorization: Bearer app\r\nImpersonate-User: system:admin\r\n\r\nhello",
    );
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    await waitFor("the 101 and the echoed early data", () => received.includes("echo:hello") || undefined, 5_000).catch((e: Error) => {
      throw new Error(`${e.message}; got ${JSON.stringify(received)}`);
    });
    expect(received).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(received).toMatch(/X-Auth-Seen: bearer/i);
    socket.write("more");
    await waitFor("the tunnel to echo", () => received.includes("echo:more") || undefined);
    socket.destroy();

    const refused = connect(proxy.port, "127.0.0.1");
    await once(refused, "connect");
    refused.write("GET /forbidden HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    let answer = "";
    refused.on("data", (d: Buffer) => (answer += d.toString()));
    await once(refused, "end");
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer).toContain('{"kind":"Status","code":403}');

    const evil = connect(proxy.port, "127.0.0.1");
    await once(evil, "connect");
    evil.write("GET /x HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    let evilAnswer = "";
    evil.on("data", (d: Buffer) => (evilAnswer += d.toString()));
    await once(evil, "end");
    expect(evilAnswer).toMatch(/^HTTP\/1\.1 403 /);
  });

  it("never logs a token", () => {
    expect(logs.join("\n")).not.toMatch(/eyJ/);
  });
});
