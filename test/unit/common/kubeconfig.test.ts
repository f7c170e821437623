import { loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { importKubeconfig, proxyKubeconfig, proxyUrl, renderKubeconfig, type Kubeconfig } from "../../../common/kubeconfig.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
// Read back the rendered text, as kubectl would, rather than trusting the object we built.
const roundTrip = (k: Kubeconfig) => loadYaml<Record<string, unknown>>(renderKubeconfig(k));

describe("importKubeconfig", () => {
  it("renders one cluster, user and context named after the import, with an embedded token", () => {
    const doc = roundTrip(
      importKubeconfig({ name: "c2-lister", server: "https://10.0.0.1:6443", caData: PEM, namespace: "ns1", token: "tok" }),
    );
    expect(doc).toEqual({
      apiVersion: "v1",
      kind: "Config",
      preferences: {},
      clusters: [{ name: "c2-lister", cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": b64(PEM) } }],
      users: [{ name: "c2-lister", user: { token: "tok" } }],
      contexts: [{ name: "c2-lister", context: { cluster: "c2-lister", user: "c2-lister", namespace: "ns1" } }],
      "current-context": "c2-lister",
    });
  });

  it("keeps long values on one line", () => {
    const token = `eyJ${"a".repeat(900)}.b.c`;
    const yaml = renderKubeconfig(importKubeconfig({ name: "a", server: "https://x", caData: PEM, namespace: "n", token }));
    expect(yaml).toContain(`token: ${token}\n`);
    expect(yaml).toContain(`certificate-authority-data: ${b64(PEM)}\n`);
  });

  it("requires PEM CA data", () => {
    const base = { name: "a", server: "https://x", caData: PEM, namespace: "n" };
    expect(() => importKubeconfig({ ...base, caData: b64(PEM), token: "t" })).toThrow(/caData must be PEM/);
  });
});

describe("proxyKubeconfig", () => {
  it("has one cluster, user and context per import, each cluster its proxy, no credential; the first is current", () => {
    const doc = roundTrip(
      proxyKubeconfig([
        { name: "b", proxyUrl: "http://127.0.0.1:17001", namespace: "nb" },
        { name: "a", proxyUrl: "http://127.0.0.1:17002", namespace: "na" },
      ]),
    ) as unknown as Kubeconfig;
    expect(doc["current-context"]).toBe("b");
    expect(doc.clusters).toEqual([
      { name: "b", cluster: { server: "http://127.0.0.1:17001", "insecure-skip-tls-verify": true } },
      { name: "a", cluster: { server: "http://127.0.0.1:17002", "insecure-skip-tls-verify": true } },
    ]);
    expect(doc.users).toEqual([
      { name: "b", user: {} },
      { name: "a", user: {} },
    ]);
    expect(doc.contexts.map((c) => [c.name, c.context.cluster, c.context.user, c.context.namespace])).toEqual([
      ["b", "b", "b", "nb"],
      ["a", "a", "a", "na"],
    ]);
  });

  it.each([
    ["empty input", [], /at least one import/],
    ["duplicate names", [{ name: "a", proxyUrl: "http://127.0.0.1:1", namespace: "n" }, { name: "a", proxyUrl: "http://127.0.0.1:2", namespace: "n" }], /duplicate import name "a"/],
    ["an https URL", [{ name: "a", proxyUrl: "https://127.0.0.1:1", namespace: "n" }], /is not http:\/\/HOST:PORT/],
    ["a URL with a path", [{ name: "a", proxyUrl: "http://127.0.0.1:1/x", namespace: "n" }], /is not http:\/\/HOST:PORT/],
  ])("throws on %s", (_what, entries, message) => {
    expect(() => proxyKubeconfig(entries)).toThrow(message);
  });
});

describe("proxyUrl", () => {
  it.each([
    ["127.0.0.1", "http://127.0.0.1:17001"],
    ["0.0.0.0", "http://127.0.0.1:17001"],
    ["::1", "http://[::1]:17001"],
    ["::", "http://[::1]:17001"],
    ["10.1.2.3", "http://10.1.2.3:17001"],
  ])("a proxy on %s is reached at %s", (address, url) => {
    expect(proxyUrl(address, 17001)).toBe(url);
  });
});
