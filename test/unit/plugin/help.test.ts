// Help as kubectl's: usage, a description, examples that can be copied whole (each parses as the
// CLI's own arguments), flags; nothing wrapped in the middle of a command.
import { describe, expect, it } from "vitest";
import { commandsIn, helpOf } from "../../../scripts/cli-docs.ts";
import { breakCommand } from "../../../plugin/help.ts";
import { registration, run } from "./fake.ts";

/** The examples of a help text: each command with its continuation lines joined, as a shell reads it. */
export function examplesOf(help: string): string[] {
  const section = help.split("\nExamples:\n")[1];
  if (!section) return [];
  const commands: string[] = [];
  let current = "";
  for (const line of section.split("\n")) {
    const text = line.trim();
    if (!text.startsWith("kubectl mcsa") && !current) continue;
    current += (current ? " " : "") + text.replace(/\s*\\$/, "");
    if (!text.endsWith("\\")) {
      commands.push(current);
      current = "";
    }
  }
  return commands;
}

/** Shell words: single and double quotes, up to a redirection. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(>)|(\S+)/g)) {
    if (m[3]) break;
    words.push(m[1] ?? m[2] ?? m[4]!);
  }
  return words;
}

const ARGUMENT_ERROR = /unknown (flag|command)|missing required|invalid value|not enough arguments|too many arguments|unable to match a printer/;

describe("help", () => {
  it("breaks long commands before a flag, each line within 80 columns", () => {
    const lines = breakCommand("kubectl mcsa import a --cluster b --remote-namespace c --service-account d --remote-context e --wait --timeout 30s");
    expect(lines.every((l) => l.length <= 78)).toBe(true);
    expect(lines.slice(0, -1).every((l) => l.endsWith(" \\"))).toBe(true);
    expect(lines.map((l) => l.replace(/ \\$/, "").trim()).join(" ")).toBe("kubectl mcsa import a --cluster b --remote-namespace c --service-account d --remote-context e --wait --timeout 30s");
  });

  it("every command: usage, description, examples within 80 columns that parse as the CLI's own arguments", async () => {
    const top = await helpOf([]);
    const names = commandsIn(top).map((c) => c.name);
    expect(examplesOf(top).length).toBeGreaterThan(0);
    for (const name of names) {
      const help = await helpOf([name]);
      expect(help.split("\n")[0], name).toMatch(new RegExp(`^kubectl mcsa ${name}\\b`));
      expect(help.split("\n")[2], name).toMatch(/^[A-Z]/);
      const examples = examplesOf(help);
      expect(examples.length, `${name} has examples`).toBeGreaterThan(0);
      const block = help.split("\nExamples:\n")[1]!;
      for (const line of block.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80);
      for (const example of examples) {
        const result = await run(shellWords(example).slice(2), [
          { context: "cluster1", registrations: [registration("cluster2")] },
          { context: "cluster2", serviceAccounts: [{ metadata: { name: "pod-lister", namespace: "default" } }] },
        ]);
        expect(result.err, example).not.toMatch(ARGUMENT_ERROR);
      }
    }
  });
});
