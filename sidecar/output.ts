// The files app containers read: per import `serviceaccountimports/<import>/{token,ca.crt,
// namespace,server,config}` (the original's paths) and one merged `kubeconfig`. What to write is
// pure (planImportFiles, planMergedKubeconfig). Each import's files are one versioned set switched
// atomically, as the kubelet does with `..data` (kubelet-layout.ts): `token -> ..data/token`. The
// merged kubeconfig, which only names the proxies, is one file replaced atomically.
//
// Both kubeconfigs point at the import's local proxy and hold no credential (common/kubeconfig.ts
// says why): every client, whatever it does with token files, follows rotation through them.
// `token`, `ca.crt` and `server` are the direct path, for clients that re-read the token
// (client-go's rest.Config BearerTokenFile, the @kubectl-mcsa/client library). In proxy-only
// pods (--no-app-token) there is no `token` file: app containers hold no credential at all.
//
// Permissions: every file is 0444 and every directory 0755. App containers may run as any user,
// and nothing makes them share a group with the sidecar (a pod-wide fsGroup would chown every
// volume), so they need the "other" read bit. The boundary is the volume: a memory-backed
// emptyDir of this pod, mounted read-only into its app containers. Files are read-only for
// everyone, the sidecar included: it replaces them by rename, never writes in place. (Kubelet's
// own projected service-account token is 0644 by default.)

import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ImportSecretContents } from "../common/import-secret.ts";
import { proxyKubeconfig, renderKubeconfig } from "../common/kubeconfig.ts";

export const FILE_MODE = 0o444;
export const DIR_MODE = 0o755;
export const IMPORTS_SUBDIR = "serviceaccountimports";
export const MERGED_KUBECONFIG = "kubeconfig";
export const TOKEN_FILE = "token";

export interface PlannedFile {
  path: string;
  content: string;
}

export interface ImportOutput {
  /** The import's local proxy URL, which both kubeconfigs point at. */
  proxyUrl: string;
  /** Whether app containers get the token as a file (false: proxy-only pods). */
  appToken: boolean;
}

export const importDir = (outputDir: string, name: string) => join(outputDir, IMPORTS_SUBDIR, name);

/** One import's files; `config` is a kubeconfig for this import alone, through its proxy. */
export function planImportFiles(outputDir: string, name: string, c: ImportSecretContents, out: ImportOutput): PlannedFile[] {
  const dir = importDir(outputDir, name);
  const config = proxyKubeconfig([{ name, proxyUrl: out.proxyUrl, namespace: c.namespace }]);
  return [
    { path: join(dir, "ca.crt"), content: c.caPem },
    { path: join(dir, "namespace"), content: c.namespace },
    { path: join(dir, "server"), content: c.server },
    // The token after the CA and server it goes with.
    ...(out.appToken ? [{ path: join(dir, TOKEN_FILE), content: c.token }] : []),
    { path: join(dir, "config"), content: renderKubeconfig(config) },
  ];
}

/**
 * One import's files as the payload of a versioned set (kubelet-layout.ts): keys are the file
 * names. The set is switched as a whole, so a reader never sees the token of one credential beside
 * the server or CA of another.
 */
export function importPayload(files: PlannedFile[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [basename(f.path), f.content]));
}

/**
 * Files that must not be there: the token of a proxy-only pod (an earlier run of this sidecar
 * in the same pod volume, started with other flags, may have left one).
 */
export function unwantedFiles(outputDir: string, name: string, out: Pick<ImportOutput, "appToken">): string[] {
  return out.appToken ? [] : [join(importDir(outputDir, name), TOKEN_FILE)];
}

/** The merged kubeconfig: a context per import, in the order given; the first is current. */
export function planMergedKubeconfig(outputDir: string, imports: { name: string; namespace: string; proxyUrl: string }[]): PlannedFile {
  return { path: join(outputDir, MERGED_KUBECONFIG), content: renderKubeconfig(proxyKubeconfig(imports)) };
}

/**
 * Writes files atomically (temp file in the same directory, fsync, rename, fsync of the
 * directory), each only if its content or mode differs from what is there.
 */
export class FileWriter {
  #written = new Map<string, string>();

  /** Returns whether the file was (re)written. */
  async write(file: PlannedFile): Promise<boolean> {
    if (this.#written.get(file.path) === file.content) return false;
    const dir = dirname(file.path);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (await sameOnDisk(file)) {
      this.#written.set(file.path, file.content);
      return false;
    }
    const tmp = join(dir, `.${file.path.slice(dir.length + 1)}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      const handle = await open(tmp, "wx", FILE_MODE);
      try {
        await handle.writeFile(file.content, "utf8");
        await handle.chmod(FILE_MODE); // whatever the umask
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file.path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    await syncDir(dir);
    this.#written.set(file.path, file.content);
    return true;
  }

  /** Removes a file (gone already is fine); returns whether there was one. */
  async remove(path: string): Promise<boolean> {
    this.#written.delete(path);
    try {
      await rm(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
    await syncDir(dirname(path));
    return true;
  }

  async writeAll(files: PlannedFile[]): Promise<number> {
    let n = 0;
    for (const f of files) if (await this.write(f)) n++;
    return n;
  }
}

async function sameOnDisk(file: PlannedFile): Promise<boolean> {
  try {
    const [content, info] = await Promise.all([readFile(file.path, "utf8"), stat(file.path)]);
    return content === file.content && (info.mode & 0o777) === FILE_MODE && info.isFile();
  } catch {
    return false;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is atomic regardless.
  } finally {
    await handle.close();
  }
}

/** Removes temp files a killed sidecar may have left behind (ours start with "." and end ".tmp"). */
export async function removeStaleTemps(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(entries.filter((e) => /^\..+\.[0-9a-f]{12}\.tmp$/.test(e)).map((e) => rm(join(dir, e), { force: true })));
}
