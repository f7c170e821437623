// Fixtures for the proxy's raw-socket tests: a local HTTPS upstream that records every request it
// parses (and the raw bytes of every connection), a raw client that writes exact bytes to the
// proxy and splits what comes back into responses, and the invariant every case must keep.

import { once } from "node:events";
import { afterAll, beforeAll } from "vitest";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { IncomingMessage } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { createCA, issue } from "../../../common/pki.ts";
import { createLogger } from "../../../common/log.ts";
import { SidecarMetrics } from "../../../sidecar/metrics.ts";
import { ImportProxy } from "../../../sidecar/proxy.ts";
import type { ProxyStream } from "../../../common/api.ts";
import { fakeToken, inOneHour, waitFor } from "./helpers.ts";

/** The header the raw client tags each request with; the upstream echoes it. */
export const ID_HEADER = "X-Req-Id";
export const ECHO_HEADER = "x-echo-id";

export interface SeenRequest {
  /** Which upstream connection (1, 2, …) carried it. */
  connection: number;
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
  upgrade: boolean;
}

export interface RecordingUpstream {
  server: string;
  caPem: string;
  seen: SeenRequest[];
  /** Every byte each upstream connection received, decrypted, as latin1. */
  raw: Map<number, string>;
  close(): Promise<void>;
}

/** An HTTPS server on a loopback port we open, answering every request with what it parsed. */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const ca = await createCA("upstream-ca");
  const cert = await issue(ca, { commonName: "upstream", usage: "server", ipAddresses: ["127.0.0.1"] });
  const seen: SeenRequest[] = [];
  const raw = new Map<number, string>();
  const connectionIds = new WeakMap<object, number>();
  let connections = 0;
  const server: Server = createHttpsServer({ cert: cert.cert, key: cert.key, keepAliveTimeout: 30_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const record = remember(req, Buffer.concat(chunks).toString("latin1"), false);
      const id = req.headers[ID_HEADER.toLowerCase()];
      const body = JSON.stringify({ seq: seen.length, ...record, rawHeaders: undefined });
      res.writeHead(200, { "content-type": "application/json", [ECHO_HEADER]: typeof id === "string" ? id : "none" });
      res.end(req.method === "HEAD" ? undefined : body);
    });
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    const n = ++connections;
    connectionIds.set(socket, n);
    raw.set(n, "");
    socket.on("data", (d: Buffer) => raw.set(n, (raw.get(n) ?? "") + d.toString("latin1")));
  });
  const remember = (req: IncomingMessage, body: string, upgrade: boolean): SeenRequest => {
    const record = {
      connection: connectionIds.get(req.socket) ?? 0,
      method: req.method ?? "",
      url: req.url ?? "",
      rawHeaders: req.rawHeaders,
      body,
      upgrade,
    };
    seen.push(record);
    return record;
  };
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    remember(req, "", true);
    const id = req.headers[ID_HEADER.toLowerCase()];
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n${ECHO_HEADER}: ${typeof id === "string" ? id : "none"}\r\n\r\n`);
    if (head.length > 0) socket.write(`echo:${head.toString("latin1")}`);
    socket.on("data", (d: Buffer) => socket.write(`echo:${d.toString("latin1")}`));
    socket.on("error", () => socket.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caPem: ca.cert,
    seen,
    raw,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function startProxy(upstream: RecordingUpstream, options: { allow?: ProxyStream[] } = {}): Promise<{ proxy: ImportProxy; token: string }> {
  const token = fakeToken(inOneHour());
  const logger = createLogger("test", { write: () => undefined, level: "error" });
  const proxy = new ImportProxy({ name: "a", port: 0, address: "127.0.0.1", metrics: new SidecarMetrics(), logger, connectTimeoutMs: 2_000, allow: options.allow });
  proxy.setCredentials({ token, expiry: undefined, server: upstream.server, caPem: upstream.caPem });
  await proxy.listen();
  return { proxy, token };
}

/** A recording upstream and a proxy to it for one test file, started before its tests, closed after. */
export function proxyUnderTest(options: { allow?: ProxyStream[] } = {}): { upstream: RecordingUpstream; proxy: ImportProxy; token: string } {
  const context = {} as { upstream: RecordingUpstream; proxy: ImportProxy; token: string };
  beforeAll(async () => {
    context.upstream = await startRecordingUpstream();
    Object.assign(context, await startProxy(context.upstream, options));
  });
  afterAll(async () => {
    await context.proxy?.close();
    await context.upstream?.close();
  });
  return context;
}

export interface RawResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * Splits bytes from the proxy into responses: Content-Length, chunked, or until close. 1xx
 * interim answers (100 Continue) are their own entries; after a 101 the rest is tunnel data.
 * `isHead(i)` says whether the i-th final response answers a HEAD (it has no body then).
 */
export function parseResponses(data: Buffer, closed: boolean, isHead: (i: number) => boolean = () => false): { responses: RawResponse[]; tunnel: string } {
  const text = data.toString("latin1");
  const responses: RawResponse[] = [];
  let at = 0;
  let finals = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end === -1) break;
    const [statusLine = "", ...lines] = text.slice(at, end).split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headers = lines.map((l): [string, string] => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]);
    const header = (name: string) => headers.find(([n]) => n === name)?.[1];
    let bodyStart = end + 4;
    if (status === 101) {
      responses.push({ status, headers, body: "" });
      return { responses, tunnel: text.slice(bodyStart) };
    }
    if (status >= 100 && status < 200) {
      responses.push({ status, headers, body: "" });
      at = bodyStart;
      continue;
    }
    let body = "";
    if (isHead(finals) || status === 204 || status === 304) {
      // no body
    } else if (header("transfer-encoding")?.toLowerCase() === "chunked") {
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = text.indexOf("\r\n", p);
        if (lineEnd === -1) break;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size at ${p}`);
        if (size === 0) {
          const trailerEnd = text.indexOf("\r\n\r\n", lineEnd);
          if (trailerEnd === -1 && !text.startsWith("\r\n", lineEnd + 2)) break;
          p = text.startsWith("\r\n", lineEnd + 2) ? lineEnd + 4 : trailerEnd + 4;
          complete = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > text.length) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      bodyStart = p;
    } else if (header("content-length") !== undefined) {
      const length = Number(header("content-length"));
      if (bodyStart + length > text.length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      if (!closed) break;
      body = text.slice(bodyStart);
      bodyStart = text.length;
    }
    responses.push({ status, headers, body });
    finals++;
    at = bodyStart;
  }
  return { responses, tunnel: "" };
}

export interface Exchange {
  responses: RawResponse[];
  tunnel: string;
  closed: boolean;
  socket: Socket;
  /** Everything received on the socket so far (it keeps receiving after the exchange returns). */
  received(): string;
}

/**
 * Writes `bytes` to the proxy on a new connection and waits until `finals` final responses (or a
 * 101) arrived, or the proxy closed the connection. The socket stays open unless closed.
 */
export async function exchange(port: number, bytes: Buffer | string, options: { finals: number; isHead?: (i: number) => boolean; until?: (tunnel: string) => boolean }): Promise<Exchange> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await once(socket, "connect");
  let data = Buffer.alloc(0);
  let closed = false;
  socket.on("data", (d: Buffer) => (data = Buffer.concat([data, d])));
  socket.on("close", () => (closed = true));
  socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  const done = () => {
    const parsed = parseResponses(data, closed, options.isHead);
    const finals = parsed.responses.filter((r) => r.status >= 200 || r.status === 101);
    if (closed) return parsed;
    if (finals.some((r) => r.status === 101)) return options.until === undefined || options.until(parsed.tunnel) ? parsed : undefined;
    return finals.length >= options.finals ? parsed : undefined;
  };
  const parsed = await waitFor(`${options.finals} responses or a close from the proxy`, done, 5_000).catch((error: Error) => {
    socket.destroy();
    throw new Error(`${error.message}; got ${JSON.stringify(data.toString("latin1").slice(0, 2000))}`);
  });
  return { ...parsed, closed, socket, received: () => data.toString("latin1") };
}

/** One request of a case: what the raw client sent, and the upstream URL it must arrive at. */
export interface SentRequest {
  id: string;
  method: string;
  /** Undefined: not checked (a fuzzed target, which Node's parser may cut differently). */
  upstreamUrl: string | undefined;
}

/**
 * The invariant, checked on the upstream's side for the requests one case made:
 * - every request the upstream parsed carries exactly one Authorization, the import's;
 * - every request the upstream parsed is one the client sent (its id, its method, its URL), once:
 *   nothing smuggled, nothing captured, nothing duplicated;
 * - on the client's connection, each answer that came from the upstream echoes the id of the
 *   request at its position: later requests always get their own answers.
 * Returns the problems, empty when the invariant holds.
 */
export function invariantProblems(token: string, seen: readonly SeenRequest[], sent: readonly SentRequest[], responses: readonly RawResponse[]): string[] {
  const problems: string[] = [];
  const byId = new Map(sent.map((s) => [s.id, s]));
  const ids = new Set<string>();
  for (const r of seen) {
    const auth = pairs(r.rawHeaders).filter(([n]) => n === "authorization");
    if (auth.length !== 1 || auth[0]?.[1] !== `Bearer ${token}`) {
      problems.push(`upstream ${r.method} ${JSON.stringify(r.url)} had ${auth.length} Authorization headers${auth.length === 1 ? ", not the import's" : ""}`);
    }
    const idValues = pairs(r.rawHeaders).filter(([n]) => n === ID_HEADER.toLowerCase());
    const id = idValues.length === 1 ? idValues[0]?.[1] : undefined;
    const expected = id === undefined ? undefined : byId.get(id);
    if (expected === undefined) {
      problems.push(`upstream parsed a request nobody sent: ${r.method} ${JSON.stringify(r.url)} (ids ${JSON.stringify(idValues.map(([, v]) => v))})`);
      continue;
    }
    if (ids.has(expected.id)) problems.push(`upstream parsed request ${expected.id} twice`);
    ids.add(expected.id);
    if (r.method !== expected.method || (expected.upstreamUrl !== undefined && r.url !== expected.upstreamUrl)) {
      problems.push(`request ${expected.id} (${expected.method} ${expected.upstreamUrl ?? "(any path)"}) reached the upstream as ${r.method} ${JSON.stringify(r.url)}`);
    }
  }
  const finals = responses.filter((r) => r.status >= 200 || r.status === 101);
  for (const [i, response] of finals.entries()) {
    const echo = response.headers.find(([n]) => n === ECHO_HEADER)?.[1];
    if (echo === undefined) continue;
    if (echo !== sent[i]?.id) problems.push(`answer ${i + 1} on the client connection belongs to request ${echo}, not ${sent[i]?.id ?? "(none sent)"}`);
  }
  return problems;
}

export function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return out;
}
