// Shell completion in Cobra's protocol, the one kubectl speaks to plugins: `kubectl mcsa <TAB>`
// runs `kubectl_complete-mcsa ARGS… PARTIAL`, which runs `kubectl mcsa __complete ARGS… PARTIAL`;
// the answer is one completion a line ("value\tdescription") and a last line ":<directive>".
// The bash, zsh and fish scripts of `kubectl mcsa completion SHELL` ask the same question.
import yargs from "yargs";
import { readKubeconfigs } from "../common/kube.ts";
import { COMMANDS, namesOf } from "./commands/index.ts";
import type { CommandEnv } from "./env.ts";
import { OUTPUT_FORMATS } from "./output.ts";
import type { GlobalArgs } from "./session.ts";

/** Cobra's ShellCompDirective bits. */
export const DIRECTIVE = { default: 0, noSpace: 2, noFileComp: 4 } as const;

export interface Candidate {
  value: string;
  description?: string;
}

export interface Completion {
  candidates: Candidate[];
  directive: number;
}

interface FlagInfo {
  name: string;
  alias?: string;
  description: string;
  boolean: boolean;
  choices?: string[];
}

const GLOBAL_FLAGS: FlagInfo[] = [
  { name: "kubeconfig", description: "path to the kubeconfig file", boolean: false },
  { name: "context", description: "the kubeconfig context to use", boolean: false },
  { name: "cluster", description: "the kubeconfig cluster to use", boolean: false },
  { name: "user", description: "the kubeconfig user to use", boolean: false },
  { name: "namespace", alias: "n", description: "the namespace", boolean: false },
  { name: "help", alias: "h", description: "help for the command", boolean: true },
];

/** The flags a command declares, read from its own yargs builder. */
export async function flagsOf(command: string): Promise<FlagInfo[]> {
  const entry = COMMANDS.find((e) => namesOf(e).includes(command));
  if (!entry) return GLOBAL_FLAGS;
  const implementation = await entry.load();
  // yargs' own record of the options (not in its typings).
  const parser = (implementation.builder ? implementation.builder(yargs([]) as never) : yargs([])) as unknown as {
    getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]>; boolean: string[]; choices: Record<string, string[]>; hiddenOptions?: string[] };
    getInternalMethods(): { getUsageInstance(): { getDescriptions(): Record<string, string | undefined> } };
  };
  const options = parser.getOptions();
  const descriptions = parser.getInternalMethods().getUsageInstance().getDescriptions();
  const positionals = new Set((Array.isArray(entry.command) ? entry.command : [entry.command]).flatMap((c) => [...c.matchAll(/[<[]([\w-]+)[\]>]/g)].map((m) => m[1]!)));
  const aliases = options.alias;
  const aliased = new Set(Object.values(aliases).flat());
  const hidden = new Set(options.hiddenOptions ?? []);
  const own = Object.keys(options.key)
    .filter((k) => !aliased.has(k) && !positionals.has(k) && !hidden.has(k) && k !== "help" && k !== "version" && !GLOBAL_FLAGS.some((g) => g.name === k))
    .map((name) => ({
      name,
      alias: aliases[name]?.find((a) => a.length === 1),
      description: (descriptions[name] ?? "").replace(/^__yargsString__:/, ""),
      boolean: options.boolean.includes(name),
      choices: options.choices[name],
    }));
  return [...GLOBAL_FLAGS, ...own];
}

/** The positional a command takes first, if it is an import's name. */
function takesImportName(command: string): boolean {
  return ["get", "list", "describe", "check", "rotate", "remove", "kubeconfig"].includes(command);
}

/** What the words before the partial one say: the command, the flags given, the positionals. */
export function parseWords(words: string[], flags: FlagInfo[]): { command?: string; values: Map<string, string>; positionals: string[]; pendingFlag?: FlagInfo } {
  const byName = new Map<string, FlagInfo>();
  for (const f of flags) {
    byName.set(`--${f.name}`, f);
    if (f.alias) byName.set(`-${f.alias}`, f);
  }
  const values = new Map<string, string>();
  const positionals: string[] = [];
  let command: string | undefined;
  let pendingFlag: FlagInfo | undefined;
  for (const word of words) {
    if (pendingFlag) {
      values.set(pendingFlag.name, word);
      pendingFlag = undefined;
    } else if (word.startsWith("-")) {
      const [flag, value] = word.split(/=(.*)/s, 2) as [string, string | undefined];
      const info = byName.get(flag) ?? byName.get(flag.replace(/^--no-/, "--"));
      if (!info) continue;
      if (value !== undefined) values.set(info.name, value);
      else if (!info.boolean) pendingFlag = info;
    } else if (command === undefined) command = word;
    else positionals.push(word);
  }
  return { command, values, positionals, pendingFlag };
}

export interface CompletionSources {
  contexts(args: GlobalArgs): string[];
  clusters(args: GlobalArgs): string[];
  users(args: GlobalArgs): string[];
  namespaces(args: GlobalArgs, context?: string): Promise<string[]>;
  imports(args: GlobalArgs): Promise<string[]>;
  registeredClusters(args: GlobalArgs): Promise<string[]>;
}

/** Sources from the kubeconfig kubectl would read and the cluster it names; any failure completes nothing. */
export function liveSources(env: CommandEnv): CompletionSources {
  const raw = (args: GlobalArgs) => readKubeconfigs({ kubeconfig: args.kubeconfig }).raw;
  const quietly = async (f: () => Promise<string[]>) => f().catch(() => []);
  return {
    contexts: (args) => raw(args).contexts.map((c) => c.name),
    clusters: (args) => raw(args).clusters.map((c) => c.name),
    users: (args) => raw(args).users.map((u) => u.name),
    namespaces: (args, context) => quietly(() => env.open(args, context).listNamespaces()),
    imports: (args) => quietly(async () => (await env.open(args).listImports(false)).map((i) => i.metadata.name!)),
    registeredClusters: (args) => quietly(async () => (await env.open({ ...args, cluster: undefined }).listRegistrations()).map((r) => r.clusterName)),
  };
}

const matching = (partial: string, values: Candidate[]): Candidate[] => values.filter((c) => c.value.startsWith(partial));
const plain = (values: string[]): Candidate[] => values.map((value) => ({ value }));

export async function complete(args: string[], sources: CompletionSources): Promise<Completion> {
  const partial = args.at(-1) ?? "";
  const before = args.slice(0, -1);
  const first = parseWords(before, GLOBAL_FLAGS);
  const flags = first.command ? await flagsOf(first.command) : GLOBAL_FLAGS;
  const { command, values, positionals, pendingFlag } = parseWords(before, flags);
  const global: GlobalArgs = {
    kubeconfig: values.get("kubeconfig"),
    context: values.get("context"),
    namespace: values.get("namespace"),
    user: values.get("user"),
    ...(command === "import" ? {} : { cluster: values.get("cluster") }),
  };
  const done = (candidates: Candidate[], directive: number = DIRECTIVE.noFileComp): Completion => ({ candidates: matching(partial, candidates), directive });

  // A flag's value: after "--flag " or in "--flag=".
  const glued = /^(--?[\w-]+)=(.*)$/s.exec(partial);
  const valueOf = pendingFlag ?? (glued ? flags.find((f) => `--${f.name}` === glued[1] || `-${f.alias}` === glued[1]) : undefined);
  if (valueOf) {
    const prefix = glued ? `${glued[1]}=` : "";
    const values_ = await flagValues(valueOf, command, global, values, sources);
    if (values_ === "files") return { candidates: [], directive: DIRECTIVE.default };
    const text = glued ? glued[2]! : partial;
    const candidates = values_.filter((c) => c.value.startsWith(text)).map((c) => ({ ...c, value: prefix + c.value }));
    // "jsonpath=" goes on with a template: no space after it.
    return { candidates, directive: DIRECTIVE.noFileComp | (candidates.some((c) => c.value.endsWith("=")) ? DIRECTIVE.noSpace : 0) };
  }
  if (partial.startsWith("-")) {
    return done(
      flags.flatMap((f) => [{ value: `--${f.name}`, description: f.description }, ...(f.alias && partial.length <= 2 && !partial.startsWith("--") ? [{ value: `-${f.alias}`, description: f.description }] : [])]),
    );
  }
  if (command === undefined) {
    return done(COMMANDS.flatMap((e) => namesOf(e).slice(0, 1).map((value) => ({ value, description: e.describe }))));
  }
  if (command === "completion" && positionals.length === 0) return done(plain(["bash", "zsh", "fish", "kubectl"]));
  if (takesImportName(command) && positionals.length === 0) return done(plain(await sources.imports(global)));
  return done([]);
}

async function flagValues(flag: FlagInfo, command: string | undefined, global: GlobalArgs, values: Map<string, string>, sources: CompletionSources): Promise<Candidate[] | "files"> {
  if (flag.choices) return plain(flag.choices);
  switch (flag.name) {
    case "kubeconfig":
    case "webhook-ca-file":
      return "files";
    case "context":
    case "from":
    case "to":
    case "remote-context":
      return plain(sources.contexts(global));
    case "user":
      return plain(sources.users(global));
    case "cluster":
      return plain(command === "import" ? await sources.registeredClusters(global) : sources.clusters(global));
    case "namespace":
      return plain(await sources.namespaces({ ...global, namespace: undefined }));
    case "remote-namespace": {
      const remote = values.get("remote-context");
      return remote ? plain(await sources.namespaces(global, remote)) : [];
    }
    case "output":
      return plain(command === "get" || command === "list" || command === "clusters" ? OUTPUT_FORMATS.map((f) => (f === "jsonpath" || f === "custom-columns" ? `${f}=` : f)) : ["yaml", "json"]);
    case "dry-run":
      return plain(["none", "client"]);
    default:
      return [];
  }
}

export function formatCompletion(completion: Completion): string {
  return [...completion.candidates.map((c) => (c.description ? `${c.value}\t${c.description}` : c.value)), `:${completion.directive}`].join("\n") + "\n";
}

/** The scripts of `kubectl mcsa completion SHELL`, for the kubectl-mcsa executable (and kubectl's shim). */
export function completionScript(shell: string): string {
  switch (shell) {
    case "bash":
      return `# bash completion for kubectl-mcsa: source <(kubectl-mcsa completion bash)
_kubectl_mcsa() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" out line
  out=$(kubectl-mcsa __complete "\${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
  COMPREPLY=()
  while IFS= read -r line; do
    case "$line" in :*) ;; *) COMPREPLY+=("\${line%%$'\\t'*}") ;; esac
  done <<<"$out"
  case "\${out##*:}" in 0) [ \${#COMPREPLY[@]} -eq 0 ] && compopt -o default ;; esac
}
complete -F _kubectl_mcsa kubectl-mcsa
`;
    case "zsh":
      return `#compdef kubectl-mcsa
# zsh completion for kubectl-mcsa: source <(kubectl-mcsa completion zsh), after compinit
_kubectl_mcsa() {
  local -a lines candidates
  local line
  lines=("\${(@f)$(kubectl-mcsa __complete "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null)}")
  for line in "\${(@)lines}"; do
    [[ $line == :* ]] && continue
    local value=\${line%%$'\\t'*} description=\${line#*$'\\t'}
    value=\${value//:/\\\\:}
    if [[ $line == *$'\\t'* ]]; then candidates+=("$value:$description"); else candidates+=("$value"); fi
  done
  if (( \${#candidates} )); then _describe -t commands 'kubectl-mcsa' candidates; else _files; fi
}
compdef _kubectl_mcsa kubectl-mcsa
`;
    case "fish":
      return `# fish completion for kubectl-mcsa: kubectl-mcsa completion fish | source
function __kubectl_mcsa_complete
    set -l words (commandline -opc)
    set -e words[1]
    kubectl-mcsa __complete $words (commandline -ct) 2>/dev/null | string match -v -r '^:'
end
complete -c kubectl-mcsa -f -a '(__kubectl_mcsa_complete)'
`;
    case "kubectl":
      return `#!/usr/bin/env sh
# kubectl_complete-mcsa: kubectl runs this executable (found on PATH) to complete \`kubectl mcsa <TAB>\`.
exec kubectl mcsa __complete "$@"
`;
    default:
      throw new Error(`unknown shell "${shell}"`);
  }
}
