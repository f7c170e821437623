import { loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { importKubeconfig, mergedKubeconfig, renderKubeconfig, type Kubeconfig } from "../../../common/kubeconfig.ts";

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

  it("uses tokenFile for files inside pods, so rotation needs no rewrite", () => {
    const doc = roundTrip(
      importKubeconfig({ name: "a", server: "https://x", caData: PEM, namespace: "n", tokenFile: "/var/run/t" }),
    ) as unknown as Kubeconfig;
    expect(doc.users).toEqual([{ name: "a", user: { tokenFile: "/var/run/t" } }]);
  });

  it("keeps long values on one line", () => {
    const token = `eyJ${"a".repeat(900)}.b.c`;
    const yaml = renderKubeconfig(importKubeconfig({ name: "a", server: "https://x", caData: PEM, namespace: "n", token }));
    expect(yaml).toContain(`token: ${token}\n`);
    expect(yaml).toContain(`certificate-authority-data: ${b64(PEM)}\n`);
  });

  it("requires exactly one of token and tokenFile, and PEM CA data", () => {
    const base = { name: "a", server: "https://x", caData: PEM, namespace: "n" };
    expect(() => importKubeconfig(base)).toThrow(/exactly one of token and tokenFile/);
    expect(() => importKubeconfig({ ...base, token: "t", tokenFile: "/f" })).toThrow(/exactly one of token and tokenFile/);
    expect(() => importKubeconfig({ ...base, caData: b64(PEM), token: "t" })).toThrow(/caData must be PEM/);
  });
});

describe("mergedKubeconfig", () => {
  it("has one cluster, user and context per import; the first is current", () => {
    const doc = roundTrip(
      mergedKubeconfig([
        { name: "b", server: "https://b", caFile: "/imports/b/ca.crt", namespace: "nb", tokenFile: "/imports/b/token" },
        { name: "a", server: "https://a", caData: PEM, namespace: "na", tokenFile: "/imports/a/token" },
      ]),
    ) as unknown as Kubeconfig;
    expect(doc["current-context"]).toBe("b");
    expect(doc.clusters).toEqual([
      { name: "b", cluster: { server: "https://b", "certificate-authority": "/imports/b/ca.crt" } },
      { name: "a", cluster: { server: "https://a", "certificate-authority-data": b64(PEM) } },
    ]);
    expect(doc.users).toEqual([
      { name: "b", user: { tokenFile: "/imports/b/token" } },
      { name: "a", user: { tokenFile: "/imports/a/token" } },
    ]);
    expect(doc.contexts.map((c) => [c.name, c.context.cluster, c.context.user, c.context.namespace])).toEqual([
      ["b", "b", "b", "nb"],
      ["a", "a", "a", "na"],
    ]);
  });

  it("throws on empty input, duplicate names or an ambiguous CA", () => {
    const e = { name: "a", server: "https://a", caFile: "/ca", namespace: "n", tokenFile: "/t" };
    expect(() => mergedKubeconfig([])).toThrow(/at least one import/);
    expect(() => mergedKubeconfig([e, { ...e }])).toThrow(/duplicate import name "a"/);
    expect(() => mergedKubeconfig([{ ...e, caData: PEM }])).toThrow(/exactly one of caFile and caData/);
    expect(() => mergedKubeconfig([{ ...e, caFile: undefined }])).toThrow(/exactly one of caFile and caData/);
  });
});
