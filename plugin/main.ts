#!/usr/bin/env node
// kubectl mcsa: the kubectl plugin. kubectl runs it as `kubectl-mcsa`; usage says `kubectl mcsa`.
// main(argv, env) runs one command line with injected streams and sessions (env.ts): the binary
// passes the process's, unit tests pass fakes.
import yargs, { type Argv, type CommandModule } from "yargs";
import { UserError } from "../common/errors.ts";
import { redactTokens } from "../common/redact.ts";
import { COMMANDS, namesOf } from "./commands/index.ts";
import { type CommandEnv, println, processEnv } from "./env.ts";
import { examplesText } from "./help.ts";
import type { GlobalArgs } from "./session.ts";

/** Global flags that take a value, so that their value is not taken for the command's name. */
const VALUE_FLAGS = new Set(["--kubeconfig", "--context", "--cluster", "--user", "--namespace", "-n"]);

/** The command word argv selects, if any. */
export function selectedCommand(words: string[]): string | undefined {
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (VALUE_FLAGS.has(word)) i++;
    else if (!word.startsWith("-")) return word;
  }
  return undefined;
}

/** kubectl's short flags take their value glued on too: -oyaml, -o=yaml, -nkube-system, -lapp=x. */
export function normalizeArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const glued = /^-([onl])=?(.+)$/.exec(word);
    if (glued) out.push(`-${glued[1]}`, glued[2]!);
    else out.push(word);
  }
  return out;
}

/** Words users of kubectl (and of the original plugin) type for a command of another name. */
const SYNONYMS: Record<string, string> = {
  delete: "remove",
  rm: "remove",
  create: "import",
  add: "import",
  ls: "list",
  show: "describe",
  setup: "install",
  init: "install",
  renew: "rotate",
  refresh: "rotate",
  register: "bootstrap",
  unregister: "unbootstrap",
};

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The command a mistyped word most likely meant, if any is close. */
export function suggestCommand(word: string, names: string[]): string | undefined {
  if (SYNONYMS[word] && names.includes(SYNONYMS[word])) return SYNONYMS[word];
  const best = names.map((name) => ({ name, d: distance(word, name) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

export const COMMAND_NAMES = COMMANDS.flatMap(namesOf);

/** yargs' own messages, made one line that names the flag and what it accepts. */
export function oneLine(message: string): string {
  const choice = /^Invalid values:\s*Argument: ([\w-]+), Given: (.*?), Choices: (.*)$/s.exec(message.trim());
  if (choice) {
    const flag = choice[1]!.length === 1 ? `-${choice[1]}` : `--${choice[1]}`;
    const given = choice[2]!.replace(/^"(.*)"$/, "$1");
    const allowed = choice[3]!.replace(/"/g, "").split(/,\s*/).join(", ");
    return `invalid value "${given}" for ${flag}: allowed values are ${allowed}`;
  }
  const missing = /^Missing required arguments?: (.*)$/.exec(message.trim());
  if (missing) {
    const names = missing[1]!.split(/,\s*/);
    // Positionals are reported as "not enough arguments": these are all flags.
    const flags = names.map((n) => `--${n}`);
    return `missing required ${names.length > 1 ? "arguments" : "argument"} ${flags.join(", ")} (see --help)`;
  }
  const unknown = /^Unknown arguments?: (.*)$/.exec(message.trim());
  if (unknown) {
    const names = unknown[1]!.split(/,\s*/).map((n) => (n.length === 1 ? `-${n}` : n.startsWith("-") ? n : `--${n}`));
    return `unknown flag${names.length > 1 ? "s" : ""} ${names.join(", ")} (see --help for the flags this command takes)`;
  }
  const count = /^(Not enough|Too many) non-option arguments: got (\d+), (?:maximum of|need at least|minimum of) (\d+)/.exec(message.trim());
  if (count) return `${count[1] === "Too many" ? "too many" : "not enough"} arguments: got ${count[2]}, expected ${count[3]} (see --help)`;
  return message.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * Positional mistakes name the command's usage ("expected 1 (usage: kubectl mcsa describe <name>)").
 * yargs reports an extra positional as an unknown argument without its dashes, like a flag: the
 * words typed tell them apart.
 */
function withUsage(error: unknown, selected: string | undefined, words: string[]): unknown {
  const entry = COMMANDS.find((e) => selected !== undefined && namesOf(e).includes(selected));
  if (!(error instanceof UserError) || !entry) return error;
  const usage = `kubectl mcsa ${(Array.isArray(entry.command) ? entry.command[0]! : entry.command).replace(/^\S+/, selected!)}`;
  if (/^(not enough|too many) arguments/.test(error.message)) return new UserError(error.message.replace("(see --help)", `(usage: ${usage})`));
  const unknown = /^unknown flags? (.*) \(see --help/.exec(error.message);
  const extra = unknown?.[1]!.split(", ").map((f) => f.replace(/^--?/, "")).filter((w) => words.includes(w));
  if (extra?.length) return new UserError(`unexpected argument${extra.length > 1 ? "s" : ""} ${extra.map((w) => `"${w}"`).join(", ")} (usage: ${usage})`);
  return error;
}

/** Only the selected command's module is loaded; the others are listed by name and description. */
async function commandModules(argv: string[], env: CommandEnv): Promise<CommandModule<GlobalArgs, GlobalArgs>[]> {
  const selected = selectedCommand(argv);
  return Promise.all(
    COMMANDS.map(async (entry) => {
      const base = { command: entry.command, describe: entry.describe };
      const run = async (args: GlobalArgs) => {
        const implementation = await entry.load();
        await env.prepare?.();
        await implementation.handler(args, env);
      };
      if (selected !== undefined && namesOf(entry).includes(selected)) {
        const implementation = await entry.load();
        return { ...base, builder: implementation.builder, handler: run } as CommandModule<GlobalArgs, GlobalArgs>;
      }
      // Never selected by the parse (argv names another command); loads itself if it ever is.
      return { ...base, handler: run } as CommandModule<GlobalArgs, GlobalArgs>;
    }),
  );
}

export async function cli(argv: string[], env: CommandEnv = processEnv()): Promise<Argv<GlobalArgs>> {
  const commands = await commandModules(argv, env);
  return yargs(argv)
    .scriptName("kubectl mcsa")
    .usage(
      "kubectl mcsa: multicluster service accounts.\n" +
        "A pod in one cluster calls another cluster's API as an imported service account.\n\n" +
        "Usage: $0 <command> [flags]",
    )
    .option("kubeconfig", { type: "string", global: true, describe: "path to the kubeconfig file (default: the KUBECONFIG list, then ~/.kube/config)" })
    .option("context", { type: "string", global: true, describe: "the kubeconfig context to use" })
    .option("cluster", { type: "string", global: true, describe: "the kubeconfig cluster to use (import: the registered remote cluster)" })
    .option("user", { type: "string", global: true, describe: "the kubeconfig user to use" })
    .option("namespace", { alias: "n", type: "string", global: true, describe: "the namespace (default: the context's)" })
    .command(commands)
    .demandCommand(1, "name a command (kubectl mcsa --help lists them)")
    .strict()
    .help()
    .alias("help", "h")
    .version(false)
    .exitProcess(false)
    // At least 80 columns: examples are broken to fit in 80, and must not be wrapped again.
    .wrap(Math.max(80, Math.min(120, (env.out as { columns?: number }).columns || 100)))
    .epilog(
      examplesText([
        ["let cluster1 (where kubectl mcsa install ran) import from cluster2", "kubectl mcsa bootstrap --from cluster2 --to cluster1"],
        [
          "import cluster2's default/pod-lister into cluster1's default namespace",
          "kubectl mcsa import cluster2-default-pod-lister --context cluster1 -n default --cluster cluster2 --remote-namespace default --service-account pod-lister --remote-context cluster2 --wait",
        ],
        ["list the imports of every namespace", "kubectl mcsa get -A --context cluster1"],
      ]) + "\n\nUse \"kubectl mcsa <command> --help\" for more about a command.",
    )
    .fail((message, error) => {
      throw error ?? new UserError(oneLine(message));
    }) as Argv<GlobalArgs>;
}

export async function main(argv: string[], env: CommandEnv = processEnv()): Promise<number> {
  if (argv[0] === "__complete") {
    // Shell completion (Cobra's protocol, as kubectl calls plugins): never an error, at worst nothing.
    const { complete, formatCompletion, liveSources } = await import("./complete.ts");
    await env.prepare?.();
    const completion = await complete(argv.slice(1), liveSources(env)).catch(() => ({ candidates: [], directive: 4 }));
    env.out.write(formatCompletion(completion));
    return 0;
  }
  try {
    const words = normalizeArgv(argv);
    const selected = selectedCommand(words);
    if (selected !== undefined && !COMMAND_NAMES.includes(selected)) {
      const suggestion = suggestCommand(selected, COMMAND_NAMES);
      throw new UserError(
        `unknown command "${selected}" for "kubectl mcsa"` + (suggestion ? `: did you mean "${suggestion}"?` : ": kubectl mcsa --help lists the commands"),
      );
    }
    const parser = await cli(words, env);
    let output = "";
    try {
      await parser.parseAsync(words, {}, (_error, _argv, text) => {
        output = text;
      });
    } catch (error) {
      throw withUsage(error, selected, words);
    }
    if (output) println(env.out, output);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // One line, never a token, never a stack: what happened and what to do.
    println(env.err, `error: ${redactTokens(message).split("\n")[0]}`);
    if (process.env.MCSA_DEBUG && error instanceof Error && !(error instanceof UserError)) println(env.err, String(error.stack));
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
