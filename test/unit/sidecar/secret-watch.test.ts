// Kubelet's atomic writer replayed in a temp dir, followed with chokidar as the sidecar does.
import { lstat, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCA } from "../../../common/pki.ts";
import type { ImportSecretContents } from "../../../common/import-secret.ts";
import { atomicWrite, readPayload, type AtomicWriteStep } from "../../../sidecar/kubelet-layout.ts";
import { readSecretDir, watchSecretDir, type SecretWatcher } from "../../../sidecar/secret-watch.ts";
import { fakeToken, inOneHour, secretPayload, waitFor } from "./helpers.ts";

let caPem: string;
let root: string;
const watchers: SecretWatcher[] = [];

beforeAll(async () => {
  caPem = (await createCA("test-ca")).cert;
  root = await mkdtemp(join(tmpdir(), "mcsa-secret-watch-"));
});
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.close()));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const newDir = () => join(root, `import-${n++}`);
const payload = (token = fakeToken(inOneHour())) => secretPayload({ name: "a", token, caPem, server: "https://127.0.0.1:6443" });

function follow(dir: string, options = { debounceMs: 20, resyncMs: 60_000 }) {
  const seen: ImportSecretContents[] = [];
  const errors: string[] = [];
  const watcher = watchSecretDir(dir, options, { onContents: (c) => void seen.push(c), onError: (e) => void errors.push(e.message) });
  watchers.push(watcher);
  return { watcher, seen, errors };
}

describe("kubelet layout", () => {
  it("lays out symlinks to ..data, which points at a timestamped dir, and swaps it", async () => {
    const dir = newDir();
    expect(await atomicWrite(dir, { token: "one", namespace: "default" }, { mode: 0o444 })).toBe(true);
    const first = await readlink(join(dir, "..data"));
    expect(first).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$/);
    expect(await readlink(join(dir, "token"))).toBe("..data/token");
    expect((await lstat(join(dir, first, "token"))).mode & 0o777).toBe(0o444);
    expect(await atomicWrite(dir, { token: "one", namespace: "default" })).toBe(false);

    expect(await atomicWrite(dir, { token: "two" })).toBe(true);
    const second = await readlink(join(dir, "..data"));
    expect(second).not.toBe(first);
    // The old version and the key no longer in the payload are gone.
    expect((await readdir(dir)).sort()).toEqual(["..data", second, "token"].sort());
    expect(await readPayload(dir)).toEqual({ token: "two" });
  });

  it("reads one consistent version at every step of a swap", async () => {
    const dir = newDir();
    const before = payload();
    const after = payload();
    await atomicWrite(dir, before);
    const steps: AtomicWriteStep[] = [];
    await atomicWrite(dir, after, {
      onStep: async (step) => {
        steps.push(step);
        const read = await readSecretDir(dir);
        expect([before.token, after.token], step).toContain(read.token);
        expect(read.config, step).toBe(read.token === before.token ? before.config : after.config);
      },
    });
    expect(steps).toEqual(["timestamped-dir", "payload", "data-tmp-symlink", "rename", "user-visible", "remove-old-paths", "remove-old-dir"]);
    expect((await readSecretDir(dir)).token).toBe(after.token);
  });
});

describe("watching a Secret volume", () => {
  it("sees every atomic swap, with all keys re-read, long after the first one", async () => {
    const dir = newDir();
    await atomicWrite(dir, payload());
    const { watcher, seen, errors } = follow(dir);
    await watcher.ready;
    expect(seen).toHaveLength(1);
    for (let i = 0; i < 5; i++) {
      const next = payload();
      await atomicWrite(dir, next, { mode: 0o444 });
      const got = await waitFor(`swap ${i + 1} to be seen`, () => seen.find((c) => c.token === next.token), 3_000);
      expect(got.config).toBe(next.config);
    }
    expect(seen).toHaveLength(6);
    expect(errors).toEqual([]);
  });

  it("reports an invalid update and keeps going with the next valid one", async () => {
    const dir = newDir();
    await atomicWrite(dir, payload());
    const { watcher, seen, errors } = follow(dir);
    await watcher.ready;
    const { token: _dropped, ...withoutToken } = payload();
    await atomicWrite(dir, withoutToken);
    await waitFor("the missing token to be reported", () => errors.find((e) => e.includes("missing: token")), 3_000);
    expect(seen).toHaveLength(1);
    const good = payload();
    await atomicWrite(dir, good);
    await waitFor("the next valid update", () => seen.find((c) => c.token === good.token), 3_000);
    // No message ever quotes a token.
    expect(errors.join("\n")).not.toMatch(/eyJ/);
  });

  it("catches up on the periodic re-read when no event arrives", async () => {
    const dir = newDir();
    await atomicWrite(dir, payload());
    // A debounce longer than the test: events alone would not trigger a read.
    const { watcher, seen } = follow(dir, { debounceMs: 600_000, resyncMs: 600_000 });
    await watcher.ready;
    const next = payload();
    await atomicWrite(dir, next);
    await watcher.resync();
    expect(seen.map((c) => c.token)).toContain(next.token);
  });

  it("reads a plain directory of files too (no ..data)", async () => {
    const dir = newDir();
    const p = payload();
    const { mkdir, writeFile } = await import("node:fs/promises");
    await mkdir(dir);
    for (const [k, v] of Object.entries(p)) await writeFile(join(dir, k), v);
    expect((await readSecretDir(dir)).token).toBe(p.token);
  });
});
