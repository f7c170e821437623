// When the registry checks a remote cluster's health: every interval while healthy, every few
// seconds while not (so an outage's end is seen quickly).
import { describe, expect, it } from "vitest";
import { RemoteFailure } from "../../../common/remote.ts";
import { healthCheckDue } from "../../../controller/registry.ts";

const down = new RemoteFailure("RemoteUnreachable", "down");

describe("healthCheckDue", () => {
  it.each([
    { name: "never checked", cluster: {}, sinceMs: 0, want: true },
    { name: "healthy, checked 5 s ago (30 s interval)", cluster: { checkedAt: 0 }, sinceMs: 5_000, want: false },
    { name: "healthy, checked 30 s ago", cluster: { checkedAt: 0 }, sinceMs: 30_000, want: true },
    { name: "healthy, a tick a little early still counts", cluster: { checkedAt: 0 }, sinceMs: 29_500, want: true },
    { name: "unhealthy, checked 5 s ago", cluster: { checkedAt: 0, failure: down }, sinceMs: 5_000, want: true },
    { name: "unhealthy, checked 2 s ago", cluster: { checkedAt: 0, failure: down }, sinceMs: 2_000, want: false },
  ])("$name: $want", ({ cluster, sinceMs, want }) => {
    expect(healthCheckDue(cluster, sinceMs, 30_000)).toBe(want);
  });
});
