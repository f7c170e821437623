import { networkInterfaces } from "node:os";
import { describe, expect, it, onTestFinished } from "vitest";
import { type ImportReadiness, type ReadinessReport, createHealthServer, isLoopback, readiness } from "../../../sidecar/health.ts";

const now = Date.parse("2026-01-01T00:00:00Z");
const ok: ImportReadiness = { name: "a", hasToken: true, expiry: new Date(now + 60_000), filesWritten: true, lastError: undefined };

describe("readiness", () => {
  it("is ready when every import has an unexpired token, its files and the merged kubeconfig", () => {
    expect(readiness([ok, { ...ok, name: "b", expiry: undefined }], true, now)).toEqual({
      ready: true,
      lines: ["[+]import a ok", "[+]import b ok", "[+]merged kubeconfig ok"],
      imports: [
        { name: "a", ready: true, line: "[+]import a ok" },
        { name: "b", ready: true, line: "[+]import b ok" },
      ],
    });
  });

  it("says which import is not ready and why", () => {
    const r = readiness(
      [
        ok,
        { ...ok, name: "b", hasToken: false, lastError: "invalid import Secret: missing: token" },
        { ...ok, name: "c", expiry: new Date(now) },
        { ...ok, name: "d", filesWritten: false },
      ],
      false,
      now,
    );
    expect(r.ready).toBe(false);
    expect(r.lines).toEqual([
      "[+]import a ok",
      "[-]import b no valid token read yet (invalid import Secret: missing: token)",
      "[-]import c token expired at 2026-01-01T00:00:00.000Z",
      "[-]import d files not written",
      "[-]merged kubeconfig not written",
    ]);
  });

  it.each<[string, ImportReadiness[], boolean, boolean]>([
    ["no import at all", [], true, false],
    ["the merged kubeconfig not yet written", [ok], false, false],
    ["one import never usable (startup: app containers must wait)", [ok, { ...ok, name: "b", hasToken: false }], true, false],
    ["one import's files never written", [ok, { ...ok, name: "b", filesWritten: false }], true, false],
    ["the only import expired", [{ ...ok, expiry: new Date(now - 1) }], true, false],
    ["one of two imports expired: the other still serves", [ok, { ...ok, name: "b", expiry: new Date(now - 1) }], true, true],
    ["every import expired", [{ ...ok, expiry: new Date(now) }, { ...ok, name: "b", expiry: new Date(now) }], true, false],
    ["a token without expiry", [{ ...ok, expiry: undefined }], true, true],
  ])("%s: ready=%s", (_case, imports, merged, ready) => {
    expect(readiness(imports, merged, now).ready).toBe(ready);
  });

  it("keeps each import's own state apart", () => {
    const r = readiness([ok, { ...ok, name: "b", expiry: new Date(now - 1) }], true, now);
    expect(r.imports.map((i) => [i.name, i.ready])).toEqual([
      ["a", true],
      ["b", false],
    ]);
  });
});

describe("the health server", () => {
  it("answers /readyz for the pod and /readyz/<import> for each import", async () => {
    const { createHealthServer } = await import("../../../sidecar/health.ts");
    const report = readiness([ok, { ...ok, name: "b", expiry: new Date(now - 1) }], true, now);
    const server = createHealthServer({ address: "127.0.0.1", port: 0, readiness: () => report, metrics: () => "" });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return `${res.status} ${(await res.text()).trim()}`;
    };
    try {
      expect(await get("/readyz")).toBe("200 ok");
      expect(await get("/readyz/a")).toBe("200 [+]import a ok");
      expect(await get("/readyz/b")).toBe("503 [-]import b token expired at 2025-12-31T23:59:59.999Z");
      expect(await get("/readyz/c")).toBe('404 no import named "c" in this pod');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("who may read what on the health port", () => {
  /** A health server whose peers count as inside the pod or not (the real check is isLoopback). */
  async function serve(local: boolean, report: ReadinessReport) {
    const server = createHealthServer({ address: "127.0.0.1", port: 0, readiness: () => report, metrics: () => "mcsa_sidecar_import_ready{import=\"a\"} 1\n", isLocal: () => local });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    onTestFinished(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return `${res.status} ${(await res.text()).trim()}`;
    };
  }
  const ready = readiness([ok], true, now);
  const failing = readiness([{ ...ok, hasToken: false, lastError: "invalid import Secret: missing: token" }], true, now);

  it("tells other pods (the kubelet's probes among them) only whether the process lives and the pod is ready", async () => {
    const get = await serve(false, ready);
    expect(await get("/healthz")).toBe("200 ok");
    expect(await get("/readyz")).toBe("200 ok");
    const denied = "403 only from inside the pod (127.0.0.1 or ::1): /metrics, /readyz/<import> and /readyz?verbose";
    expect(await get("/readyz?verbose")).toBe(denied);
    expect(await get("/readyz/a")).toBe(denied);
    expect(await get("/readyz/nope")).toBe(denied);
    expect(await get("/metrics")).toBe(denied);
    const getFailing = await serve(false, failing);
    // Failed, without which import or why.
    expect(await getFailing("/readyz")).toBe("503 failed");
  });

  it("gives the pod's own containers the details and the metrics", async () => {
    const get = await serve(true, failing);
    expect(await get("/readyz")).toBe("503 [-]import a no valid token read yet (invalid import Secret: missing: token)\n[+]merged kubeconfig ok\nreadyz check failed");
    expect(await get("/readyz/a")).toMatch(/^503 \[-\]import a no valid token/);
    expect(await get("/metrics")).toBe('200 mcsa_sidecar_import_ready{import="a"} 1');
    const getReady = await serve(true, ready);
    expect(await getReady("/readyz?verbose")).toBe("200 [+]import a ok\n[+]merged kubeconfig ok\nreadyz check passed");
  });

  it.each<[string | undefined, boolean]>([
    ["127.0.0.1", true],
    ["127.3.2.1", true],
    ["::1", true],
    ["::ffff:127.0.0.1", true],
    ["10.244.0.7", false],
    ["::ffff:10.244.0.7", false],
    ["fd00::7", false],
    ["128.0.0.1", false],
    [undefined, false],
  ])("isLoopback(%s) is %s", (address, expected) => {
    expect(isLoopback(address)).toBe(expected);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && !i.internal && i.family === "IPv4")?.address;
  it.skipIf(external === undefined)("checks the real peer address: a client on the machine's own non-loopback address is not local", async () => {
    const server = createHealthServer({ address: external!, port: 0, readiness: () => ready, metrics: () => "m 1\n" });
    await new Promise<void>((resolve) => server.listen(0, external, resolve));
    const { port } = server.address() as { port: number };
    try {
      const metrics = await fetch(`http://${external}:${port}/metrics`);
      expect(metrics.status).toBe(403);
      await metrics.text();
      const ready = await fetch(`http://${external}:${port}/readyz`);
      expect(`${ready.status} ${(await ready.text()).trim()}`).toBe("200 ok");
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("checks the real peer address: a loopback client is local", async () => {
    const server = createHealthServer({ address: "127.0.0.1", port: 0, readiness: () => ready, metrics: () => "m 1\n" });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
