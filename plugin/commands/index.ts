// The commands, as the top-level help and completion need them: names and descriptions only.
// A command's module (and what it loads, like @kubernetes/client-node) is imported only when that
// command runs: \`kubectl mcsa --help\` and shell completion start fast.
import type { Argv } from "yargs";
import type { CommandEnv } from "../env.ts";
import type { GlobalArgs } from "../session.ts";

export interface CommandImplementation {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  builder?: (y: Argv<GlobalArgs>) => Argv<any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handler: (args: any, env: CommandEnv) => void | Promise<void>;
}

export interface CommandEntry {
  command: string | string[];
  describe: string;
  load: () => Promise<CommandImplementation>;
}

export const COMMANDS: CommandEntry[] = [
  { command: "bootstrap", describe: "Let the controller of one cluster (--to) import from another (--from)", load: () => import("./bootstrap.ts") },
  { command: "unbootstrap", describe: "Undo bootstrap: revoke the importing cluster's identity and grants in the remote cluster", load: () => import("./unbootstrap.ts") },
  { command: "clusters", describe: "List the remote clusters registered here, and the imports and pods that depend on each", load: () => import("./clusters.ts") },
  { command: "import <name>", describe: "Import a service account of a remote cluster into a namespace", load: () => import("./import.ts") },
  { command: ["get [name]", "list"], describe: "List service account imports, or show one", load: () => import("./get.ts") },
  { command: "describe <name>", describe: "Show an import in detail: status, token expiry, pods that use it, events", load: () => import("./describe.ts") },
  { command: "check <name>", describe: "Check an import against the remote cluster: who its token is, and what it may do", load: () => import("./check.ts") },
  { command: "rotate <name>", describe: "Issue a new token for an import now (the previous one stays valid until it expires)", load: () => import("./rotate.ts") },
  { command: "remove <name>", describe: "Remove an import: revoke its remote tokens, then delete it and its Secret", load: () => import("./remove.ts") },
  { command: "kubeconfig <name>", describe: "Print a ready kubeconfig for an import (it contains the current token)", load: () => import("./kubeconfig.ts") },
  { command: "export <service-account>", describe: "Print a Secret manifest with a short-lived token of a service account of this cluster", load: () => import("./export.ts") },
  { command: "install", describe: "Install the ServiceAccountImport API, the controller and the sidecar-injecting webhook in a cluster", load: () => import("./install.ts") },
  { command: "uninstall", describe: "Remove what install created: the webhook first, then the imports (their tokens revoked), the controller and the API", load: async () => (await import("./install.ts")).uninstall },
  { command: "completion [shell]", describe: "Print a shell completion script: bash, zsh, fish, or kubectl (the kubectl_complete-mcsa shim)", load: () => import("./completion.ts") },
  { command: "version", describe: "Print the version of kubectl mcsa", load: () => import("./version.ts") },
];

/** The words that select an entry: each form's first word ("get", "list"). */
export function namesOf(entry: CommandEntry): string[] {
  return (Array.isArray(entry.command) ? entry.command : [entry.command]).map((c) => c.split(" ")[0]!);
}
