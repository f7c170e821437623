import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatAge, formatDuration, parseDuration } from "../../../common/duration.ts";

describe("parseDuration", () => {
  it.each([
    ["1h", 3600],
    ["90m", 5400],
    ["1h30m", 5400],
    ["3600s", 3600],
    ["45m0s", 2700],
    ["1.5h", 5400],
    [".5m", 30],
    ["+10m", 600],
    ["1500ms", undefined],
    ["2000ms", 2],
    ["1µs", undefined],
  ])("%s", (input, seconds) => {
    if (seconds === undefined) expect(() => parseDuration(input)).toThrow(/whole number of seconds/);
    else expect(parseDuration(input)).toBe(seconds);
  });

  it.each([
    ["", /empty/],
    ["-1h", /must be positive/],
    ["0s", /must be positive/],
    ["0h0m", /must be positive/],
    ["3600", /missing unit.*"3600s"/],
    ["1d", /unknown unit "d".*24h/],
    ["1H", /unknown unit "H"/],
    ["1h 30m", /unknown unit/],
    ["h", /expected a number followed by a unit/],
    ["1h-30m", /unknown unit "h-"/],
    ["abc", /expected a number/],
    ["1e3s", /unknown unit "e"/],
  ])("rejects %j", (input, message) => {
    expect(() => parseDuration(input)).toThrow(message);
    expect(() => parseDuration(input)).toThrow(`invalid duration ${JSON.stringify(input)}`);
  });
});

describe("formatDuration", () => {
  it("drops zero parts", () => {
    expect(formatDuration(5400)).toBe("1h30m");
    expect(formatDuration(600)).toBe("10m");
    expect(formatDuration(45)).toBe("45s");
    expect(formatDuration(3661)).toBe("1h1m1s");
    expect(formatDuration(90000)).toBe("25h");
    expect(formatDuration(0)).toBe("0s");
  });

  it("refuses negative or non-finite input", () => {
    expect(() => formatDuration(-1)).toThrow(/cannot format/);
    expect(() => formatDuration(Number.NaN)).toThrow(/cannot format/);
  });

  it("round-trips through parseDuration (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 * 365 * 86400 }), (n) => {
        expect(parseDuration(formatDuration(n))).toBe(n);
      }),
    );
  });
});

describe("formatAge", () => {
  const now = new Date("2025-01-01T00:00:00Z");
  const ago = (seconds: number) => formatAge(new Date(now.getTime() - seconds * 1000), now);

  // Expected values follow k8s.io/apimachinery/pkg/util/duration.HumanDuration.
  it.each([
    [0, "0s"],
    [5, "5s"],
    [90, "90s"],
    [119, "119s"],
    [120, "2m"],
    [150, "2m30s"],
    [599, "9m59s"],
    [600, "10m"],
    [179 * 60 + 59, "179m"],
    [3 * 3600, "3h"],
    [3 * 3600 + 25 * 60, "3h25m"],
    [8 * 3600, "8h"],
    [45 * 3600, "45h"],
    [48 * 3600, "2d"],
    [50 * 3600, "2d2h"],
    [8 * 86400, "8d"],
    [729 * 86400, "729d"],
    [730 * 86400, "2y"],
    [800 * 86400, "2y70d"],
    [8 * 365 * 86400, "8y"],
  ])("%i seconds ago → %s", (seconds, expected) => {
    expect(ago(seconds)).toBe(expected);
  });

  it("tolerates a second of clock skew, not more", () => {
    expect(ago(-1.5)).toBe("0s");
    expect(ago(-2)).toBe("<invalid>");
    expect(formatAge(new Date(Number.NaN), now)).toBe("<invalid>");
  });
});
