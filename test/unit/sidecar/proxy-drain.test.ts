// SIGTERM under load: the proxy stops accepting, lets the requests under way finish (bounded),
// then cuts what is left. The upstream is our own HTTPS server that answers only when told to.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../../common/log.ts";
import { createCA, issue } from "../../../common/pki.ts";
import { SidecarMetrics } from "../../../sidecar/metrics.ts";
import { ImportProxy } from "../../../sidecar/proxy.ts";
import { fakeToken, inOneHour, waitFor } from "./helpers.ts";

interface HeldUpstream {
  server: Server;
  held: ServerResponse[];
  url: string;
  caPem: string;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function heldUpstream(): Promise<HeldUpstream> {
  const ca = await createCA("drain-ca");
  const cert = await issue(ca, { commonName: "upstream", usage: "server", ipAddresses: ["127.0.0.1"] });
  const held: ServerResponse[] = [];
  const server = createServer({ cert: cert.cert, key: cert.key }, (_req: IncomingMessage, res: ServerResponse) => held.push(res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { server, held, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caPem: ca.cert };
}

async function proxyTo(upstream: HeldUpstream): Promise<ImportProxy> {
  const logger = createLogger("test", { write: () => undefined, level: "error" });
  const proxy = new ImportProxy({ name: "a", port: 0, address: "127.0.0.1", metrics: new SidecarMetrics(), logger });
  proxy.setCredentials({ token: fakeToken(inOneHour()), expiry: undefined, server: upstream.url, caPem: upstream.caPem });
  await proxy.listen();
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A GET through the proxy; resolves with the status and body, or the error's code. */
function get(port: number, path: string): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

describe("closing the proxy", () => {
  it("lets a request under way finish, refuses new connections, and reports nothing cut", async () => {
    const upstream = await heldUpstream();
    const proxy = await proxyTo(upstream);
    const port = proxy.port;
    const inFlight = get(port, "/api/v1/pods");
    await waitFor("the upstream to hold the request", () => upstream.held.length === 1, 5_000);
    const closing = proxy.close(5_000);
    expect((await get(port, "/api")).error).toBe("ECONNREFUSED");
    upstream.held[0]!.writeHead(200, { "content-type": "application/json" }).end('{"kind":"PodList"}');
    expect(await inFlight).toEqual({ status: 200, body: '{"kind":"PodList"}' });
    expect(await closing).toBe(0);
  });

  it("cuts what is still running when the drain time is over", async () => {
    const upstream = await heldUpstream();
    const proxy = await proxyTo(upstream);
    const inFlight = get(proxy.port, "/api/v1/pods?watch=1");
    await waitFor("the upstream to hold the request", () => upstream.held.length === 1, 5_000);
    const started = Date.now();
    expect(await proxy.close(300)).toBe(1);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await inFlight).error).toBeDefined();
  });
});
