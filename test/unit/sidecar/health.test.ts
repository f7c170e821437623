import { describe, expect, it } from "vitest";
import { readiness } from "../../../sidecar/health.ts";

const now = Date.parse("2026-01-01T00:00:00Z");
const ok = { name: "a", hasToken: true, expiry: new Date(now + 60_000), filesWritten: true, lastError: undefined };

describe("readiness", () => {
  it("is ready when every import has an unexpired token, its files and the merged kubeconfig", () => {
    expect(readiness([ok, { ...ok, name: "b", expiry: undefined }], true, now)).toEqual({
      ready: true,
      lines: ["[+]import a ok", "[+]import b ok", "[+]merged kubeconfig ok"],
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
    expect(readiness([], true, now).ready).toBe(false);
  });
});
