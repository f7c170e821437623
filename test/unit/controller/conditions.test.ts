import { describe, expect, it } from "vitest";
import { setCondition } from "../../../controller/conditions.ts";

const t0 = new Date("2026-01-01T00:00:00.123Z");
const t1 = new Date("2026-01-01T00:05:00Z");

describe("setCondition", () => {
  it("adds a condition with a transition time in seconds", () => {
    expect(setCondition(undefined, { type: "Ready", status: "True", reason: "TokenIssued", message: "m" }, t0)).toEqual([
      { type: "Ready", status: "True", reason: "TokenIssued", message: "m", lastTransitionTime: "2026-01-01T00:00:00Z" },
    ]);
  });

  it("keeps the transition time while the status stays the same", () => {
    const first = setCondition(undefined, { type: "Ready", status: "False", reason: "Forbidden", message: "a" }, t0);
    const second = setCondition(first, { type: "Ready", status: "False", reason: "NotFound", message: "b" }, t1);
    expect(second).toEqual([{ type: "Ready", status: "False", reason: "NotFound", message: "b", lastTransitionTime: "2026-01-01T00:00:00Z" }]);
  });

  it("moves the transition time when the status changes, leaving other conditions alone", () => {
    const other = { type: "Other", status: "True" as const, reason: "x", message: "", lastTransitionTime: "2025-01-01T00:00:00Z" };
    const first = setCondition([other], { type: "Ready", status: "False", reason: "Forbidden", message: "a" }, t0);
    const second = setCondition(first, { type: "Ready", status: "True", reason: "TokenIssued", message: "b" }, t1);
    expect(second[0]).toEqual(other);
    expect(second[1]?.lastTransitionTime).toBe("2026-01-01T00:05:00Z");
  });
});
