import type { Argv } from "yargs";
import { type CommandEnv, println } from "../env.ts";
import { examplesText } from "../help.ts";
import { VERSION_STRING } from "../version.ts";

export function builder<T>(y: Argv<T>): Argv<T> {
  return y.epilog(examplesText([["the plugin's version (its images and krew manifest carry the same)", "kubectl mcsa version"]]));
}

export function handler(_args: unknown, env: CommandEnv): void {
  println(env.out, `kubectl-mcsa ${VERSION_STRING}`);
}
