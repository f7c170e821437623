// Child processes of e2e tests: the project's own entry points run with the pinned Node, their
// output kept for assertions (e.g. that no token is ever logged), all stopped at the end.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "./wait.ts";

export const ROOT = resolve(import.meta.dirname, "..");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node <script> args` to completion (never rejects on a non-zero exit). */
export function runNode(script: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [resolve(ROOT, script), ...args],
      { timeout: options.timeoutMs ?? 60_000, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export class Background {
  readonly output: string[] = [];
  private readonly child: ChildProcess;
  private exited = false;

  constructor(script: string, args: string[]) {
    this.child = spawn(process.execPath, [resolve(ROOT, script), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const collect = (chunk: Buffer) => this.output.push(chunk.toString("utf8"));
    this.child.stdout!.on("data", collect);
    this.child.stderr!.on("data", collect);
    this.child.on("exit", () => (this.exited = true));
  }

  get text(): string {
    return this.output.join("");
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Waits until the output matches, failing with the output so far if it does not in time. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (this.exited) throw new Error(`process exited before printing ${pattern}:\n${this.text}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${pattern}; output:\n${this.text}`);
      await delay(50);
    }
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((done) => this.child.once("exit", () => done()));
    this.child.kill("SIGTERM");
    const killed = await Promise.race([exited.then(() => true), delay(10_000).then(() => false)]);
    if (!killed) {
      this.child.kill("SIGKILL");
      await exited;
    }
  }
}

/**
 * Runs `npm run sidecar-local` for a stored pod until it is ready. Its ports are the pod's moved by
 * a random offset (several sidecars of pods with the same ports run on one machine), so one of them
 * may be taken by then: on EADDRINUSE it starts again with another offset, at most `attempts` times.
 */
export async function startSidecarLocal(args: readonly string[], attempts = 3): Promise<Background> {
  for (let attempt = 1; ; attempt++) {
    const offset = 1000 + Math.floor(Math.random() * 20_000);
    const sidecar = new Background("sidecar/local.ts", [...args, "--port-offset", String(offset)]);
    try {
      await sidecar.waitFor(/is ready/, 60_000);
      return sidecar;
    } catch (error) {
      await sidecar.stop();
      if (attempt >= attempts || !sidecar.text.includes("EADDRINUSE")) throw error;
    }
  }
}

/** waitFor with the defaults API-server round trips want. */
export function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  return waitFor(what, check, timeoutMs, intervalMs);
}
