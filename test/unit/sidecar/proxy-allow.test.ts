// The opt-in for exec, attach and port-forward through the proxy: the pod's annotation, the
// webhook turning it into the sidecar's flag, and the flag.
import { describe, expect, it } from "vitest";
import { IMPORT_ANNOTATION, NAMESPACE_LABEL, parseProxyAllow, PROXY_ALLOW_ANNOTATION } from "../../../common/api.ts";
import { OptionsError, parseOptions, type SidecarOptions } from "../../../sidecar/options.ts";
import { mutatePod } from "../../../webhook/mutate.ts";
import { IMPORTS, NATIVE } from "../webhook/helpers.ts";

describe("proxy-allow", () => {
  it.each([
    { value: "", allow: [] },
    { value: "exec", allow: ["exec"] },
    { value: " Exec , attach,portforward,exec ", allow: ["exec", "attach", "portforward"] },
    { value: ",,", allow: [] },
    { value: "exec,shell", allow: undefined },
    { value: "port-forward", allow: undefined },
  ])("parse $value", ({ value, allow }) => {
    const got = parseProxyAllow(value);
    if (allow === undefined) expect(got).toEqual({ error: expect.stringMatching(/is not one of exec, attach, portforward$/) });
    else expect(got).toEqual(allow);
  });

  it("is a sidecar flag, off by default, and a bad value is one line", () => {
    const base = ["--secrets-dir=/s", "--output-dir=/o", "--import=a=17001"];
    expect((parseOptions(base) as SidecarOptions).proxyAllow).toEqual([]);
    expect((parseOptions([...base, "--proxy-allow=exec,portforward"]) as SidecarOptions).proxyAllow).toEqual(["exec", "portforward"]);
    expect(() => parseOptions([...base, "--proxy-allow=shell"])).toThrow(new OptionsError('--proxy-allow: "shell" is not one of exec, attach, portforward'));
  });

  const admit = (annotations: Record<string, string>) =>
    mutatePod({
      pod: { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default", annotations: { [IMPORT_ANNOTATION]: "a", ...annotations } }, spec: { containers: [{ name: "app" }] } },
      namespaceLabels: { [NAMESPACE_LABEL]: "enabled" },
      imports: IMPORTS,
      options: NATIVE,
    });
  const sidecarArgs = (result: ReturnType<typeof admit>) => (result.kind === "patch" ? result.pod.spec?.initContainers?.[0]?.args : result);

  it("the webhook passes the pod's annotation to the sidecar, and refuses a bad one", () => {
    expect(sidecarArgs(admit({}))).not.toContainEqual(expect.stringMatching(/^--proxy-allow/));
    expect(sidecarArgs(admit({ [PROXY_ALLOW_ANNOTATION]: "attach, exec" }))).toContain("--proxy-allow=attach,exec");
    expect(sidecarArgs(admit({ [PROXY_ALLOW_ANNOTATION]: "" }))).not.toContainEqual(expect.stringMatching(/^--proxy-allow/));
    expect(admit({ [PROXY_ALLOW_ANNOTATION]: "exec;attach" })).toEqual({
      kind: "deny",
      message: `annotation ${PROXY_ALLOW_ANNOTATION}: "exec;attach" is not one of exec, attach, portforward`,
    });
  });
});
