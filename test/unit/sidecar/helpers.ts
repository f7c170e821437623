// Shared by the sidecar unit tests: bounded waits, fake tokens and import Secret payloads.

import { importKubeconfig, renderKubeconfig } from "../../../common/kubeconfig.ts";

export { waitFor } from "../../../harness/wait.ts";

/** An unsigned JWT-shaped token with the given exp (seconds) and subject: enough for the sidecar, which never verifies. */
export function fakeToken(expSeconds: number, sub = "system:serviceaccount:default:pod-lister"): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "RS256", kid: "k" })}.${b64({ sub, exp: expSeconds, n: Math.random() })}.c2ln`;
}

export function inOneHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

/** The files of an import Secret volume. */
export function secretPayload(input: { name: string; token: string; caPem: string; server: string; namespace?: string }): Record<string, string> {
  const namespace = input.namespace ?? "default";
  return {
    token: input.token,
    "ca.crt": input.caPem,
    namespace,
    server: input.server,
    config: renderKubeconfig(importKubeconfig({ name: input.name, server: input.server, caData: input.caPem, namespace, token: input.token })),
  };
}
