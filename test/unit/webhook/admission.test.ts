import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { INJECTED_ANNOTATION } from "../../../common/api.ts";
import {
  admissionResponse,
  parseAdmissionReview,
  review,
  type AdmissionReviewResponse,
  type Lookup,
  type ReviewResult,
} from "../../../webhook/admission.ts";
import { MAX_ANNOTATION_LENGTH } from "../../../webhook/mutate.ts";
import { applyPatch, decodePatch, fixture, fixtureText, IMAGE, LOOKUP, NATIVE, PLAIN } from "./helpers.ts";

function response(result: ReviewResult): AdmissionReviewResponse {
  if (result.kind !== "response") throw new Error(`expected a response, got error: ${result.message}`);
  return result.review;
}

async function reviewFixture(name: string, options = NATIVE, lookup: Lookup = LOOKUP) {
  const result = response(await review(fixtureText(name), lookup, options));
  expect(result.apiVersion).toBe("admission.k8s.io/v1");
  expect(result.kind).toBe("AdmissionReview");
  expect(result.response.uid).toBe(fixture(name).request.uid);
  return result;
}

/** The pod the API server would store: the request's object with our patch applied. */
async function patchedPod(name: string, options = NATIVE): Promise<V1Pod> {
  const result = await reviewFixture(name, options);
  expect(result.response).toMatchObject({ allowed: true, patchType: "JSONPatch" });
  return applyPatch(fixture(name).request.object as V1Pod, decodePatch(result));
}

const container = (pod: V1Pod, name: string): V1Container => {
  const c = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name);
  if (c === undefined) throw new Error(`no container ${name}`);
  return c;
};

describe("review: the original README's pod (native sidecar)", () => {
  it("injects the sidecar first among init containers, with its Secret mounted only there", async () => {
    const pod = await patchedPod("readme-pod.json");
    const spec = pod.spec!;
    expect(spec.initContainers?.map((c) => c.name)).toEqual(["mcsa-sidecar"]);
    expect(spec.containers.map((c) => c.name)).toEqual(["multicluster-client"]);
    const sidecar = spec.initContainers![0]!;
    expect(sidecar).toEqual({
      name: "mcsa-sidecar",
      image: IMAGE,
      imagePullPolicy: "IfNotPresent",
      command: ["mcsa-sidecar"],
      args: [
        "--secrets-dir=/etc/mcsa/secrets",
        "--output-dir=/var/run/secrets/admiralty.io",
        "--health-port=17000",
        "--import=cluster2-default-pod-lister=17001",
      ],
      restartPolicy: "Always",
      ports: [{ name: "mcsa-metrics", containerPort: 17000, protocol: "TCP" }],
      startupProbe: { httpGet: { path: "/readyz", port: 17000, scheme: "HTTP" }, periodSeconds: 1, failureThreshold: 120, timeoutSeconds: 1, successThreshold: 1 },
      readinessProbe: { httpGet: { path: "/readyz", port: 17000, scheme: "HTTP" }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1, successThreshold: 1 },
      livenessProbe: { httpGet: { path: "/healthz", port: 17000, scheme: "HTTP" }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1, successThreshold: 1 },
      resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "128Mi" } },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      },
      volumeMounts: [
        { name: "mcsa", mountPath: "/var/run/secrets/admiralty.io" },
        { name: "mcsa-cluster2-default-pod-lister", mountPath: "/etc/mcsa/secrets/cluster2-default-pod-lister", readOnly: true },
      ],
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "FallbackToLogsOnError",
    });
    expect(spec.volumes).toEqual([
      expect.objectContaining({ name: "kube-api-access-7x2kq" }),
      { name: "mcsa", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
      { name: "mcsa-cluster2-default-pod-lister", secret: { secretName: "cluster2-default-pod-lister-token-x7k2p", defaultMode: 0o444 } },
    ]);
  });

  it("gives the app a read-only files mount, KUBECONFIG and the proxy URLs, and no Secret", async () => {
    const app = container(await patchedPod("readme-pod.json"), "multicluster-client");
    expect(app.volumeMounts).toEqual([
      { name: "kube-api-access-7x2kq", readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" },
      { name: "mcsa", mountPath: "/var/run/secrets/admiralty.io", readOnly: true },
    ]);
    expect(app.env).toEqual([
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17001" },
    ]);
    // Untouched otherwise.
    expect(app.image).toBe("quay.io/admiralty/multicluster-service-account-example-multicluster-client:0.1.0");
    expect(app.securityContext).toBeUndefined();
  });

  it("marks the pod, with the annotation key escaped in the patch path", async () => {
    const result = await reviewFixture("readme-pod.json");
    const ops = decodePatch(result);
    expect(ops).toContainEqual({ op: "add", path: "/metadata/annotations/multicluster.admiralty.io~1injected-by", value: "mcsa-webhook" });
    expect(ops.map((o) => o.path).sort()).toEqual([
      "/metadata/annotations/multicluster.admiralty.io~1injected-by",
      "/spec/containers",
      "/spec/initContainers",
      "/spec/volumes",
    ]);
    const pod = applyPatch(fixture("readme-pod.json").request.object as V1Pod, ops);
    expect(pod.metadata?.annotations).toEqual({
      "multicluster.admiralty.io/service-account-import.name": "cluster2-default-pod-lister",
      [INJECTED_ANNOTATION]: "mcsa-webhook",
    });
    // Fields the API server set stay as they were.
    expect(pod.spec?.restartPolicy).toBe("Never");
    expect(pod.metadata?.managedFields).toEqual((fixture("readme-pod.json").request.object as V1Pod).metadata?.managedFields);
  });

  it("is a no-op on its own output (reinvocation)", async () => {
    const once = await patchedPod("readme-pod.json");
    const body = fixture("readme-pod.json");
    body.request.object = once;
    const again = response(await review(JSON.stringify(body), LOOKUP, NATIVE));
    expect(again.response).toEqual({ uid: body.request.uid, allowed: true });
  });

  it("on reinvocation, injects into a container another webhook added after us", async () => {
    const once = await patchedPod("readme-pod.json");
    once.spec!.containers.push({ name: "log-shipper", image: "fluent/fluent-bit:3.1" });
    const body = fixture("readme-pod.json");
    body.request.object = once;
    const again = response(await review(JSON.stringify(body), LOOKUP, NATIVE));
    const pod = applyPatch(once, decodePatch(again));
    expect(container(pod, "log-shipper").env?.map((e) => e.name)).toEqual(["KUBECONFIG", "MCSA_PROXY_URL", "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL"]);
    expect(container(pod, "log-shipper").volumeMounts).toEqual([{ name: "mcsa", mountPath: "/var/run/secrets/admiralty.io", readOnly: true }]);
    expect(container(pod, "multicluster-client")).toEqual(container(once, "multicluster-client"));
  });

  it("mutates dry-run requests the same way (no side effects)", async () => {
    const body = fixture("readme-pod.json");
    body.request.dryRun = true;
    const dry = response(await review(JSON.stringify(body), LOOKUP, NATIVE));
    const wet = await reviewFixture("readme-pod.json");
    expect(dry).toEqual(wet);
  });

  it("accepts the body as bytes or as a parsed object", async () => {
    const fromText = await reviewFixture("readme-pod.json");
    expect(response(await review(Buffer.from(fixtureText("readme-pod.json")), LOOKUP, NATIVE))).toEqual(fromText);
    expect(response(await review(fixture("readme-pod.json"), LOOKUP, NATIVE))).toEqual(fromText);
  });
});

describe("review: plain sidecar (Kubernetes < 1.29)", () => {
  it("appends the sidecar to containers, without restartPolicy, and leaves init containers alone", async () => {
    const pod = await patchedPod("deployment-two-imports.json", PLAIN);
    const original = fixture("deployment-two-imports.json").request.object as V1Pod;
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(["multicluster-client", "mcsa-sidecar"]);
    expect(pod.spec?.initContainers).toEqual(original.spec?.initContainers);
    expect(container(pod, "mcsa-sidecar").restartPolicy).toBeUndefined();
    expect(container(pod, "multicluster-client").volumeMounts?.at(-1)).toEqual({ name: "mcsa", mountPath: "/var/run/secrets/admiralty.io", readOnly: true });
  });
});

describe("review: a Deployment's pod with two imports", () => {
  it("gives consecutive ports in annotation order and serves init containers after the native sidecar", async () => {
    const pod = await patchedPod("deployment-two-imports.json");
    expect(pod.metadata?.generateName).toBe("multicluster-client-6c9f8b7d5-");
    expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe("ReplicaSet");
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(["mcsa-sidecar", "wait-for-config"]);
    expect(container(pod, "mcsa-sidecar").args?.slice(3)).toEqual([
      "--import=cluster2-default-pod-lister=17001",
      "--import=cluster3-default-pod-lister=17002",
    ]);
    const expectedEnv = [
      { name: "KUBECONFIG", value: "/var/run/secrets/admiralty.io/kubeconfig" },
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17001" },
      { name: "MCSA_CLUSTER3_DEFAULT_POD_LISTER_URL", value: "http://127.0.0.1:17002" },
    ];
    expect(container(pod, "wait-for-config").env).toEqual(expectedEnv);
    expect(container(pod, "multicluster-client").env).toEqual([...expectedEnv, { name: "LOG_LEVEL", value: "debug" }]);
    for (const name of ["wait-for-config", "multicluster-client"]) {
      const mounts = container(pod, name).volumeMounts ?? [];
      expect(mounts.filter((m) => m.name.startsWith("mcsa"))).toEqual([{ name: "mcsa", mountPath: "/var/run/secrets/admiralty.io", readOnly: true }]);
    }
    expect(container(pod, "mcsa-sidecar").volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly])).toEqual([
      ["mcsa", "/var/run/secrets/admiralty.io", undefined],
      ["mcsa-cluster2-default-pod-lister", "/etc/mcsa/secrets/cluster2-default-pod-lister", true],
      ["mcsa-cluster3-default-pod-lister", "/etc/mcsa/secrets/cluster3-default-pod-lister", true],
    ]);
  });

  it("reads duplicate and empty names \"a,,a, b\" as a then b", async () => {
    const pod = await patchedPod("duplicate-empty-names.json");
    expect(container(pod, "mcsa-sidecar").args?.slice(3)).toEqual(["--import=a=17001", "--import=b=17002"]);
    expect(pod.spec?.volumes?.map((v) => v.name)).toEqual(["kube-api-access-7x2kq", "mcsa", "mcsa-a", "mcsa-b"]);
  });
});

describe("review: user settings win", () => {
  it("keeps the app's own KUBECONFIG and MCSA_*_URL, without duplicates", async () => {
    const pod = await patchedPod("kubeconfig-set.json");
    expect(container(pod, "multicluster-client").env).toEqual([
      { name: "MCSA_PROXY_URL", value: "http://127.0.0.1:17001" },
      { name: "KUBECONFIG", value: "/etc/my-app/kubeconfig" },
      { name: "MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL", value: "http://cluster2-proxy:8001" },
    ]);
  });
});

describe("review: refusals", () => {
  async function denied(name: string, lookup: Lookup = LOOKUP) {
    const result = await reviewFixture(name, NATIVE, lookup);
    expect(result.response.allowed).toBe(false);
    expect(result.response.patch).toBeUndefined();
    return result.response.status;
  }

  it("refuses a pod whose ready import's Secret is missing, saying it comes back and to retry", async () => {
    const lookup: Lookup = { ...LOOKUP, secretExists: (_ns, name) => name !== "cluster2-default-pod-lister-token-x7k2p" };
    expect(await denied("readme-pod.json", lookup)).toEqual({
      code: 403,
      message:
        'service account import "cluster2-default-pod-lister" is not usable: its Secret "cluster2-default-pod-lister-token-x7k2p" is missing; ' +
        "the controller restores it within 30 s, retry then (kubectl mcsa check cluster2-default-pod-lister -n default)",
    });
  });

  it("admits the pod once every import's Secret exists", async () => {
    const result = await reviewFixture("readme-pod.json", NATIVE, { ...LOOKUP, secretExists: () => true });
    expect(result.response.allowed).toBe(true);
  });

  it("answers 500 with a reason when the Secret cannot be read", async () => {
    const lookup: Lookup = {
      ...LOOKUP,
      secretExists: () => {
        throw new Error("timed out reading Secret");
      },
    };
    expect(await denied("readme-pod.json", lookup)).toMatchObject({ code: 500, message: expect.stringMatching(/^cannot read Secret .*timed out/) });
  });

  it("names a missing import and its namespace", async () => {
    expect(await denied("missing-import.json")).toEqual({
      code: 403,
      message: 'service account import "cluster4-default-pod-lister" not found in namespace "default"',
    });
  });

  it("says why an import is not ready, on one line", async () => {
    expect(await denied("not-ready-import.json")).toEqual({
      code: 403,
      message: 'service account import "cluster2-not-ready" is not ready: RemoteUnreachable: cannot reach cluster2: dial tcp 10.0.0.2:6443: connect: connection refused',
    });
  });

  it("refuses to clobber a user container named like the sidecar", async () => {
    expect(await denied("sidecar-name-taken.json")).toEqual({
      code: 403,
      message: 'pod already has a container named "mcsa-sidecar" that the webhook did not inject: rename it',
    });
  });

  it("caps the annotation's length", async () => {
    const raw = (fixture("huge-annotation.json").request.object as V1Pod).metadata!.annotations!["multicluster.admiralty.io/service-account-import.name"]!;
    expect(raw.length).toBeGreaterThan(MAX_ANNOTATION_LENGTH);
    expect(await denied("huge-annotation.json")).toEqual({
      code: 403,
      message: `annotation multicluster.admiralty.io/service-account-import.name is ${raw.length} characters long, at most 8192 are allowed`,
    });
  });

  it("answers 500 when the cluster cannot be read, so the controller retries", async () => {
    const failing: Lookup = { ...LOOKUP, serviceAccountImport: async () => Promise.reject(new Error("etcdserver: request timed out")) };
    expect(await denied("readme-pod.json", failing)).toEqual({
      code: 500,
      message: 'cannot read service account imports in namespace "default": etcdserver: request timed out',
    });
    const throwing: Lookup = { ...LOOKUP, namespaceLabels: () => { throw new Error("boom"); } };
    expect(await denied("readme-pod.json", throwing)).toEqual({ code: 500, message: 'cannot read namespace "default": boom' });
  });
});

describe("review: requests left alone", () => {
  for (const name of ["update.json", "delete.json", "not-a-pod.json"]) {
    it(`allows ${name} unchanged`, async () => {
      const result = await reviewFixture(name);
      expect(result.response).toEqual({ uid: fixture(name).request.uid, allowed: true });
    });
  }

  it("allows pods in unlabelled namespaces unchanged, without looking imports up", async () => {
    const body = fixture("readme-pod.json");
    body.request.namespace = "kube-system";
    const lookup: Lookup = { ...LOOKUP, serviceAccountImport: () => { throw new Error("must not be called"); } };
    expect(response(await review(body, lookup, NATIVE)).response).toEqual({ uid: body.request.uid, allowed: true });
  });

  it("allows subresource creations (pods/binding, pods/eviction) unchanged", async () => {
    const body = fixture("readme-pod.json");
    body.request.subResource = "binding";
    expect(response(await review(body, LOOKUP, NATIVE)).response).toEqual({ uid: body.request.uid, allowed: true });
  });
});

describe("review: malformed requests", () => {
  it("turns malformed JSON into an error for the HTTP layer (400)", async () => {
    const result = await review(fixtureText("malformed.json"), LOOKUP, NATIVE);
    expect(result.kind).toBe("error");
    expect(result.kind === "error" && result.message).toMatch(/^body is not valid JSON: /);
  });

  it("refuses an AdmissionReview version it does not speak (400)", async () => {
    expect(await review(fixtureText("wrong-review-version.json"), LOOKUP, NATIVE)).toEqual({
      kind: "error",
      message: 'expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got "admission.k8s.io/v1beta1" and "AdmissionReview"',
    });
  });

  it("needs a request and a uid to answer", () => {
    expect(parseAdmissionReview('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}')).toEqual({
      kind: "error",
      message: "AdmissionReview has no request",
    });
    expect(parseAdmissionReview('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}')).toEqual({
      kind: "error",
      message: "AdmissionReview request has no uid",
    });
    expect(parseAdmissionReview("[]")).toEqual({ kind: "error", message: "body is not a JSON object" });
  });

  it("answers a CREATE without object with a 400 denial", async () => {
    const result = await reviewFixture("missing-object.json");
    expect(result.response).toEqual({
      uid: "3d0a7c5e-1b6f-4e98-c243-9c5b1f7d3e60",
      allowed: false,
      status: { code: 400, message: "CREATE request has no object" },
    });
  });

  it("answers a Pod of the wrong shape with a 400 denial", async () => {
    const body = fixture("readme-pod.json");
    (body.request.object as { spec: { containers: unknown } }).spec.containers = [{ name: "x", env: "KUBECONFIG=/x" }];
    expect(response(await review(body, LOOKUP, NATIVE)).response.status).toEqual({
      code: 400,
      message: 'object is not a valid Pod: spec.containers["x"].env is malformed',
    });
  });
});

describe("admissionResponse", () => {
  const request = { uid: "u1", object: { metadata: {}, spec: { containers: [] } } };
  it("has no patch when nothing changes", () => {
    expect(admissionResponse(request, { kind: "patch", pod: { metadata: {}, spec: { containers: [] } } })).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "u1", allowed: true },
    });
  });
  it("denies with 403 and the message", () => {
    expect(admissionResponse(request, { kind: "deny", message: "no" }).response).toEqual({
      uid: "u1",
      allowed: false,
      status: { code: 403, message: "no" },
    });
  });
});
