// The in-cluster process's webhook flags.
import { describe, expect, it, onTestFinished } from "vitest";
import { DEFAULT_IMAGE } from "../../../common/manifests.ts";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { loadKubeConfig } from "../../../common/kube.ts";
import { impersonating, parseListen, parseResourceList, webhookConfig, webhookKubeConfig } from "../../../manager/webhook-flags.ts";
import { supportsNativeSidecars } from "../../../webhook/lookup.ts";

describe("webhook flags", () => {
  it("are off without --webhook-listen, and refuse their companions alone", () => {
    expect(webhookConfig({})).toBeUndefined();
    expect(() => webhookConfig({ "webhook-cert": "c" })).toThrow("--webhook-cert needs --webhook-listen");
  });

  it("make the webhook's API calls as its own identity with --webhook-as, and require a client certificate with --webhook-client-ca", () => {
    const config = webhookConfig({ "webhook-listen": ":8443", "webhook-as": "mcsa-webhook", "webhook-client-ca": "/etc/ca.crt" })!;
    expect(config.as).toBe("system:serviceaccount:multicluster-service-account:mcsa-webhook");
    expect(config.clientCaFile).toBe("/etc/ca.crt");
    expect(webhookConfig({ "webhook-listen": ":8443", "webhook-as": "system:serviceaccount:ns:reader" })!.as).toBe("system:serviceaccount:ns:reader");
    expect(() => webhookConfig({ "webhook-listen": ":8443", "webhook-as": "Not A Name" })).toThrow("--webhook-as must be a service account name");
    expect(() => webhookConfig({ "webhook-as": "mcsa-webhook" })).toThrow("--webhook-as needs --webhook-listen");
    expect(() => webhookConfig({ "webhook-client-ca": "/etc/ca.crt" })).toThrow("--webhook-client-ca needs --webhook-listen");

    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:6443", skipTLSVerify: false }],
      users: [{ name: "manager", token: "t" }],
      contexts: [{ name: "ctx", cluster: "c", user: "manager" }],
      currentContext: "ctx",
    });
    const as = impersonating(kc, config.as!);
    expect(as.getCurrentUser()).toMatchObject({ name: "manager", token: "t", impersonateUser: config.as });
    expect(as.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
    // The original is untouched; without --webhook-as the webhook uses the process's identity.
    expect(kc.getCurrentUser()?.impersonateUser).toBeUndefined();
    expect(webhookKubeConfig(kc, webhookConfig({ "webhook-listen": ":8443" })!)).toBe(kc);
  });

  it("impersonate with the process's own credentials: an in-cluster token file is still read (and re-read) for each request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcsa-as-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "token"), "first-token");
    writeFileSync(
      join(dir, "kubeconfig"),
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443" } }],
        users: [{ name: "in-cluster", user: { tokenFile: join(dir, "token") } }],
        contexts: [{ name: "ctx", context: { cluster: "c", user: "in-cluster" } }],
        "current-context": "ctx",
      }),
    );
    const kc = loadKubeConfig({ kubeconfig: join(dir, "kubeconfig") });
    const as = impersonating(kc, "system:serviceaccount:multicluster-service-account:mcsa-webhook");
    const headers = async (config: KubeConfig) => {
      const opts: { headers?: Record<string, string> } = {};
      await config.applyToHTTPSOptions(opts);
      return opts.headers ?? {};
    };
    expect(await headers(as)).toMatchObject({ Authorization: "Bearer first-token", "Impersonate-User": "system:serviceaccount:multicluster-service-account:mcsa-webhook" });
    expect((await headers(kc))["Impersonate-User"]).toBeUndefined();
    // The kubelet rotates the token: the next request carries the new one.
    writeFileSync(join(dir, "token.new"), "second-token");
    renameSync(join(dir, "token.new"), join(dir, "token"));
    await expect.poll(async () => (await headers(as)).Authorization, { timeout: 5_000 }).toBe("Bearer second-token");
  });

  it("parse listen addresses", () => {
    expect(parseListen(":8443")).toEqual({ host: "", port: 8443 });
    expect(parseListen("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListen("[::1]:9443")).toEqual({ host: "::1", port: 9443 });
    expect(() => parseListen("8443")).toThrow("ADDR:PORT");
    expect(() => parseListen(":70000")).toThrow("ADDR:PORT");
  });

  it("give defaults and check values", () => {
    expect(webhookConfig({ "webhook-listen": ":8443" })).toEqual({
      host: "",
      port: 8443,
      path: "/mutate-pods",
      certFile: undefined,
      keyFile: undefined,
      caOut: undefined,
      native: "auto",
      sidecar: { image: DEFAULT_IMAGE, proxyPortBase: 17001 },
    });
    const config = webhookConfig({
      "webhook-listen": "127.0.0.1:0",
      "webhook-cert": "c",
      "webhook-key": "k",
      "sidecar-image": "reg/mcsa:1",
      "sidecar-pull-policy": "Never",
      "sidecar-requests": "cpu=5m, memory=32Mi",
      "sidecar-limits": "memory=64Mi",
      "native-sidecar": "false",
    });
    expect(config?.native).toBe(false);
    expect(config?.sidecar).toEqual({
      image: "reg/mcsa:1",
      imagePullPolicy: "Never",
      proxyPortBase: 17001,
      resources: { requests: { cpu: "5m", memory: "32Mi" }, limits: { memory: "64Mi" } },
    });
    expect(() => webhookConfig({ "webhook-listen": ":1", "webhook-cert": "c" })).toThrow("go together");
    expect(() => webhookConfig({ "webhook-listen": ":1", "webhook-cert": "c", "webhook-key": "k", "webhook-ca-out": "x" })).toThrow("generated");
    expect(() => webhookConfig({ "webhook-listen": ":1", "sidecar-pull-policy": "Sometimes" })).toThrow("Always, IfNotPresent or Never");
    expect(() => webhookConfig({ "webhook-listen": ":1", "native-sidecar": "yes" })).toThrow("auto, true or false");
    expect(() => webhookConfig({ "webhook-listen": ":1", "sidecar-proxy-port-base": "80" })).toThrow("1024 to 65535");
    expect(() => webhookConfig({ "webhook-listen": ":1", "webhook-path": "mutate" })).toThrow("absolute URL path");
    expect(() => parseResourceList("--sidecar-limits", "memory")).toThrow("NAME=QUANTITY");
  });

  it("decide native sidecars from the server version", () => {
    expect(supportsNativeSidecars("v1.37.2")).toBe(true);
    expect(supportsNativeSidecars("v1.29.0")).toBe(true);
    expect(supportsNativeSidecars("v1.28.9-eks-1234")).toBe(false);
    expect(supportsNativeSidecars("v2.0.0")).toBe(true);
    expect(supportsNativeSidecars("unknown")).toBe(false);
  });
});
