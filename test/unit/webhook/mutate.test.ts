import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { IMPORT_ANNOTATION, INJECTED_ANNOTATION, NAMESPACE_LABEL, type ServiceAccountImport } from "../../../common/api.ts";
import { escapePointerToken } from "../../../webhook/json-patch.ts";
import { MAX_IMPORTS_PER_POD, mutatePod, webhookPatch, type MutateOptions, type MutateResult } from "../../../webhook/mutate.ts";
import { applyPatch, IMPORTS, NATIVE, PLAIN, readyImport } from "./helpers.ts";

const LABELS = { [NAMESPACE_LABEL]: "enabled" };

function pod(annotation: string | undefined, containers: V1Container[] = [{ name: "app", image: "app:1" }], extra: Partial<V1Pod["spec"]> = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default", ...(annotation === undefined ? {} : { annotations: { [IMPORT_ANNOTATION]: annotation } }) },
    spec: { containers, ...extra },
  };
}

function run(p: V1Pod, options: MutateOptions = NATIVE, imports: ReadonlyMap<string, ServiceAccountImport | undefined> = IMPORTS): MutateResult {
  return mutatePod({ pod: p, namespaceLabels: LABELS, imports, options });
}

function injected(p: V1Pod, options: MutateOptions = NATIVE): V1Pod {
  const r = run(p, options);
  if (r.kind !== "patch") throw new Error(`expected a patch, got ${JSON.stringify(r)}`);
  return r.pod;
}

const byName = (p: V1Pod, name: string): V1Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === name);

describe("mutatePod: when it acts", () => {
  it("skips unlabelled namespaces, pods without the annotation, and annotations naming nothing", () => {
    expect(mutatePod({ pod: pod("a"), namespaceLabels: undefined, imports: IMPORTS, options: NATIVE })).toEqual({
      kind: "skip",
      reason: "namespace is not labelled multicluster-service-account=enabled",
    });
    expect(mutatePod({ pod: pod("a"), namespaceLabels: { [NAMESPACE_LABEL]: "disabled" }, imports: IMPORTS, options: NATIVE }).kind).toBe("skip");
    expect(run(pod(undefined))).toEqual({ kind: "skip", reason: `pod has no ${IMPORT_ANNOTATION} annotation` });
    expect(run(pod(" , ,"))).toEqual({ kind: "skip", reason: `annotation ${IMPORT_ANNOTATION} names no service account import` });
  });

  it("does not modify its input", () => {
    const p = pod("a,b", [{ name: "app", env: [{ name: "X", value: "1" }] }]);
    const copy = structuredClone(p);
    injected(p);
    expect(p).toEqual(copy);
  });
});

describe("mutatePod: refusals", () => {
  it("caps the number of names", () => {
    const names = Array.from({ length: MAX_IMPORTS_PER_POD + 1 }, (_, i) => `i${i}`).join(",");
    expect(run(pod(names))).toEqual({
      kind: "deny",
      message: `annotation ${IMPORT_ANNOTATION} names 33 service account imports, at most 32 are allowed`,
    });
  });

  it("refuses names that are not object names", () => {
    const r = run(pod("a,Cluster2/../x"));
    expect(r.kind).toBe("deny");
    expect(r.kind === "deny" && r.message).toMatch(/^annotation \S+ names "Cluster2\/..\/x", which is not a valid service account import name: /);
  });

  it("refuses two imports mapping to one env var, and a later import shadowing MCSA_PROXY_URL", () => {
    const imports = new Map([...IMPORTS, ...["a.b", "a-b", "proxy"].map((n) => [n, readyImport(n)] as const)]);
    expect(run(pod("a.b,a-b"), NATIVE, imports)).toEqual({
      kind: "deny",
      message: 'service account imports "a.b" and "a-b" would both set environment variable MCSA_A_B_URL: rename one of them',
    });
    expect(run(pod("a,proxy"), NATIVE, imports)).toEqual({
      kind: "deny",
      message: 'service account import "proxy" would set MCSA_PROXY_URL, which holds the first import\'s proxy ("a"): rename it or list it first',
    });
    // First, "proxy" sets MCSA_PROXY_URL to its own URL twice over: consistent, so allowed.
    const ok = run(pod("proxy,a"), NATIVE, imports);
    expect(ok.kind === "patch" && byName(ok.pod, "app")?.env?.filter((e) => e.name === "MCSA_PROXY_URL")).toEqual([
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
    ]);
  });

  it("explains imports that are not ready in every way", () => {
    const noCondition = { ...readyImport("a"), status: { secrets: [{ name: "s" }] } };
    const noSecret = { ...readyImport("a"), status: { ...readyImport("a").status, secrets: [] } };
    const unknown = { ...readyImport("a"), status: { conditions: [{ type: "Ready", status: "Unknown" as const, reason: "", message: "", lastTransitionTime: "" }] } };
    const msg = (sai: ServiceAccountImport) => run(pod("a"), NATIVE, new Map([["a", sai]]));
    expect(msg(noCondition)).toEqual({ kind: "deny", message: 'service account import "a" is not ready: it has no Ready condition yet' });
    expect(msg(noSecret)).toEqual({ kind: "deny", message: 'service account import "a" is not ready: it has no Secret yet' });
    expect(msg(unknown)).toEqual({ kind: "deny", message: 'service account import "a" is not ready: Ready is Unknown' });
  });

  it("uses the request's namespace in messages", () => {
    expect(mutatePod({ pod: pod("zz"), namespace: "team-a", namespaceLabels: LABELS, imports: IMPORTS, options: NATIVE })).toEqual({
      kind: "deny",
      message: 'service account import "zz" not found in namespace "team-a"',
    });
  });

  it("refuses hostNetwork pods: the loopback proxy would serve the whole node", () => {
    expect(run(pod("a", undefined, { hostNetwork: true }))).toEqual({
      kind: "deny",
      message: "pods with hostNetwork: true cannot use service account imports: their local proxy would be open to the whole node",
    });
  });

  it("refuses user volumes, mounts and ports that injection needs", () => {
    expect(run(pod("a", undefined, { volumes: [{ name: "mcsa", emptyDir: {} }] }))).toEqual({
      kind: "deny",
      message: 'pod already has a volume named "mcsa", which the webhook needs: rename it',
    });
    expect(run(pod("a", undefined, { volumes: [{ name: "mcsa-a", emptyDir: {} }] })).kind).toBe("deny");
    expect(run(pod("a", [{ name: "app", volumeMounts: [{ name: "mine", mountPath: "/var/run/secrets/admiralty.io/" }] }]))).toEqual({
      kind: "deny",
      message: 'container "app" already mounts volume "mine" at /var/run/secrets/admiralty.io, where the webhook mounts the imports\' files',
    });
    expect(run(pod("a", [{ name: "app", volumeMounts: [{ name: "mcsa-a", mountPath: "/steal" }] }]))).toEqual({
      kind: "deny",
      message: 'container "app" mounts volume "mcsa-a", which holds an import Secret only the sidecar may mount',
    });
    expect(run(pod("a,b", [{ name: "app", ports: [{ containerPort: 17002 }] }]))).toEqual({
      kind: "deny",
      message: 'container "app" declares port 17002, which the sidecar needs: use another port',
    });
  });

  it("refuses misconfigured ports", () => {
    expect(run(pod("a,b"), { ...NATIVE, proxyPortBase: 65535 }).kind).toBe("deny");
    expect(run(pod("a,b"), { ...NATIVE, healthPort: 17002 })).toEqual({
      kind: "deny",
      message: "webhook misconfigured: health port 17002 falls among the proxy ports 17001..17002",
    });
  });
});

describe("mutatePod: options", () => {
  it("defaults imagePullPolicy as the API server would, and honours overrides", () => {
    const policy = (image: string, extra: Partial<MutateOptions> = {}) =>
      byName(injected(pod("a"), { ...NATIVE, image, ...extra }), "mcsa-sidecar")?.imagePullPolicy;
    expect(policy("reg.example.com:5000/mcsa-sidecar")).toBe("Always");
    expect(policy("mcsa-sidecar:latest")).toBe("Always");
    expect(policy("reg.example.com:5000/mcsa-sidecar:0.1.0")).toBe("IfNotPresent");
    expect(policy("mcsa-sidecar@sha256:0123")).toBe("IfNotPresent");
    expect(policy("mcsa-sidecar:0.1.0", { imagePullPolicy: "Never" })).toBe("Never");
  });

  it("takes ports and resources from the options", () => {
    const resources = { requests: { cpu: "5m", memory: "16Mi" } };
    const p = injected(pod("a,b"), { ...PLAIN, proxyPortBase: 20000, healthPort: 19999, resources });
    const sidecar = byName(p, "mcsa-sidecar")!;
    expect(sidecar.args).toContain("--health-port=19999");
    expect(sidecar.args).toContain("--import=b=20001");
    expect(sidecar.startupProbe?.httpGet?.port).toBe(19999);
    expect(sidecar.resources).toEqual(resources);
    expect(byName(p, "app")?.env).toContainEqual({ name: "MCSA_B_URL", value: "http://127.0.0.1:20001" });
  });
});

describe("mutatePod: env", () => {
  it("treats a var equal to ours as ours: moved first, never duplicated", () => {
    const env = [
      { name: "A", value: "1" },
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "B", value: "$(KUBECONFIG)" },
    ];
    const p = injected(pod("a", [{ name: "app", env }]));
    expect(byName(p, "app")?.env?.map((e) => e.name)).toEqual(["KUBECONFIG", "MCSA_PROXY_URL", "MCSA_A_URL", "A", "B"]);
  });

  it("keeps a KUBECONFIG from valueFrom", () => {
    const env = [{ name: "KUBECONFIG", valueFrom: { configMapKeyRef: { name: "cfg", key: "kubeconfig" } } }];
    const p = injected(pod("a", [{ name: "app", env }]));
    expect(byName(p, "app")?.env?.filter((e) => e.name === "KUBECONFIG")).toEqual(env);
  });
});

describe("mutatePod: re-injection", () => {
  it("replaces what an earlier pass injected for other imports (a copied pod with an edited annotation)", () => {
    const first = injected(pod("a,b"));
    first.metadata!.annotations![IMPORT_ANNOTATION] = "b";
    const second = injected(first);
    expect(second).toEqual(injected(pod("b")));
    expect(byName(second, "app")?.env).toEqual([
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_B_URL", value: "http://127.0.0.1:17001" },
    ]);
  });

  it("moves a plain sidecar to a native one when the options change", () => {
    const plain = injected(pod("a", undefined, { initContainers: [{ name: "init" }] }), PLAIN);
    expect(injected(plain, NATIVE)).toEqual(injected(pod("a", undefined, { initContainers: [{ name: "init" }] }), NATIVE));
  });

  it("is what the marker allows: without it, our own output is refused", () => {
    const once = injected(pod("a"));
    delete once.metadata!.annotations![INJECTED_ANNOTATION];
    const r = run(once);
    expect(r.kind).toBe("deny");
  });
});

describe("webhookPatch", () => {
  it("is empty for equal pods, whatever the key order", () => {
    expect(webhookPatch({ a: 1, b: { c: [1, { d: 2 }] } }, { b: { c: [1, { d: 2 }] }, a: 1, e: undefined })).toEqual([]);
  });

  it("escapes ~ and / in paths (RFC 6901)", () => {
    expect(escapePointerToken("a~/b")).toBe("a~0~1b");
    const from = { metadata: { annotations: { "x/y~z": "1" } } };
    const to = { metadata: { annotations: { "x/y~z": "2", "p/q": "3" } } };
    const ops = webhookPatch(from, to);
    expect(ops).toEqual([
      { op: "replace", path: "/metadata/annotations/x~1y~0z", value: "2" },
      { op: "add", path: "/metadata/annotations/p~1q", value: "3" },
    ]);
    expect(applyPatch(from, ops)).toEqual(to);
  });

  it("adds whole missing objects and removes dropped keys", () => {
    const from = { metadata: { name: "p" }, spec: { initContainers: [{ name: "x" }], containers: [] } };
    const to = { metadata: { name: "p", annotations: { k: "v" } }, spec: { containers: [{ name: "y" }] } };
    const ops = webhookPatch(from, to);
    expect(ops).toEqual([
      { op: "add", path: "/metadata/annotations", value: { k: "v" } },
      { op: "remove", path: "/spec/initContainers" },
      { op: "replace", path: "/spec/containers", value: [{ name: "y" }] },
    ]);
    expect(applyPatch(from, ops)).toEqual(to);
  });

  it("refuses run-to-completion pods when only a plain sidecar container is possible (< 1.29)", () => {
    for (const restartPolicy of ["Never", "OnFailure"]) {
      const result = run(pod("a", undefined, { restartPolicy }), PLAIN);
      expect(result).toEqual({ kind: "deny", message: expect.stringMatching(new RegExp(`restartPolicy ${restartPolicy} need native sidecars`)) });
    }
    const native = run(pod("a", undefined, { restartPolicy: "Never" }), NATIVE);
    expect(native.kind).toBe("patch");
  });
});
