import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CREDENTIALS_VOLUME_NAME,
  IMPORT_ANNOTATION,
  INJECTED_ANNOTATION,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_VALUE,
  POD_CREDENTIALS_ROOT,
  POD_MERGED_KUBECONFIG,
  SIDECAR_CONTAINER_NAME,
  type ServiceAccountImport,
} from "../../../common/api.ts";
import { admissionResponse } from "../../../webhook/admission.ts";
import { mutatePod, webhookPatch, type MutateOptions } from "../../../webhook/mutate.ts";
import { applyPatch, IMAGE, NOT_READY, readyImport } from "./helpers.ts";

const READY = ["a", "b", "c", "cluster2-default-pod-lister", "x.y", "proxy"];
const IMPORTS = new Map<string, ServiceAccountImport | undefined>([
  ...READY.map((n) => [n, readyImport(n)] as const),
  ["not-ready", NOT_READY],
]);
const LABELS = { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE };

/** Mostly `usual`, sometimes one of `rare` (values that make the webhook refuse the pod). */
function mostly<T>(usual: readonly T[], rare: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: fc.constantFrom(...usual), weight: 9 }, { arbitrary: fc.constantFrom(...rare), weight: 1 });
}

// Names and values chosen to collide with what the webhook injects as often as possible.
const envVar: fc.Arbitrary<V1EnvVar> = fc.oneof(
  fc.record({
    name: fc.constantFrom("KUBECONFIG", "MCSA_PROXY_URL", "MCSA_A_URL", "MCSA_B_URL", "MCSA_Z_URL", "FOO"),
    value: fc.constantFrom(POD_MERGED_KUBECONFIG, "http://127.0.0.1:17001", "http://127.0.0.1:17002", "/custom", ""),
  }),
  fc.record({ name: fc.constantFrom("KUBECONFIG", "FOO"), valueFrom: fc.constant({ fieldRef: { fieldPath: "metadata.name" } }) }),
);
const mount: fc.Arbitrary<V1VolumeMount> = fc.record(
  {
    name: mostly(["data", "cfg", "kube-api-access-1"], [CREDENTIALS_VOLUME_NAME, "mcsa-a"]),
    mountPath: mostly(["/data", "/cfg", "/var/run/secrets/kubernetes.io/serviceaccount", "/x"], [POD_CREDENTIALS_ROOT]),
    readOnly: fc.boolean(),
  },
  { requiredKeys: ["name", "mountPath"] },
);
const containerBody = fc.record(
  {
    image: fc.constant("app:1"),
    env: fc.array(envVar, { maxLength: 5 }),
    volumeMounts: fc.array(mount, { maxLength: 3 }),
    ports: fc.array(fc.record({ containerPort: mostly([80, 8080], [17000, 17003]) }), { maxLength: 2 }),
    restartPolicy: fc.constant("Always"),
    args: fc.array(fc.constantFrom("--import=z=17005", "--import=a=17009", "-v"), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const volume: fc.Arbitrary<V1Volume> = fc.record({
  name: mostly(["data", "cfg", "kube-api-access-1", "other", "mcsa-zz"], [CREDENTIALS_VOLUME_NAME, "mcsa-a"]),
  emptyDir: fc.constant({}),
});
const annotationValue = fc
  .array(
    fc.oneof(
      { arbitrary: mostly(["a", "b", "c", "cluster2-default-pod-lister", "x.y", "", " a ", "b "], ["proxy", "not-ready", "missing", "A", "a/b"]), weight: 19 },
      { arbitrary: fc.string({ maxLength: 4 }), weight: 1 },
    ),
    { maxLength: 4 },
  )
  .map((parts) => parts.join(","));

const podArb: fc.Arbitrary<V1Pod> = fc
  .record({
    names: fc.uniqueArray(mostly(["app", "worker", "init1", "init2", "proxy"], [SIDECAR_CONTAINER_NAME]), { minLength: 1, maxLength: 5 }),
    initCount: fc.nat({ max: 4 }),
    bodies: fc.array(containerBody, { minLength: 5, maxLength: 5 }),
    volumes: fc.option(fc.uniqueArray(volume, { selector: (v) => v.name, maxLength: 4 }), { nil: undefined }),
    annotation: fc.option(annotationValue, { nil: undefined }),
    marked: fc.boolean(),
    otherAnnotations: fc.dictionary(fc.string({ unit: fc.constantFrom("a", "/", "~", "."), minLength: 1, maxLength: 4 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
    hostNetwork: mostly([undefined, undefined, false], [true]),
  })
  .map((g) => {
    const containers: V1Container[] = g.names.map((name, i) => ({ name, ...g.bodies[i] }));
    const init = containers.slice(0, Math.min(g.initCount, containers.length - 1));
    const annotations: Record<string, string> = { ...g.otherAnnotations };
    if (g.annotation !== undefined) annotations[IMPORT_ANNOTATION] = g.annotation;
    if (g.marked) annotations[INJECTED_ANNOTATION] = "mcsa-webhook";
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { generateName: "p-", namespace: "default", annotations },
      spec: {
        ...(init.length > 0 ? { initContainers: init } : {}),
        containers: containers.slice(init.length),
        ...(g.volumes === undefined ? {} : { volumes: g.volumes }),
        ...(g.hostNetwork === undefined ? {} : { hostNetwork: g.hostNetwork }),
      },
    };
  });

const optionsArb: fc.Arbitrary<MutateOptions> = fc.record({ image: fc.constant(IMAGE), nativeSidecar: fc.boolean() });

const mutate = (pod: V1Pod, options: MutateOptions, namespaceLabels: Record<string, string> | undefined) =>
  mutatePod({ pod, namespaceLabels, imports: IMPORTS, options });

/** What travels over the wire: JSON, so no undefined properties. */
const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe("mutatePod (properties)", () => {
  it("is idempotent: mutating its output changes nothing, and its patch yields the desired pod", () => {
    const outcomes = { patch: 0, deny: 0, skip: 0 };
    fc.assert(
      fc.property(podArb, optionsArb, (pod, options) => {
        const first = mutate(pod, options, LABELS);
        outcomes[first.kind]++;
        if (first.kind !== "patch") return;
        const stored = applyPatch(pod, webhookPatch(pod, first.pod));
        expect(stored).toEqual(wire(first.pod));

        const second = mutate(wire(stored), options, LABELS);
        expect(second).toEqual({ kind: "patch", pod: first.pod });
        if (second.kind === "patch") expect(webhookPatch(wire(stored), second.pod)).toEqual([]);

        // Invariants of an injected pod.
        const spec = first.pod.spec!;
        const all = [...(spec.initContainers ?? []), ...spec.containers];
        expect(all.filter((c) => c.name === SIDECAR_CONTAINER_NAME)).toHaveLength(1);
        const sidecarFirst = options.nativeSidecar ? spec.initContainers?.[0] : spec.containers.at(-1);
        expect(sidecarFirst?.name).toBe(SIDECAR_CONTAINER_NAME);
        const secretVolumes = new Set((spec.volumes ?? []).filter((v) => v.secret !== undefined).map((v) => v.name));
        for (const c of all) {
          const mounts = c.volumeMounts ?? [];
          if (c.name === SIDECAR_CONTAINER_NAME) continue;
          expect(mounts.filter((m) => secretVolumes.has(m.name))).toEqual([]);
          const isTarget = options.nativeSidecar || spec.containers.includes(c);
          const ours = mounts.filter((m) => m.name === CREDENTIALS_VOLUME_NAME);
          expect(ours).toEqual(isTarget ? [{ name: CREDENTIALS_VOLUME_NAME, mountPath: POD_CREDENTIALS_ROOT, readOnly: true }] : []);
          if (isTarget) expect(c.env?.some((e) => e.name === "KUBECONFIG")).toBe(true);
        }
      }),
      { numRuns: Number(process.env.MCSA_PROPERTY_RUNS ?? 500) },
    );
    if (process.env.MCSA_PROPERTY_RUNS) console.log(outcomes);
    // The generator must exercise injection, not only refusals.
    expect(outcomes.patch).toBeGreaterThan(50);
    expect(outcomes.deny).toBeGreaterThan(20);
  });

  it("never touches pods outside labelled namespaces", () => {
    const labels = fc.option(
      fc.dictionary(fc.constantFrom(NAMESPACE_LABEL, "team", "kubernetes.io/metadata.name"), fc.constantFrom(NAMESPACE_LABEL_VALUE, "disabled", "Enabled", "x", "")),
      { nil: undefined },
    );
    fc.assert(
      fc.property(podArb, optionsArb, labels, (pod, options, namespaceLabels) => {
        fc.pre(namespaceLabels?.[NAMESPACE_LABEL] !== NAMESPACE_LABEL_VALUE);
        const decision = mutate(pod, options, namespaceLabels);
        expect(decision.kind).toBe("skip");
        const answer = admissionResponse({ uid: "u", operation: "CREATE", object: pod }, decision);
        expect(answer.response).toEqual({ uid: "u", allowed: true });
      }),
      { numRuns: 300 },
    );
  });
});

describe("webhookPatch (property)", () => {
  const key = fc.string({ unit: fc.constantFrom("a", "b", "/", "~", "0", "1"), maxLength: 3 });
  const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom(null, true, 0, 1, "x", ""),
      fc.array(tie("value"), { maxLength: 3 }),
      fc.dictionary(key, tie("value"), { maxKeys: 3 }),
    ),
  })).value;
  const doc = fc.dictionary(key, json, { maxKeys: 4 }).map(wire);

  it("turns any JSON object into any other, and is empty between equal ones", () => {
    fc.assert(
      fc.property(doc, doc, (from, to) => {
        expect(applyPatch(from, webhookPatch(from, to))).toEqual(to);
        expect(webhookPatch(to, structuredClone(to))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
