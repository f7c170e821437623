// --no-app-token: the flag the webhook passes for proxy-only pods, and what it turns off.
import { describe, expect, it } from "vitest";
import { parseOptions, type SidecarOptions } from "../../../sidecar/options.ts";

const BASE = ["--secrets-dir=/s", "--output-dir=/o", "--import=a=17001"];

describe("--no-app-token", () => {
  it.each([
    [[], true],
    [["--no-app-token"], false],
  ])("%j: app containers get a token file: %s", (extra, appToken) => {
    expect((parseOptions([...BASE, ...extra]) as SidecarOptions).appToken).toBe(appToken);
  });

  it("takes no value", () => {
    expect(() => parseOptions([...BASE, "--no-app-token=yes"])).toThrow(/--no-app-token/);
  });
});
