// The layering rule of eslint.config.js: dependencies point one way (docs/architecture.md). Each
// row imports one folder from another through ESLint's own API, as `npm run lint` would.
import { resolve } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: ROOT });

async function restricted(fromFile: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import "${specifier}";\n`, { filePath: resolve(ROOT, fromFile) });
  return (result?.messages ?? []).filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

describe("dependencies point one way", () => {
  it.each([
    ["common/log.ts", "../controller/imports.ts", "common/ may not import controller/"],
    ["common/log.ts", "../webhook/mutate.ts", "common/ may not import webhook/"],
    ["common/log.ts", "../harness/cluster.ts", "common/ may not import harness/"],
    ["controller/imports.ts", "../webhook/admission.ts", "controller/ may not import webhook/"],
    ["webhook/lookup.ts", "../controller/imports.ts", "webhook/ may not import controller/"],
    ["sidecar/main.ts", "../webhook/mutate.ts", "sidecar/ may not import webhook/"],
    ["plugin/main.ts", "../webhook/mutate.ts", "plugin/ may not import webhook/"],
    ["plugin/commands/get.ts", "../../manager/main.ts", "plugin/ may not import manager/"],
    ["manager/main.ts", "../plugin/main.ts", "manager/ may not import plugin/"],
    ["harness/cluster.ts", "../test/unit/layers.test.ts", "harness/ may not import test/"],
    ["scripts/demo.ts", "../test/e2e/global-setup.ts", "scripts/ may not import test/"],
    ["bench/proxy.ts", "../test/e2e/global-setup.ts", "bench/ may not import test/"],
  ])("%s importing %s fails lint", async (file, specifier, message) => {
    expect((await restricted(file, specifier)).join("\n")).toContain(message);
  });

  it.each([
    ["controller/imports.ts", "../common/api.ts"],
    ["manager/main.ts", "../controller/imports.ts"],
    ["manager/main.ts", "../webhook/server.ts"],
    ["plugin/commands/get.ts", "../../common/api.ts"],
    ["scripts/demo.ts", "../harness/clusters.ts"],
    ["bench/proxy.ts", "../sidecar/proxy.ts"],
    ["test/e2e/story.test.ts", "../../harness/cluster.ts"],
  ])("%s may import %s", async (file, specifier) => {
    expect(await restricted(file, specifier)).toEqual([]);
  });
});
