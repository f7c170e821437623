// Kubelet's atomic writer for Secret (and ConfigMap, projected) volumes, replayed step by step,
// so that local runs and tests see exactly what a sidecar sees in a pod:
//
//   <dir>/token   -> ..data/token          (user-visible symlinks, made once)
//   <dir>/..data  -> ..2026_01_02_03_04_05.123456789   (swapped atomically on every update)
//   <dir>/..2026_01_02_03_04_05.123456789/token        (the files themselves)
//
// Steps of k8s.io/kubernetes/pkg/volume/util/atomic_writer.go (Write): make a new timestamped
// dir, write the payload into it, symlink `..data_tmp` to it, rename `..data_tmp` over `..data`,
// create missing user-visible symlinks, remove user-visible paths no longer in the payload, and
// remove the previous timestamped dir.

import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const DATA_DIR = "..data";
const DATA_DIR_TMP = "..data_tmp";

export interface AtomicWriteOptions {
  /** File mode of the payload files (a Secret volume's defaultMode; kubelet's default is 0644). */
  mode?: number;
  /** Called after each step, with its name: tests use it to look at intermediate states. */
  onStep?: (step: AtomicWriteStep) => void | Promise<void>;
}

export type AtomicWriteStep = "timestamped-dir" | "payload" | "data-tmp-symlink" | "rename" | "user-visible" | "remove-old-paths" | "remove-old-dir";

function timestampedName(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}`;
  // Go's os.MkdirTemp appends a random number to the pattern.
  return `..${stamp}.${randomBytes(4).readUInt32BE(0)}`;
}

async function currentDataDir(dir: string): Promise<string | undefined> {
  try {
    return await readlink(join(dir, DATA_DIR));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** The payload the volume holds now (keys of the current `..data`), or undefined if none. */
export async function readPayload(dir: string): Promise<Record<string, string> | undefined> {
  const current = await currentDataDir(dir);
  if (current === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const key of await readdir(join(dir, current))) out[key] = await readFile(join(dir, current, key), "utf8");
  return out;
}

function samePayload(a: Record<string, string> | undefined, b: Record<string, string | Uint8Array>): boolean {
  if (a === undefined) return false;
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  return keys.every((k) => a[k] !== undefined && Buffer.from(a[k]).equals(Buffer.from(b[k] as string | Uint8Array)));
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== "ENOENT") throw error;
}

/**
 * The user-visible `key -> ..data/key` link. A plain file of that name (left by a writer that
 * wrote files in place) is replaced by the link atomically, by renaming a new link over it.
 */
async function ensureSymlink(dir: string, key: string): Promise<void> {
  const target = join(DATA_DIR, key);
  const path = join(dir, key);
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? undefined : Promise.reject(error)));
  if (info?.isSymbolicLink() && (await readlink(path)) === target) return;
  if (info === undefined) {
    await symlink(target, path);
    return;
  }
  const tmp = join(dir, `.${key}.${randomBytes(6).toString("hex")}.tmp`);
  await symlink(target, tmp);
  await rename(tmp, path);
}

/**
 * Removes what an interrupted write left: `..data_tmp`, and timestamped dirs other than the one
 * `..data` points at. Run before the first write of a process.
 */
export async function removeStaleVersions(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  const current = await currentDataDir(dir);
  const stale = entries.filter((e) => e.startsWith("..") && e !== DATA_DIR && e !== current);
  await Promise.all(stale.map((e) => rm(join(dir, e), { recursive: true, force: true })));
}

/**
 * Projects payload (flat keys only, as in a Secret without `items` paths) into dir the way the
 * kubelet does. Returns false, touching nothing, if the payload is what the volume holds already.
 */
export async function atomicWrite(dir: string, payload: Record<string, string | Uint8Array>, options: AtomicWriteOptions = {}): Promise<boolean> {
  for (const key of Object.keys(payload)) {
    if (key === "" || key.startsWith("..") || key.includes("/")) throw new Error(`invalid payload key ${JSON.stringify(key)}`);
  }
  const mode = options.mode ?? 0o644;
  const step = async (name: AtomicWriteStep) => options.onStep?.(name);
  await mkdir(dir, { recursive: true });
  const oldTsDir = await currentDataDir(dir);
  const old = oldTsDir === undefined ? undefined : await readPayload(dir);
  if (samePayload(old, payload)) return false;

  const tsDir = timestampedName(new Date());
  await mkdir(join(dir, tsDir), { mode: 0o755 });
  await chmod(join(dir, tsDir), 0o755);
  await step("timestamped-dir");
  for (const [key, value] of Object.entries(payload)) {
    await writeFile(join(dir, tsDir, key), value, { mode });
    await chmod(join(dir, tsDir, key), mode);
  }
  await step("payload");
  await rm(join(dir, DATA_DIR_TMP), { force: true });
  await symlink(tsDir, join(dir, DATA_DIR_TMP));
  await step("data-tmp-symlink");
  await rename(join(dir, DATA_DIR_TMP), join(dir, DATA_DIR));
  await step("rename");
  for (const key of Object.keys(payload)) await ensureSymlink(dir, key);
  await step("user-visible");
  for (const key of Object.keys(old ?? {})) {
    if (!(key in payload)) await unlink(join(dir, key)).catch(ignoreMissing);
  }
  await step("remove-old-paths");
  if (oldTsDir !== undefined) await rm(join(dir, oldTsDir), { recursive: true, force: true });
  await step("remove-old-dir");
  return true;
}
