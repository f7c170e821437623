// Reads a local API server's audit log (JSON lines, see cluster.ts): the witness of what reached
// the server, as whom, and with which credential.
import { readFile } from "node:fs/promises";
import type { ClusterInfo } from "./cluster.ts";

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username?: string; extra?: Record<string, string[]> };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

/** Every event (one per request: the policy omits RequestReceived) received at or after `since`. */
export async function auditEvents(info: Pick<ClusterInfo, "auditLog">, since = new Date(0)): Promise<AuditEvent[]> {
  const text = await readFile(info.auditLog, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === "ResponseComplete" || e.stage === "Panic")
    .filter((e) => Date.parse(e.requestReceivedTimestamp) >= since.getTime());
}

/** The credential a request was made with, e.g. `JTI=…` for a service-account token. */
export function credentialId(event: AuditEvent): string | undefined {
  return event.user.extra?.["authentication.kubernetes.io/credential-id"]?.[0];
}
