import { describe, expect, it } from "vitest";
import { SIDECAR_HEALTH_PORT } from "../../../common/api.ts";
import { checkDirs, OptionsError, parseOptions, type SidecarOptions } from "../../../sidecar/options.ts";

const base = ["--secrets-dir=/etc/mcsa/secrets", "--output-dir=/var/run/secrets/admiralty.io"];

function error(argv: string[]): string {
  try {
    parseOptions(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(OptionsError);
    const message = (e as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

describe("sidecar options", () => {
  it("parse what the webhook injects", () => {
    const o = parseOptions([...base, "--health-port=17000", "--import=cluster2-pod-lister=17001", "--import=b.c=17002"]) as SidecarOptions;
    expect(o).toMatchObject({
      secretsDir: "/etc/mcsa/secrets",
      outputDir: "/var/run/secrets/admiralty.io",
      healthPort: 17000,
      healthAddress: "0.0.0.0",
      proxyAddress: "127.0.0.1",
      imports: [
        { name: "cluster2-pod-lister", port: 17001 },
        { name: "b.c", port: 17002 },
      ],
      debounceMs: 100,
      resyncMs: 30_000,
      logLevel: "info",
    });
  });

  it("default the health port and accept separate flag values", () => {
    const o = parseOptions(["--secrets-dir", "/s", "--output-dir", "/o", "--import", "a=1", "--health-address", "::", "--resync=5", "--debounce=0"]) as SidecarOptions;
    expect(o.healthPort).toBe(SIDECAR_HEALTH_PORT);
    expect(o.healthAddress).toBe("::");
    expect(o.resyncMs).toBe(5000);
    expect(o.debounceMs).toBe(0);
  });

  it("answer --help", () => {
    expect(parseOptions(["--help"])).toBe("help");
    expect(parseOptions(["-h"])).toBe("help");
  });

  it("refuse bad, duplicate and missing imports with one-line messages", () => {
    expect(error(base)).toBe("at least one --import=NAME=PORT is required");
    expect(error([...base, "--import=a"])).toMatch(/^--import=a: expected NAME=PORT/);
    expect(error([...base, "--import==17001"])).toMatch(/expected NAME=PORT/);
    expect(error([...base, "--import=Bad_Name=17001"])).toMatch(/"Bad_Name" is not a valid import name/);
    expect(error([...base, "--import=a=1", "--import=a=2"])).toBe('--import: import "a" is listed twice');
    expect(error([...base, "--import=a=17001", "--import=b=17001"])).toBe("--import=b=17001: port 17001 is already taken by --import=a");
    expect(error([...base, "--import=a=17000"])).toBe("--import=a=17000: port 17000 is already taken by --health-port");
  });

  it("refuse bad ports", () => {
    expect(error([...base, "--import=a=0"])).toMatch(/port 0 is out of range 1-65535/);
    expect(error([...base, "--import=a=65536"])).toMatch(/port 65536 is out of range/);
    expect(error([...base, "--import=a=http"])).toMatch(/"http" is not a port number/);
    expect(error([...base, "--import=a=1", "--health-port=-3"])).toMatch(/--health-port: "-3" is not a port number/);
    expect(error([...base, "--import=a=1", "--health-address=localhost"])).toMatch(/not an IP address/);
  });

  it("refuse missing directories flags, unknown flags and positionals", () => {
    expect(error(["--output-dir=/o", "--import=a=1"])).toBe("--secrets-dir is required");
    expect(error(["--secrets-dir=/s", "--import=a=1"])).toBe("--output-dir is required");
    expect(error([...base, "--import=a=1", "--frobnicate"])).toMatch(/Unknown option '--frobnicate'/);
    expect(error([...base, "--import=a=1", "extra"])).toMatch(/extra/);
    expect(error([...base, "--import=a=1", "--log-level=loud"])).toMatch(/--log-level must be one of/);
    expect(error([...base, "--import=a=1", "--resync=0"])).toMatch(/--resync: "0" must be an integer from 1/);
  });

  it("report directories that do not exist or are not directories", () => {
    const o = parseOptions([...base, "--import=a=1", "--import=b=2"]) as SidecarOptions;
    const fs: Record<string, "dir" | "other"> = {
      "/var/run/secrets/admiralty.io": "dir",
      "/etc/mcsa/secrets": "dir",
      "/etc/mcsa/secrets/a": "dir",
      "/etc/mcsa/secrets/b": "other",
    };
    expect(checkDirs(o, (p) => fs[p] ?? "missing")).toEqual(['the Secret directory of import "b", /etc/mcsa/secrets/b is not a directory']);
    expect(checkDirs(o, () => "missing")).toEqual([
      "--output-dir /var/run/secrets/admiralty.io does not exist",
      "--secrets-dir /etc/mcsa/secrets does not exist",
    ]);
    expect(checkDirs(o, () => "dir")).toEqual([]);
  });
});
