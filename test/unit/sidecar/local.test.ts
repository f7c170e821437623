import { describe, expect, it } from "vitest";
import { findSidecar, localArgs, secretFiles } from "../../../sidecar/local.ts";

const mounts = [
  { mountPath: "/var/run/secrets/admiralty.io", localPath: "/d/root/var/run/secrets/admiralty.io" },
  { mountPath: "/etc/mcsa/secrets/a", localPath: "/d/root/etc/mcsa/secrets/a" },
];

describe("sidecar-local", () => {
  it("maps mount paths, paths inside them and their parents into the local root", () => {
    expect(
      localArgs(
        ["--secrets-dir=/etc/mcsa/secrets", "--output-dir=/var/run/secrets/admiralty.io", "--health-port=17000", "--import=a=17001", "--log-level=debug", "--other=/usr/lib"],
        mounts,
        "/d/root",
        0,
      ),
    ).toEqual([
      "--secrets-dir=/d/root/etc/mcsa/secrets",
      "--output-dir=/d/root/var/run/secrets/admiralty.io",
      "--health-port=17000",
      "--import=a=17001",
      "--log-level=debug",
      "--other=/usr/lib",
    ]);
  });

  it("shifts every port by the offset", () => {
    expect(localArgs(["--health-port=17000", "--import=a.b=17001", "--import=c=17002"], mounts, "/d/root", 100)).toEqual([
      "--health-port=17100",
      "--import=a.b=17101",
      "--import=c=17102",
    ]);
  });

  it("projects a Secret as the kubelet does: every key, or the items asked for, with the default mode", () => {
    const secret = { metadata: { name: "s" }, data: { token: Buffer.from("t").toString("base64"), "ca.crt": Buffer.from("c").toString("base64") } };
    const all = secretFiles(secret, { name: "v", secret: { secretName: "s", defaultMode: 0o444 } });
    expect(all.mode).toBe(0o444);
    expect(Object.fromEntries(Object.entries(all.files).map(([k, v]) => [k, v.toString()]))).toEqual({ token: "t", "ca.crt": "c" });
    const picked = secretFiles(secret, { name: "v", secret: { secretName: "s", items: [{ key: "token", path: "my-token" }] } });
    expect(picked.mode).toBe(0o644);
    expect(Object.keys(picked.files)).toEqual(["my-token"]);
    expect(() => secretFiles(secret, { name: "v", secret: { secretName: "s", items: [{ key: "nope", path: "x" }] } })).toThrow(/no key "nope"/);
  });

  it("finds the sidecar among init containers or containers", () => {
    expect(findSidecar({ spec: { initContainers: [{ name: "mcsa-sidecar" }], containers: [{ name: "app" }] } })?.name).toBe("mcsa-sidecar");
    expect(findSidecar({ spec: { containers: [{ name: "app" }, { name: "mcsa-sidecar" }] } })?.name).toBe("mcsa-sidecar");
    expect(findSidecar({ spec: { containers: [{ name: "app" }] } })).toBeUndefined();
  });
});
