// Follows one import's Secret volume. Kubelet updates it by swapping the `..data` symlink
// (kubelet-layout.ts), so a watch on a file dies after the first update: we watch the directory
// itself (depth 0, symlinks not followed), treat any event there as "re-read all keys", debounce
// the burst a swap makes, and re-read periodically in case an event is missed.

import { readFile, readlink } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import { SECRET_KEYS } from "../common/api.ts";
import { parseImportSecret, type ImportSecretContents } from "../common/import-secret.ts";
import { DATA_DIR } from "./kubelet-layout.ts";

const MAX_READ_ATTEMPTS = 5;

async function dataTarget(dir: string): Promise<string | undefined> {
  try {
    return await readlink(join(dir, DATA_DIR));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // No `..data` (ENOENT) or not a symlink (EINVAL): a plain directory of files.
    if (code === "ENOENT" || code === "EINVAL") return undefined;
    throw error;
  }
}

/**
 * Every key of the Secret dir, all from one version: read through the timestamped dir that
 * `..data` points at, and again if `..data` moved meanwhile (or the old dir vanished mid-read).
 * Keys that do not exist are left out (parseImportSecret names them).
 */
export async function readSecretDir(dir: string): Promise<Record<string, string>> {
  let lastError: unknown;
  for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
    const target = await dataTarget(dir);
    const base = target === undefined ? dir : isAbsolute(target) ? target : join(dir, target);
    const out: Record<string, string> = {};
    try {
      for (const key of SECRET_KEYS) {
        try {
          out[key] = await readFile(join(base, key), "utf8");
        } catch (error) {
          // A key missing from a stable version is the Secret's problem; from a moving one, retry.
          if ((error as NodeJS.ErrnoException).code !== "ENOENT" || target === undefined) throw error;
          if ((await dataTarget(dir)) !== target) throw error;
        }
      }
    } catch (error) {
      lastError = error;
      continue;
    }
    if ((await dataTarget(dir)) === target) return out;
  }
  throw new Error(`could not read a consistent version of ${dir} in ${MAX_READ_ATTEMPTS} attempts: ${String((lastError as Error | undefined)?.message ?? "it kept changing")}`);
}

export type ReadCause = "initial" | "event" | "resync";

export interface SecretWatchHandlers {
  /** Valid contents that differ from the last valid ones (always called on the first success). */
  onContents(contents: ImportSecretContents, cause: ReadCause): void | Promise<void>;
  /** A read, a check or onContents failed; the last good contents stay in use. */
  onError(error: Error, cause: ReadCause): void;
}

export interface SecretWatchOptions {
  debounceMs: number;
  resyncMs: number;
}

export interface SecretWatcher {
  /** Resolves after the watch is set up and the first read has been handled. */
  ready: Promise<void>;
  /** Re-read now (also what the periodic timer does). */
  resync(): Promise<void>;
  close(): Promise<void>;
}

const fingerprint = (c: ImportSecretContents) => JSON.stringify([c.token, c.caPem, c.namespace, c.server, c.config]);

export function watchSecretDir(dir: string, options: SecretWatchOptions, handlers: SecretWatchHandlers): SecretWatcher {
  let last: string | undefined;
  let closed = false;
  let running: Promise<void> | undefined;
  let pending: ReadCause | undefined;
  let debounce: NodeJS.Timeout | undefined;

  const readOnce = async (cause: ReadCause) => {
    try {
      const contents = parseImportSecret(await readSecretDir(dir), { encoding: "utf8" });
      const print = fingerprint(contents);
      if (print === last) return;
      await handlers.onContents(contents, cause);
      last = print;
    } catch (error) {
      handlers.onError(error instanceof Error ? error : new Error(String(error)), cause);
    }
  };

  // One read at a time; a request during a read runs once more right after it.
  const read = (cause: ReadCause): Promise<void> => {
    if (closed) return Promise.resolve();
    if (running) {
      pending = pending === "event" ? pending : cause;
      return running;
    }
    running = (async () => {
      let next: ReadCause | undefined = cause;
      while (next !== undefined && !closed) {
        pending = undefined;
        await readOnce(next);
        next = pending;
      }
    })().finally(() => (running = undefined));
    return running;
  };

  const watcher: FSWatcher = watch(dir, {
    depth: 0,
    ignoreInitial: true,
    followSymlinks: false,
    // chokidar's own atomic-save handling delays events by 100 ms; we debounce anyway.
    atomic: false,
    persistent: true,
  });
  watcher.on("all", () => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void read("event"), options.debounceMs);
  });
  watcher.on("error", (error) => handlers.onError(error instanceof Error ? error : new Error(String(error)), "event"));
  const timer = setInterval(() => void read("resync"), options.resyncMs);
  timer.unref();

  const ready = new Promise<void>((resolve) => watcher.once("ready", resolve)).then(() => read("initial"));

  return {
    ready,
    resync: () => read("resync"),
    async close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(timer);
      await watcher.close();
      await running;
    },
  };
}
