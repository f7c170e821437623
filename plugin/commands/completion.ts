// kubectl mcsa completion SHELL: a completion script for bash, zsh or fish (for the kubectl-mcsa
// executable), or kubectl's plugin shim kubectl_complete-mcsa (for `kubectl mcsa <TAB>`).
import type { Argv } from "yargs";
import { UserError } from "../../common/errors.ts";
import { completionScript } from "../complete.ts";
import type { CommandEnv } from "../env.ts";
import { examplesText } from "../help.ts";
import type { GlobalArgs } from "../session.ts";

const SHELLS = ["bash", "zsh", "fish", "kubectl"];

interface Args extends GlobalArgs {
  shell?: string;
}

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y.positional("shell", { type: "string", describe: `one of ${SHELLS.join(", ")} (default: bash)` }).epilog(
    examplesText([
      ["complete kubectl-mcsa in bash: source <(kubectl mcsa completion bash)", "kubectl mcsa completion bash > ~/.kubectl-mcsa-completion.bash"],
      ["for kubectl mcsa <TAB>, kubectl runs kubectl_complete-mcsa (chmod +x it)", "kubectl mcsa completion kubectl > ~/.krew/bin/kubectl_complete-mcsa"],
      ["complete kubectl-mcsa in fish", "kubectl mcsa completion fish > ~/.config/fish/completions/kubectl-mcsa.fish"],
    ]),
  ) as Argv<Args>;
}

export function handler(args: Args, env: CommandEnv): void {
  const shell = args.shell ?? "bash";
  if (!SHELLS.includes(shell)) throw new UserError(`invalid shell "${shell}": allowed values are ${SHELLS.join(", ")}`);
  env.out.write(completionScript(shell));
}
