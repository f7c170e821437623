import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCA } from "../../../common/pki.ts";
import { parseImportSecret } from "../../../common/import-secret.ts";
import { FILE_MODE, FileWriter, planImportFiles, planMergedKubeconfig, removeStaleTemps, unwantedFiles } from "../../../sidecar/output.ts";
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

const PROXY = { proxyUrl: "http://127.0.0.1:17001", appToken: true };

describe("output files", () => {
  it("plan the original's per-import files, with a kubeconfig that points at the import's proxy and holds no credential", () => {
    const c = contents();
    const files = planImportFiles("/out", "a", c, PROXY);
    expect(files.map((f) => f.path)).toEqual([
      "/out/serviceaccountimports/a/ca.crt",
      "/out/serviceaccountimports/a/namespace",
      "/out/serviceaccountimports/a/server",
      "/out/serviceaccountimports/a/token",
      "/out/serviceaccountimports/a/config",
    ]);
    expect(files.find((f) => f.path.endsWith("/token"))?.content).toBe(c.token);
    expect(files.find((f) => f.path.endsWith("/server"))?.content).toBe(c.server);
    const config = files.find((f) => f.path.endsWith("config"))?.content ?? "";
    expect(config).not.toContain(c.token);
    expect(load(config)).toEqual({
      apiVersion: "v1",
      kind: "Config",
      preferences: {},
      clusters: [{ name: "a", cluster: { server: "http://127.0.0.1:17001", "insecure-skip-tls-verify": true } }],
      users: [{ name: "a", user: {} }],
      contexts: [{ name: "a", context: { cluster: "a", user: "a", namespace: "default" } }],
      "current-context": "a",
    });
  });

  it.each([
    [true, ["ca.crt", "namespace", "server", "token", "config"], []],
    [false, ["ca.crt", "namespace", "server", "config"], ["/out/serviceaccountimports/a/token"]],
  ])("with appToken %s, plan %j and remove %j", (appToken, planned, unwanted) => {
    const files = planImportFiles("/out", "a", contents(), { ...PROXY, appToken });
    expect(files.map((f) => f.path.slice("/out/serviceaccountimports/a/".length))).toEqual(planned);
    expect(unwantedFiles("/out", "a", { appToken })).toEqual(unwanted);
  });

  it("plan one merged kubeconfig with a context per import through its proxy, the first current", () => {
    const merged = planMergedKubeconfig("/out", [
      { name: "b", namespace: "nb", proxyUrl: "http://127.0.0.1:17001" },
      { name: "a", namespace: "na", proxyUrl: "http://127.0.0.1:17002" },
    ]);
    expect(merged.path).toBe("/out/kubeconfig");
    const k = load(merged.content) as { contexts: { name: string; context: { namespace: string } }[]; "current-context": string; clusters: { cluster: unknown }[]; users: { user: unknown }[] };
    expect(k.contexts.map((c) => [c.name, c.context.namespace])).toEqual([["b", "nb"], ["a", "na"]]);
    expect(k["current-context"]).toBe("b");
    expect(k.clusters.map((c) => c.cluster)).toEqual([
      { server: "http://127.0.0.1:17001", "insecure-skip-tls-verify": true },
      { server: "http://127.0.0.1:17002", "insecure-skip-tls-verify": true },
    ]);
    expect(k.users.map((u) => u.user)).toEqual([{}, {}]);
  });

  it("write atomically, read-only for all, only when the content changed", async () => {
    const out = join(root, "w");
    const writer = new FileWriter();
    const files = planImportFiles(out, "a", contents(), PROXY);
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

    const next = planImportFiles(out, "a", contents(), PROXY);
    expect(await writer.writeAll(next)).toBe(1);
    expect(await readFile(token, "utf8")).toBe(next.find((f) => f.path === token)?.content);
    expect((await lstat(token)).ino).not.toBe(ino);
    expect((await readdir(join(out, "serviceaccountimports/a"))).sort()).toEqual(["ca.crt", "config", "namespace", "server", "token"]);
  });

  it("remove a file and forget it, so that writing it again writes it", async () => {
    const out = join(root, "r");
    const writer = new FileWriter();
    const files = planImportFiles(out, "a", contents(), PROXY);
    await writer.writeAll(files);
    const token = join(out, "serviceaccountimports/a/token");
    expect(await writer.remove(token)).toBe(true);
    expect(await writer.remove(token)).toBe(false);
    await expect(lstat(token)).rejects.toThrow(/ENOENT/);
    expect(await writer.writeAll(files)).toBe(1);
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
