// Starting, watching and stopping the server processes of local clusters.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/** A free TCP port on 127.0.0.1 (the kernel picks it; we release it for the server to bind). */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

/**
 * Starts a server detached from our process group, so that it outlives `clusters up`
 * and a Ctrl-C in the terminal does not take it down half-way; output goes to logFile.
 */
export function startDetached(binary: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(binary, args, { detached: true, stdio: ["ignore", fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${binary}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Whether pid is a live process running binary (guards against pid reuse after a reboot). */
export function isRunning(pid: number | undefined, binary: string): boolean {
  if (!pid) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // A zombie has exited; it only waits for its parent to reap it.
    if (/^\d+ \(.*\) Z /.test(stat)) return false;
    return cmdline.split("\0")[0] === binary;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
export async function stopProcess(pid: number | undefined, binary: string, graceMs = 10_000): Promise<void> {
  if (!isRunning(pid, binary)) return;
  try {
    process.kill(pid!, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isRunning(pid, binary)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid!, "SIGKILL");
      } catch {
        return;
      }
    }
    await delay(50);
  }
}

/** The last lines of a log, to explain why a server did not come up. */
export function logTail(logFile: string, lines = 15): string {
  if (!existsSync(logFile)) return "(no log)";
  return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Pids of live processes running binary whose arguments mention path: finds a cluster's servers
 * even when a state file is stale (an API server restarted by a test has a new pid).
 */
export function processesUsing(path: string, binaries: string[]): { pid: number; binary: string }[] {
  const found: { pid: number; binary: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (binaries.includes(args[0]!) && args.some((a) => a.includes(path)) && isRunning(pid, args[0]!)) {
        found.push({ pid, binary: args[0]! });
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
