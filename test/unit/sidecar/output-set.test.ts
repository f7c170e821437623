// Each import's files are one versioned set switched atomically (sidecar/kubelet-layout.ts, used by
// sidecar/sidecar.ts): readers never see the token of one credential beside the server of another.
import { lstat, mkdtemp, readFile, readlink, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DATA_DIR, atomicWrite, removeStaleVersions } from "../../../sidecar/kubelet-layout.ts";
import { FILE_MODE, importPayload, planImportFiles } from "../../../sidecar/output.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "mcsa-output-set-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const contents = (n: number) => ({ token: `token-${n}`, caPem: `ca-${n}`, namespace: "default", server: `https://remote-${n}:6443`, config: "" });
const payload = (n: number) => importPayload(planImportFiles("/out", "a", contents(n), { proxyUrl: "http://127.0.0.1:17001", appToken: true }));

describe("an import's files as one set", () => {
  it("names the files by their keys, links each to ..data, and keeps them read-only", async () => {
    expect(Object.keys(payload(1)).sort()).toEqual(["ca.crt", "config", "namespace", "server", "token"]);
    expect(await atomicWrite(dir, payload(1), { mode: FILE_MODE })).toBe(true);
    expect(await readlink(join(dir, "token"))).toBe(join(DATA_DIR, "token"));
    expect(await readFile(join(dir, "token"), "utf8")).toBe("token-1");
    expect((await lstat(join(dir, await readlink(join(dir, DATA_DIR)), "token"))).mode & 0o777).toBe(0o444);
    expect(await atomicWrite(dir, payload(1), { mode: FILE_MODE })).toBe(false);
  });

  it("replaces plain files an older writer left with links, atomically", async () => {
    await writeFile(join(dir, "token"), "old plain file");
    await atomicWrite(dir, payload(2), { mode: FILE_MODE });
    expect((await lstat(join(dir, "token"))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, "token"), "utf8")).toBe("token-2");
    expect((await readdir(dir)).filter((e) => e.endsWith(".tmp"))).toEqual([]);
  });

  it("never lets a reader see a token and a server of two different sets", async () => {
    await atomicWrite(dir, payload(0), { mode: FILE_MODE });
    let writing = true;
    const writer = (async () => {
      for (let n = 1; n <= 150; n++) await atomicWrite(dir, payload(n), { mode: FILE_MODE });
      writing = false;
    })();
    let reads = 0;
    const torn: string[] = [];
    while (writing) {
      // A consistent read resolves ..data once, as the kubelet's consumers do.
      const version = await readlink(join(dir, DATA_DIR));
      try {
        const [token, server] = await Promise.all([readFile(join(dir, version, "token"), "utf8"), readFile(join(dir, version, "server"), "utf8")]);
        reads++;
        if (token.slice("token-".length) !== server.slice("https://remote-".length, -":6443".length)) torn.push(`${token} ${server}`);
      } catch (error) {
        // That version was replaced and removed between the readlink and the reads: read again.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    expect(torn).toEqual([]);
    expect(await readFile(join(dir, "token"), "utf8")).toBe("token-150");
    expect((await readdir(dir)).filter((e) => e.startsWith("..") && e !== DATA_DIR)).toHaveLength(1);
  });

  it("removes what an interrupted write left, and only that", async () => {
    await atomicWrite(dir, payload(1), { mode: FILE_MODE });
    const current = await readlink(join(dir, DATA_DIR));
    await writeFile(join(dir, "..data_tmp"), "");
    await atomicWrite(join(dir, "..2026_01_01_00_00_00.1"), { token: "orphan" });
    await removeStaleVersions(dir);
    expect((await readdir(dir)).filter((e) => e.startsWith("..")).sort()).toEqual([current, DATA_DIR].sort());
    expect(await readFile(join(dir, "token"), "utf8")).toBe("token-1");
  });
});
