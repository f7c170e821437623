#!/usr/bin/env node
// kubectl mcsa: the kubectl plugin. kubectl runs it as `kubectl-mcsa`; usage says `kubectl mcsa`.
import yargs, { type Argv, type CommandModule } from "yargs";
import { UserError } from "../common/kube.ts";
import { redactTokens } from "../common/redact.ts";
import * as bootstrap from "./commands/bootstrap.ts";
import * as check from "./commands/check.ts";
import * as describe from "./commands/describe.ts";
import * as exportCommand from "./commands/export.ts";
import * as get from "./commands/get.ts";
import * as importCommand from "./commands/import.ts";
import * as install from "./commands/install.ts";
import * as kubeconfig from "./commands/kubeconfig.ts";
import * as remove from "./commands/remove.ts";
import * as rotate from "./commands/rotate.ts";
import * as unbootstrap from "./commands/unbootstrap.ts";
import * as version from "./commands/version.ts";
import type { GlobalArgs } from "./session.ts";

const commands = [
  bootstrap,
  unbootstrap,
  importCommand,
  get,
  describe,
  check,
  rotate,
  remove,
  kubeconfig,
  exportCommand,
  install,
  install.uninstall,
  version,
] as unknown as CommandModule<GlobalArgs, GlobalArgs>[];

export function cli(argv: string[]): Argv<GlobalArgs> {
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
    await cli(argv).parseAsync();
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
