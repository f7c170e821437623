// What a command reads and writes besides its arguments, injected so that every command runs in a
// unit test without a cluster (as kubectl's commands take IOStreams and a client factory): its
// output streams, the sessions it opens, the clock and the pause between polls.
import type { GlobalArgs, Session } from "./session.ts";

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface CommandEnv {
  out: Output;
  err: Output;
  /** A session on the context the global flags name, or on another context (bootstrap's --from). */
  open(args: GlobalArgs, context?: string): Session;
  now(): Date;
  sleep(ms: number): Promise<void>;
  /** Loads what open() needs (client-node) before a command runs, so help and completion start fast. */
  prepare?(): Promise<void>;
}

export function println(output: Output, text: string): void {
  output.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** The real streams and API servers. */
export function processEnv(): CommandEnv {
  let sessions: typeof import("./session.ts") | undefined;
  return {
    out: process.stdout,
    err: process.stderr,
    open: (args, context) => {
      if (!sessions) throw new Error("processEnv: prepare() was not awaited");
      return sessions.KubeSession.open(args, context);
    },
    now: () => new Date(),
    sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
    async prepare() {
      sessions ??= await import("./session.ts");
    },
  };
}
