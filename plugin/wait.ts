// Waiting for an import's controller to act, with progress on a terminal and a bounded time.
import { setTimeout as delay } from "node:timers/promises";
import { type ServiceAccountImport, isReady, readyCondition } from "../common/api.ts";
import { formatDuration } from "../common/duration.ts";
import { UserError } from "../common/kube.ts";
import type { Session } from "./session.ts";

export async function waitFor(
  session: Session,
  name: string,
  namespace: string,
  timeoutSeconds: number,
  done: (sai: ServiceAccountImport) => boolean,
  what: string,
): Promise<ServiceAccountImport> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const tty = process.stderr.isTTY;
  let last = "";
  for (;;) {
    const sai = await session.getImport(name, namespace);
    if (done(sai)) {
      if (tty && last) process.stderr.write("\n");
      return sai;
    }
    const ready = readyCondition(sai);
    const state = ready ? `${ready.reason}: ${ready.message}` : "waiting for the controller";
    if (tty && state !== last) process.stderr.write(`\r\x1b[K${name}: ${state}`);
    last = state;
    if (Date.now() > deadline) {
      if (tty) process.stderr.write("\n");
      throw new UserError(
        `serviceaccountimport "${name}" not ${what} after ${formatDuration(timeoutSeconds)}: ${state}` +
          (ready ? "" : " (is the controller running? kubectl mcsa install sets it up)"),
      );
    }
    await delay(250);
  }
}

export async function waitForReady(session: Session, name: string, namespace: string, timeoutSeconds: number): Promise<ServiceAccountImport> {
  const sai = await waitFor(session, name, namespace, timeoutSeconds, isReady, "ready");
  console.log(`serviceaccountimport "${name}" is ready: ${readyCondition(sai)!.message}`);
  return sai;
}
