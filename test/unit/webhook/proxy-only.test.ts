// The proxy-only opt-in: a pod annotation that makes the sidecar write no token file for the
// app containers (they get the proxies and kubeconfigs pointing at them, nothing to leak).
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { IMPORT_ANNOTATION, NAMESPACE_LABEL, PROXY_ONLY_ANNOTATION, SIDECAR_CONTAINER_NAME } from "../../../common/api.ts";
import { mutatePod, type MutateResult } from "../../../webhook/mutate.ts";
import { IMPORTS, NATIVE } from "./helpers.ts";

function run(proxyOnly: string | undefined): MutateResult {
  const pod: V1Pod = {
    metadata: {
      name: "p",
      namespace: "default",
      annotations: { [IMPORT_ANNOTATION]: "a", ...(proxyOnly === undefined ? {} : { [PROXY_ONLY_ANNOTATION]: proxyOnly }) },
    },
    spec: { containers: [{ name: "app", image: "app:1" }] },
  };
  return mutatePod({ pod, namespaceLabels: { [NAMESPACE_LABEL]: "enabled" }, imports: IMPORTS, options: NATIVE });
}

const sidecarArgs = (r: MutateResult): string[] | undefined =>
  r.kind === "patch" ? r.pod.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME)?.args : undefined;

describe("the proxy-only annotation", () => {
  it.each([
    [undefined, false],
    ["false", false],
    ["true", true],
  ])("%s: the sidecar is told --no-app-token: %s", (value, noToken) => {
    const args = sidecarArgs(run(value));
    expect(args).toBeDefined();
    expect(args?.includes("--no-app-token")).toBe(noToken);
  });

  it.each(["yes", "True", "1", ""])("refuses %j with one line naming the values", (value) => {
    expect(run(value)).toEqual({
      kind: "deny",
      message: `annotation ${PROXY_ONLY_ANNOTATION} is ${JSON.stringify(value)}: use "true" (app containers get no token, only the proxy) or "false"`,
    });
  });

  it("keeps KUBECONFIG and the proxy URLs in app containers", () => {
    const r = run("true");
    if (r.kind !== "patch") throw new Error(JSON.stringify(r));
    const env = r.pod.spec?.containers[0]?.env?.map((e) => e.name);
    expect(env).toEqual(expect.arrayContaining(["KUBECONFIG", "MCSA_PROXY_URL", "MCSA_A_URL"]));
  });
});
