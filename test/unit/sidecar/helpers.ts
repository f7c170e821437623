// Shared by the sidecar unit tests: bounded waits, fake tokens and import Secret payloads.

import { setTimeout as delay } from "node:timers/promises";
import { importKubeconfig, renderKubeconfig } from "../../../common/kubeconfig.ts";

/** Polls until check returns a value other than undefined/false; fails with message after timeoutMs. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`);
    }
    await delay(10);
  }
}

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
