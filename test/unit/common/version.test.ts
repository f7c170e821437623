import { describe, expect, it } from "vitest";
import { versionAtLeast } from "../../../common/version.ts";

describe("versionAtLeast", () => {
  it.each([
    { v: "v1.37.2", min: [1, 29], want: true },
    { v: "v1.29.0", min: [1, 29], want: true },
    { v: "v1.28.9-eks-1234", min: [1, 29], want: false },
    { v: "v1.28.0", min: [1, 28], want: true },
    { v: "1.30", min: [1, 28], want: true },
    { v: "v2.0.0", min: [1, 29], want: true },
    { v: "v0.99.0", min: [1, 1], want: false },
    { v: "unknown", min: [1, 0], want: false },
  ])("$v ≥ $min: $want", ({ v, min, want }) => {
    expect(versionAtLeast(v, min[0]!, min[1]!)).toBe(want);
  });
});
