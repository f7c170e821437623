// docs/cli.md is generated from the CLI's own --help (scripts/cli-docs.ts): it cannot drift.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLI_DOCS, commandsIn, helpOf, renderCliDocs } from "../../scripts/cli-docs.ts";

describe("docs/cli.md", () => {
  it("is what scripts/cli-docs.ts writes from the current --help (else run: node scripts/cli-docs.ts)", async () => {
    const expected = await renderCliDocs();
    const actual = readFileSync(CLI_DOCS, "utf8");
    expect(actual === expected, "docs/cli.md is stale: run `node scripts/cli-docs.ts` and commit docs/cli.md").toBe(true);
  });

  it("covers every command of the top-level help, each with its usage line", async () => {
    const top = await helpOf([]);
    const commands = commandsIn(top).map((c) => c.name);
    expect(commands).toEqual(expect.arrayContaining(["bootstrap", "unbootstrap", "import", "get", "describe", "install", "uninstall", "version"]));
    const docs = await renderCliDocs();
    for (const name of commands) expect(docs, name).toContain(`\n## kubectl mcsa ${name}\n`);
    for (const name of commands.filter((n) => n !== "completion")) expect(docs, name).toMatch(new RegExp(`\`\`\`text\\nkubectl mcsa ${name}\\b`));
  });

  it("reads wrapped descriptions and aliases out of the command list", () => {
    const commands = commandsIn(
      [
        "Usage: kubectl mcsa <command> [flags]",
        "",
        "Commands:",
        "  kubectl mcsa get [name]        List imports   [aliases: list]",
        "  kubectl mcsa import <name>     Import a service account of a remote",
        "                                 cluster",
        "",
        "Options:",
        "  -h, --help  Show help",
      ].join("\n"),
    );
    expect(commands).toEqual([
      { name: "get", describe: "List imports" },
      { name: "import", describe: "Import a service account of a remote cluster" },
    ]);
  });
});
