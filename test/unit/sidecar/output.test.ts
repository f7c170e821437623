import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCA } from "../../../common/pki.ts";
import { parseImportSecret } from "../../../common/import-secret.ts";
import { FILE_MODE, FileWriter, planImportFiles, planMergedKubeconfig, removeStaleTemps } from "../../../sidecar/output.ts";
import { fakeToken, inOneHour, secretPayload } from "./helpers.ts";

let caPem: string;
let root: string;
beforeAll(async () => {
  caPem = (await createCA("test-ca")).cert;
  root = await mkdtemp(join(tmpdir(), "mcsa-output-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const contents = (server = "https://127.0.0.1:6443", token = fakeToken(inOneHour())) =>
  parseImportSecret(secretPayload({ name: "a", token, caPem, server }), { encoding: "utf8" });

describe("output files", () => {
  it("plan the original's per-import files, with a kubeconfig that reads the token and CA from them", () => {
    const c = contents();
    const files = planImportFiles("/out", "a", c);
    expect(files.map((f) => f.path)).toEqual([
      "/out/serviceaccountimports/a/ca.crt",
      "/out/serviceaccountimports/a/namespace",
      "/out/serviceaccountimports/a/server",
      "/out/serviceaccountimports/a/token",
      "/out/serviceaccountimports/a/config",
    ]);
    const config = files.find((f) => f.path.endsWith("config"))?.content ?? "";
    expect(config).not.toContain(c.token);
    expect(load(config)).toMatchObject({
      clusters: [{ name: "a", cluster: { server: c.server, "certificate-authority": "/out/serviceaccountimports/a/ca.crt" } }],
      users: [{ name: "a", user: { tokenFile: "/out/serviceaccountimports/a/token" } }],
      contexts: [{ name: "a", context: { cluster: "a", user: "a", namespace: "default" } }],
      "current-context": "a",
    });
  });

  it("plan one merged kubeconfig with a context per import, the first current", () => {
    const merged = planMergedKubeconfig("/out", [
      { name: "b", contents: contents("https://b:6443") },
      { name: "a", contents: contents("https://a:6443") },
    ]);
    expect(merged.path).toBe("/out/kubeconfig");
    const k = load(merged.content) as { contexts: { name: string }[]; "current-context": string; users: { user: unknown }[] };
    expect(k.contexts.map((c) => c.name)).toEqual(["b", "a"]);
    expect(k["current-context"]).toBe("b");
    expect(k.users.map((u) => u.user)).toEqual([
      { tokenFile: "/out/serviceaccountimports/b/token" },
      { tokenFile: "/out/serviceaccountimports/a/token" },
    ]);
  });

  it("write atomically, read-only for all, only when the content changed", async () => {
    const out = join(root, "w");
    const writer = new FileWriter();
    const files = planImportFiles(out, "a", contents());
    expect(await writer.writeAll(files)).toBe(5);
    const token = join(out, "serviceaccountimports/a/token");
    const info = await lstat(token);
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(FILE_MODE);
    expect((await lstat(join(out, "serviceaccountimports/a"))).mode & 0o777).toBe(0o755);
    const ino = info.ino;
    expect(await writer.writeAll(files)).toBe(0);
    // A fresh writer (a restarted sidecar) compares with what is on disk.
    expect(await new FileWriter().writeAll(files)).toBe(0);
    expect((await lstat(token)).ino).toBe(ino);

    const next = planImportFiles(out, "a", contents());
    expect(await writer.writeAll(next)).toBe(1);
    expect(await readFile(token, "utf8")).toBe(next.find((f) => f.path === token)?.content);
    expect((await lstat(token)).ino).not.toBe(ino);
    expect((await readdir(join(out, "serviceaccountimports/a"))).sort()).toEqual(["ca.crt", "config", "namespace", "server", "token"]);
  });

  it("clear temp files a killed sidecar left", async () => {
    const dir = join(root, "t");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(dir);
    await writeFile(join(dir, ".token.0123456789ab.tmp"), "x");
    await writeFile(join(dir, "token"), "keep");
    await removeStaleTemps(dir);
    expect(await readdir(dir)).toEqual(["token"]);
  });
});
