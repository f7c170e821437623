#!/usr/bin/env node
// kubectl mcsa: the kubectl plugin. kubectl runs it as `kubectl-mcsa`; usage says `kubectl mcsa`.
import yargs, { type Argv, type CommandModule } from "yargs";
import { UserError } from "../common/errors.ts";
import { redactTokens } from "../common/redact.ts";
import { COMMANDS, namesOf } from "./commands/index.ts";
import type { GlobalArgs } from "./session.ts";

/** Global flags that take a value, so that their value is not taken for the command's name. */
const VALUE_FLAGS = new Set(["--kubeconfig", "--context", "--namespace", "-n"]);

/** The command word argv selects (completion: the word being completed after), if any. */
export function selectedCommand(argv: string[]): string | undefined {
  const completion = argv.indexOf("--get-yargs-completions");
  const words = completion >= 0 ? argv.slice(completion + 2) : argv;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (VALUE_FLAGS.has(word)) i++;
    else if (!word.startsWith("-")) return word;
  }
  return undefined;
}

/** Only the selected command's module is loaded; the others are listed by name and description. */
async function commandModules(argv: string[]): Promise<CommandModule<GlobalArgs, GlobalArgs>[]> {
  const selected = selectedCommand(argv);
  return Promise.all(
    COMMANDS.map(async (entry) => {
      const base = { command: entry.command, describe: entry.describe };
      if (selected !== undefined && namesOf(entry).includes(selected)) {
        const implementation = await entry.load();
        return { ...base, builder: implementation.builder, handler: implementation.handler } as CommandModule<GlobalArgs, GlobalArgs>;
      }
      // Never selected by the parse (argv names another command); loads itself if it ever is.
      return { ...base, handler: async (args: GlobalArgs) => (await entry.load()).handler(args) };
    }),
  );
}

export async function cli(argv: string[]): Promise<Argv<GlobalArgs>> {
  const commands = await commandModules(argv);
  // Completion scripts name a shell function and a command after the script: those must be the
  // executable's name, while usage reads as kubectl users type it.
  const completing = argv[0] === "completion" || argv.includes("--get-yargs-completions");
  return yargs(argv)
    .scriptName(completing ? "kubectl-mcsa" : "kubectl mcsa")
    .usage("kubectl mcsa: multicluster service accounts.\nA pod in one cluster calls another cluster's API as an imported service account.\n\nUsage: $0 <command> [flags]")
    .option("kubeconfig", { type: "string", global: true, describe: "path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config)" })
    .option("context", { type: "string", global: true, describe: "the kubeconfig context to use" })
    .option("namespace", { alias: "n", type: "string", global: true, describe: "the namespace (default: the context's)" })
    .command(commands)
    .demandCommand(1, "name a command (kubectl mcsa --help lists them)")
    .recommendCommands()
    .strict()
    .completion("completion", "Print a shell completion script for kubectl-mcsa (bash or zsh): source <(kubectl mcsa completion)")
    .help()
    .alias("help", "h")
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((message, error) => {
      throw error ?? new UserError(message);
    }) as Argv<GlobalArgs>;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await cli(argv)).parseAsync();
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // One line, never a token, never a stack: what happened and what to do.
    console.error(`error: ${redactTokens(message).split("\n")[0]}`);
    if (process.env.MCSA_DEBUG && error instanceof Error && !(error instanceof UserError)) console.error(error.stack);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
