import { type CommandEnv, println } from "../env.ts";
import { VERSION_STRING } from "../version.ts";

export function handler(_args: unknown, env: CommandEnv): void {
  println(env.out, `kubectl-mcsa ${VERSION_STRING}`);
}
