// The webhook's HTTPS layer, over real TLS on loopback: status codes, keep-alive, limits, deadlines.
import { Agent, request } from "node:https";
import { connect } from "node:tls";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../../common/log.ts";
import { createCA, issue } from "../../../common/pki.ts";
import type { AdmissionReviewResponse, Lookup } from "../../../webhook/admission.ts";
import { WebhookServer, parseGoDuration } from "../../../webhook/server.ts";
import { applyPatch, decodePatch, fixture, fixtureText, LOOKUP, NATIVE } from "./helpers.ts";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  reused: boolean;
}

let ca: string;
let pair: { cert: string; key: string };
const logs: string[] = [];
const log = createLogger("test", { level: "debug", write: (line) => logs.push(line) });

beforeAll(async () => {
  const authority = await createCA("test-ca");
  ca = authority.cert;
  pair = await issue(authority, { commonName: "webhook", usage: "server", ipAddresses: ["127.0.0.1"] });
});

async function withServer(lookup: Lookup, run: (url: string, server: WebhookServer) => Promise<void>, maxBodyBytes?: number): Promise<void> {
  const server = new WebhookServer({ host: "127.0.0.1", port: 0, ...pair, lookup, mutate: NATIVE, log, maxBodyBytes });
  const url = await server.listen();
  try {
    await run(url, server);
  } finally {
    await server.close();
  }
}

function call(
  url: string,
  options: { method?: string; body?: string | Buffer; headers?: Record<string, string>; agent?: Agent; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "POST",
        ca,
        agent: options.agent,
        headers: { "content-type": "application/json", ...options.headers },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: req.reusedSocket }));
      },
    );
    req.on("error", reject);
    if (options.chunked && options.body !== undefined) {
      // No content-length: the size limit must hold while streaming.
      const body = Buffer.from(options.body);
      const step = 64 * 1024;
      for (let i = 0; i < body.length; i += step) req.write(body.subarray(i, i + step));
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

describe("webhook server", () => {
  it("answers an AdmissionReview with the patch that injects the sidecar, logging what it decided", async () => {
    await withServer(LOOKUP, async (url) => {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mutate-pods$/);
      const reply = await call(url + "?timeout=5s", { body: fixtureText("readme-pod.json") });
      expect(reply.status).toBe(200);
      expect(reply.headers["content-type"]).toBe("application/json");
      const review = JSON.parse(reply.body) as AdmissionReviewResponse;
      expect(review.response).toMatchObject({ uid: fixture("readme-pod.json").request.uid, allowed: true, patchType: "JSONPatch" });
      const pod = applyPatch(fixture("readme-pod.json").request.object as V1Pod, decodePatch(review));
      expect(pod.spec?.initContainers?.[0]?.name).toBe("mcsa-sidecar");
      const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "injected sidecar");
      expect(line).toMatchObject({ namespace: "default", pod: "multicluster-client", operation: "CREATE", patched: true });
      expect(JSON.stringify(line)).not.toContain("multicluster-client:latest");
    });
  });

  it("refuses a pod naming a missing import with a 403 in the AdmissionReview, not an HTTP error", async () => {
    await withServer(LOOKUP, async (url) => {
      const reply = await call(url, { body: fixtureText("missing-import.json") });
      expect(reply.status).toBe(200);
      const review = JSON.parse(reply.body) as AdmissionReviewResponse;
      expect(review.response.allowed).toBe(false);
      expect(review.response.status?.code).toBe(403);
      expect(review.response.status?.message).toContain("not found");
    });
  });

  it("keeps connections alive: many reviews over one TLS connection", async () => {
    await withServer(LOOKUP, async (url) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const replies = [];
        for (let i = 0; i < 5; i++) replies.push(await call(url, { body: fixtureText("readme-pod.json"), agent }));
        expect(replies.every((r) => r.status === 200)).toBe(true);
        expect(replies.slice(1).every((r) => r.reused)).toBe(true);
        expect(replies[0]!.headers["keep-alive"]).toMatch(/timeout=\d{3}/);
      } finally {
        agent.destroy();
      }
    });
  });

  it("answers wrong methods, paths and content types with a 4xx that says what is expected", async () => {
    await withServer(LOOKUP, async (url) => {
      const get = await call(url, { method: "GET" });
      expect(get.status).toBe(405);
      expect(get.headers.allow).toBe("POST");
      expect(get.body).toContain("takes POST with an AdmissionReview");
      const type = await call(url, { body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } });
      expect(type.status).toBe(415);
      expect(type.body).toContain("content-type must be application/json");
      const charset = await call(url, { body: fixtureText("readme-pod.json"), headers: { "content-type": "application/json; charset=utf-8" } });
      expect(charset.status).toBe(200);
      const path = await call(url.replace("/mutate-pods", "/validate"), { body: "{}" });
      expect(path.status).toBe(404);
      expect(path.body).toContain("POST /mutate-pods");
    });
  });

  it("answers 400 for bodies that are not AdmissionReviews", async () => {
    await withServer(LOOKUP, async (url) => {
      const notJson = await call(url, { body: "{not json" });
      expect(notJson.status).toBe(400);
      expect(notJson.body).toMatch(/^not an AdmissionReview: body is not valid JSON/);
      const wrong = await call(url, { body: fixtureText("wrong-review-version.json") });
      expect(wrong.status).toBe(400);
      expect(wrong.body).toContain("expected apiVersion admission.k8s.io/v1");
      const empty = await call(url, { body: "" });
      expect(empty.status).toBe(400);
    });
  });

  it("refuses bodies over the size limit with 413, with or without content-length, and keeps serving", async () => {
    await withServer(
      LOOKUP,
      async (url) => {
        const big = JSON.stringify({ padding: "x".repeat(300_000) });
        const declared = await call(url, { body: big });
        expect(declared.status).toBe(413);
        expect(declared.body).toContain("larger than 262144 bytes");
        const streamed = await call(url, { body: big, chunked: true });
        expect(streamed.status).toBe(413);
        expect((await call(url, { body: fixtureText("readme-pod.json") })).status).toBe(200);
      },
      256 * 1024,
    );
  });

  it("turns a failing look-up into a refusal that says why, and a slow one into a refusal before the API server's timeout", async () => {
    const failing: Lookup = { ...LOOKUP, serviceAccountImport: () => Promise.reject(new Error("connection refused")) };
    await withServer(failing, async (url) => {
      const review = JSON.parse((await call(url, { body: fixtureText("readme-pod.json") })).body) as AdmissionReviewResponse;
      expect(review.response).toMatchObject({ allowed: false, status: { code: 500 } });
      expect(review.response.status?.message).toContain("connection refused");
    });
    const hanging: Lookup = { ...LOOKUP, serviceAccountImport: () => new Promise(() => undefined) };
    await withServer(hanging, async (url) => {
      const started = Date.now();
      const review = JSON.parse((await call(url + "?timeout=2s", { body: fixtureText("readme-pod.json") })).body) as AdmissionReviewResponse;
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(review.response).toMatchObject({ allowed: false, status: { code: 504 } });
      expect(review.response.status?.message).toContain("timed out");
    });
  });

  it("serves health, survives garbage on the socket, and swaps its certificate for new connections", async () => {
    await withServer(LOOKUP, async (url, server) => {
      const health = url.replace("/mutate-pods", "/healthz");
      expect((await call(health, { method: "GET" })).body).toBe("ok\n");
      expect((await call(url.replace("/mutate-pods", "/readyz"), { method: "GET" })).status).toBe(200);
      // Not HTTP at all, inside TLS.
      await new Promise<void>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port: server.port, ca }, () => socket.end("\x00\x01garbage\r\n\r\n"));
        socket.on("data", () => undefined);
        socket.on("close", () => resolve());
        socket.on("error", () => resolve());
      });
      // Not TLS at all.
      await new Promise<void>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false });
        socket.on("error", () => resolve());
        socket.on("close", () => resolve());
        socket.destroy();
      });
      expect((await call(health, { method: "GET" })).status).toBe(200);

      const other = await createCA("other-ca");
      const next = await issue(other, { commonName: "webhook", usage: "server", ipAddresses: ["127.0.0.1"] });
      server.setCertificate(next.cert, next.key);
      await expect(call(health, { method: "GET", agent: new Agent({ keepAlive: false }) })).rejects.toThrow();
      const old = ca;
      ca = other.cert;
      try {
        expect((await call(health, { method: "GET", agent: new Agent({ keepAlive: false }) })).status).toBe(200);
      } finally {
        ca = old;
      }
    });
  });

  it("never logs a token that appears in a request", async () => {
    logs.length = 0;
    const token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZWZhdWx0In0.c2lnbmF0dXJlc2lnbmF0dXJl";
    await withServer(LOOKUP, async (url) => {
      const review = fixture("readme-pod.json");
      (review.request.object as V1Pod).metadata!.annotations!["multicluster.admiralty.io/service-account-import.name"] = token;
      await call(url, { body: JSON.stringify(review) });
      await call(url, { body: `{"token": "${token}"` });
    });
    expect(logs.join("\n")).not.toContain(token);
  });
});

describe("parseGoDuration", () => {
  it("reads the API server's ?timeout= values", () => {
    expect(parseGoDuration("5s")).toBe(5000);
    expect(parseGoDuration("1m30s")).toBe(90_000);
    expect(parseGoDuration("250ms")).toBe(250);
    expect(parseGoDuration("")).toBeUndefined();
    expect(parseGoDuration(null)).toBeUndefined();
    expect(parseGoDuration("5 s")).toBeUndefined();
  });
});

afterAll(() => {
  logs.length = 0;
});

describe("webhook server with a client CA (only the API server may call it)", () => {
  it("serves AdmissionReviews only to a client certificate of that CA; health needs none (kubelet probes)", async () => {
    const clientAuthority = await createCA("apiserver-webhook-client-ca");
    const apiserver = await issue(clientAuthority, { commonName: "kube-apiserver", usage: "client" });
    const stranger = await issue(await createCA("someone-else"), { commonName: "kube-apiserver", usage: "client" });
    const server = new WebhookServer({ host: "127.0.0.1", port: 0, ...pair, clientCa: clientAuthority.cert, lookup: LOOKUP, mutate: NATIVE, log });
    const url = await server.listen();
    const post = (client?: { cert: string; key: string }) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(url, { method: "POST", ca, ...client, agent: false, headers: { "content-type": "application/json" } }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end(fixtureText("readme-pod.json"));
      });
    try {
      const none = await post();
      expect(none.status).toBe(403);
      expect(none.body).toBe("AdmissionReviews are served only to the API server's client certificate (none was presented)\n");
      const wrong = await post(stranger);
      expect(wrong.status).toBe(403);
      expect(wrong.body).toMatch(/^AdmissionReviews are served only to the API server's client certificate \(this one is not: [A-Z_]+\)\n$/);
      const right = await post(apiserver);
      expect(right.status).toBe(200);
      expect((JSON.parse(right.body) as AdmissionReviewResponse).response.allowed).toBe(true);
      const health = await call(url.replace("/mutate-pods", "/readyz"), { method: "GET", agent: new Agent({ keepAlive: false }) });
      expect(`${health.status} ${health.body}`).toBe("200 ok\n");
    } finally {
      await server.close();
    }
  });
});
