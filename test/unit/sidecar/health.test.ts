import { describe, expect, it } from "vitest";
import { type ImportReadiness, readiness } from "../../../sidecar/health.ts";

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
