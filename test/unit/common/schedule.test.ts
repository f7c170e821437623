import { describe, expect, it } from "vitest";
import { backoffMs, renewalDelayMs } from "../../../common/schedule.ts";

describe("renewalDelayMs", () => {
  const issued = new Date("2026-01-01T00:00:00Z");
  const expires = new Date("2026-01-01T01:00:00Z");

  it("renews at 80% of the lifetime without jitter", () => {
    expect(renewalDelayMs(issued, expires, issued, 0.5)).toBe(48 * 60_000);
  });

  it("keeps jitter within ±5% of the lifetime", () => {
    expect(renewalDelayMs(issued, expires, issued, 0)).toBe(45 * 60_000);
    expect(renewalDelayMs(issued, expires, issued, 1)).toBe(51 * 60_000);
  });

  it("uses the real lifetime the server granted, not the one asked for", () => {
    const shortened = new Date("2026-01-01T00:10:00Z");
    expect(renewalDelayMs(issued, shortened, issued, 0.5)).toBe(8 * 60_000);
  });

  it("is due now when the renewal time has passed", () => {
    expect(renewalDelayMs(issued, expires, new Date("2026-01-01T00:59:00Z"), 0.5)).toBe(0);
  });
});

describe("backoffMs", () => {
  it("doubles from the base up to the cap", () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 1000, 60_000, 0))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(20, 1000, 60_000, 0)).toBe(60_000);
  });

  it("jitters down by at most 20%", () => {
    expect(backoffMs(3, 1000, 60_000, 1)).toBe(3200);
  });
});
