// Shared by the webhook tests: fixtures, a fake cluster, and a small RFC 6902 applier so tests
// check the patch the API server would apply, not our own idea of the desired pod.

import { readFileSync } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import { API_VERSION, KIND, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, type ServiceAccountImport } from "../../../common/api.ts";
import type { AdmissionReviewResponse, Lookup } from "../../../webhook/admission.ts";
import type { JsonPatchOp } from "../../../webhook/json-patch.ts";
import type { MutateOptions } from "../../../webhook/mutate.ts";

export const IMAGE = "ghcr.io/admiraltyio/mcsa-sidecar:0.1.0";
export const NATIVE: MutateOptions = { image: IMAGE, nativeSidecar: true };
export const PLAIN: MutateOptions = { image: IMAGE, nativeSidecar: false };

export function fixtureText(name: string): string {
  return readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8");
}

export function fixture(name: string): { request: { uid: string; object?: unknown; [k: string]: unknown } } {
  return JSON.parse(fixtureText(name)) as { request: { uid: string; object?: unknown } };
}

export function fixturePod(name: string): V1Pod {
  return fixture(name).request.object as V1Pod;
}

export function readyImport(name: string, namespace = "default", secret = `${name}-token-x7k2p`): ServiceAccountImport {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace },
    spec: { clusterName: name.split("-")[0] ?? name, namespace: "default", name: "pod-lister" },
    status: {
      secrets: [{ name: secret }],
      conditions: [
        { type: "Ready", status: "True", reason: "TokenIssued", message: "token valid until 2025-11-03T10:12:44Z", lastTransitionTime: "2025-11-03T09:12:44Z" },
      ],
    },
  };
}

export const NOT_READY: ServiceAccountImport = {
  ...readyImport("cluster2-not-ready"),
  status: {
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "RemoteUnreachable",
        message: "cannot reach cluster2:\n dial tcp 10.0.0.2:6443: connect: connection refused",
        lastTransitionTime: "2025-11-03T09:12:44Z",
      },
    ],
  },
};

/** A fake cluster: "default" is labelled, "kube-system" is not. */
export const IMPORTS = new Map<string, ServiceAccountImport>(
  [
    ...["cluster2-default-pod-lister", "cluster3-default-pod-lister", "a", "b"].map((n) => readyImport(n)),
    NOT_READY,
  ].map((sai) => [sai.metadata.name ?? "", sai]),
);

export const LOOKUP: Lookup = {
  namespaceLabels: async (ns): Promise<Record<string, string>> =>
    ns === "default" ? { "kubernetes.io/metadata.name": ns, [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } : { "kubernetes.io/metadata.name": ns },
  serviceAccountImport: async (ns, name) => (ns === "default" ? IMPORTS.get(name) : undefined),
};

export function decodePatch(review: AdmissionReviewResponse): JsonPatchOp[] {
  const patch = review.response.patch;
  return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as JsonPatchOp[]);
}

function unescapeToken(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** Applies add/remove/replace (what our generator emits) to a copy of `doc`, strictly per RFC 6902. */
export function applyPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  const root = { "": structuredClone(doc) as unknown };
  for (const op of ops) {
    if (op.path !== "" && !op.path.startsWith("/")) throw new Error(`bad pointer ${op.path}`);
    const tokens = ["", ...(op.path === "" ? [] : op.path.slice(1).split("/").map(unescapeToken))];
    const last = tokens.pop() as string;
    let parent: unknown = root;
    for (const t of tokens) {
      parent = (parent as Record<string, unknown>)[t];
      if (typeof parent !== "object" || parent === null) throw new Error(`${op.op} ${op.path}: parent does not exist`);
    }
    const target = parent as Record<string, unknown> | unknown[];
    if (Array.isArray(target)) {
      const i = last === "-" ? target.length : Number(last);
      if (op.op === "add") target.splice(i, 0, op.value);
      else if (i >= target.length) throw new Error(`${op.op} ${op.path}: no such index`);
      else if (op.op === "remove") target.splice(i, 1);
      else target[i] = op.value;
    } else {
      const exists = Object.hasOwn(target, last);
      if (op.op === "add") target[last] = op.value;
      else if (!exists) throw new Error(`${op.op} ${op.path}: no such member`);
      else if (op.op === "remove") delete target[last];
      else target[last] = op.value;
    }
  }
  return root[""] as T;
}
