// @kubectl-mcsa/client as a consumer gets it: `npm pack` ships only the built JavaScript, its
// type declarations, README, LICENSE and package.json; a TypeScript consumer with only the
// tarball and @kubernetes/client-node type-checks against it (and a wrong use fails to); the
// packed code runs under plain Node (no type stripping inside node_modules).
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fixture } from "./fixtures.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../../..");
const CLIENT = join(ROOT, "client");
const tmp = mkdtempSync(join(tmpdir(), "mcsa-client-pack-"));
const consumer = join(tmp, "consumer");
let tarball: string;

async function sh(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

beforeAll(async () => {
  const packed = await sh("npm", ["pack", "--json", "--pack-destination", tmp], CLIENT);
  expect(packed.code, packed.stderr).toBe(0);
  const [info] = JSON.parse(packed.stdout) as { filename: string }[];
  tarball = join(tmp, info!.filename);
  // A consumer project: the tarball unpacked where npm would put it, client-node and Node's types beside it.
  const pkgDir = join(consumer, "node_modules/@kubectl-mcsa/client");
  mkdirSync(pkgDir, { recursive: true });
  const untar = await sh("tar", ["-xzf", tarball, "-C", pkgDir, "--strip-components=1"], tmp);
  expect(untar.code, untar.stderr).toBe(0);
  mkdirSync(join(consumer, "node_modules/@kubernetes"), { recursive: true });
  mkdirSync(join(consumer, "node_modules/@types"), { recursive: true });
  symlinkSync(join(ROOT, "node_modules/@kubernetes/client-node"), join(consumer, "node_modules/@kubernetes/client-node"));
  symlinkSync(join(ROOT, "node_modules/@types/node"), join(consumer, "node_modules/@types/node"));
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
  writeFileSync(
    join(consumer, "tsconfig.json"),
    // skipLibCheck as client-node's users need it: its own declarations import `ws`, whose types it does not depend on.
    JSON.stringify({ compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] }, include: ["*.ts"] }),
  );
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the @kubectl-mcsa/client package", () => {
  it("packs only the built code, its declarations, README, LICENSE and package.json", async () => {
    const listed = await sh("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], CLIENT);
    expect(listed.code, listed.stderr).toBe(0);
    const files = (JSON.parse(listed.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path).sort();
    const modules = ["config", "errors", "imports", "index", "kubeconfig", "token-file"];
    expect(files).toEqual(["LICENSE", "README.md", ...modules.flatMap((m) => [`dist/${m}.d.ts`, `dist/${m}.js`]), "package.json"].sort());
  });

  // Two tsc runs: seconds on a quiet machine, much longer on a busy one.
  it("type-checks from a consumer's point of view, and a wrong use does not", { timeout: 180_000 }, async () => {
    writeFileSync(
      join(consumer, "app.ts"),
      [
        'import { CoreV1Api } from "@kubernetes/client-node";',
        'import { configAndNamespace, allNamedConfigsAndNamespaces, ClientConfigError, TokenFileAuthenticator, type ConfigAndNamespace } from "@kubectl-mcsa/client";',
        "export async function main(): Promise<string[]> {",
        "  const { config, namespace, source }: ConfigAndNamespace = configAndNamespace();",
        '  const s: "import" | "kubeconfig" | "in-cluster" = source;',
        "  const pods = await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });",
        "  for (const [name, c] of allNamedConfigsAndNamespaces()) console.log(name, c.namespace, s);",
        '  config.addAuthenticator(new TokenFileAuthenticator({ refreshMs: 1000 }).register("u", "/t"));',
        "  try { configAndNamespace(); } catch (e) { if (e instanceof ClientConfigError) console.log(e.code, e.path); }",
        "  return pods.items.map((p) => p.metadata?.name ?? \"\");",
        "}",
        "",
      ].join("\n"),
    );
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const ok = await sh(process.execPath, [tsc, "-p", "."], consumer);
    expect(ok.stdout + ok.stderr).toBe("");
    expect(ok.code).toBe(0);

    writeFileSync(join(consumer, "wrong.ts"), 'import { namedConfigAndNamespace } from "@kubectl-mcsa/client";\nexport const n: number = namedConfigAndNamespace("x").namespace;\n');
    const wrong = await sh(process.execPath, [tsc, "-p", "."], consumer);
    rmSync(join(consumer, "wrong.ts"));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(/wrong\.ts.*Type 'string' is not assignable to type 'number'/);
  });

  it("runs from node_modules under plain Node: the packed code reads an import", { timeout: 60_000 }, async () => {
    const fx = new Fixture();
    try {
      await fx.secretImport("c2", "packed-token");
      writeFileSync(
        join(consumer, "run.mjs"),
        [
          'import { namedServiceAccountImportConfigAndNamespace } from "@kubectl-mcsa/client";',
          "const c = namedServiceAccountImportConfigAndNamespace(\"c2\", { importsDir: process.argv[2] });",
          "const opts = {}; await c.config.applyToHTTPSOptions(opts);",
          "console.log(JSON.stringify({ server: c.config.getCurrentCluster().server, namespace: c.namespace, auth: opts.headers.Authorization }));",
        ].join("\n"),
      );
      const out = await sh(process.execPath, ["run.mjs", fx.imports], consumer);
      expect(out.stderr).toBe("");
      expect(JSON.parse(out.stdout)).toEqual({ server: "https://c2.example:6443", namespace: "ns-c2", auth: "Bearer packed-token" });
    } finally {
      fx.remove();
    }
  });
});
