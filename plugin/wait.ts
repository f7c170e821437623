// Waiting for an import's controller to act, with progress on a terminal and a bounded time.
import { type ServiceAccountImport, isReady, readyCondition } from "../common/api.ts";
import { formatDuration } from "../common/duration.ts";
import { poll } from "../common/poll.ts";
import { UserError } from "../common/errors.ts";
import { isNotFound } from "../common/kube.ts";
import { type CommandEnv, println } from "./env.ts";
import type { Session } from "./session.ts";

export async function waitFor(
  env: CommandEnv,
  session: Session,
  name: string,
  namespace: string,
  timeoutSeconds: number,
  done: (sai: ServiceAccountImport) => boolean,
  what: string,
): Promise<ServiceAccountImport> {
  const tty = Boolean(env.err.isTTY);
  let last = "";
  let ready: ReturnType<typeof readyCondition>;
  const result = await poll(
    async () => {
      const sai = await session.getImport(name, namespace);
      if (done(sai)) return sai;
      ready = readyCondition(sai);
      const state = ready ? `${ready.reason}: ${ready.message}` : "waiting for the controller";
      if (tty && state !== last) env.err.write(`\r\x1b[K${name}: ${state}`);
      last = state;
      return false;
    },
    { timeoutMs: timeoutSeconds * 1000, intervalMs: 250, now: () => env.now().getTime(), sleep: (ms) => env.sleep(ms) },
  );
  if (tty && last) env.err.write("\n");
  if (result.done) return result.value;
  throw new UserError(
    `serviceaccountimport "${name}" not ${what} after ${formatDuration(timeoutSeconds)}: ${last}` +
      (ready ? "" : " (is the controller running? kubectl mcsa install sets it up)"),
  );
}

export async function waitForReady(env: CommandEnv, session: Session, name: string, namespace: string, timeoutSeconds: number, out = env.out): Promise<ServiceAccountImport> {
  const sai = await waitFor(env, session, name, namespace, timeoutSeconds, isReady, "ready");
  println(out, `serviceaccountimport "${name}" is ready: ${readyCondition(sai)!.message}`);
  return sai;
}

/** Whether read() answers NotFound within timeoutMs: the object is gone (finalizers and all). */
export async function waitGone(env: CommandEnv, read: () => Promise<unknown>, timeoutMs: number): Promise<boolean> {
  const gone = await poll(
    () =>
      read().then(
        () => false,
        (error: unknown) => {
          if (isNotFound(error)) return true;
          throw error;
        },
      ),
    { timeoutMs, intervalMs: 500, now: () => env.now().getTime(), sleep: (ms) => env.sleep(ms) },
  );
  return gone.done;
}
