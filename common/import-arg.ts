// The sidecar's `--import=NAME=PORT` argument: the webhook writes it, the sidecar (and the webhook,
// reading a sidecar it injected earlier) parses it. One pair of functions, so both ends agree.
import { validateDnsSubdomain } from "./names.ts";

export interface ImportPort {
  /** The ServiceAccountImport's name. */
  name: string;
  /** Loopback port of the import's proxy. */
  port: number;
}

const PREFIX = "--import=";

export function formatImportArg(i: ImportPort): string {
  return `${PREFIX}${i.name}=${i.port}`;
}

/** The value of one --import (NAME=PORT); throws an Error whose one-line message says what is wrong. */
export function parseImportArg(value: string): ImportPort {
  const flag = `${PREFIX}${value}`;
  const eq = value.lastIndexOf("=");
  if (eq <= 0) throw new Error(`${flag}: expected NAME=PORT, e.g. --import=cluster2-pod-lister=17001`);
  const name = value.slice(0, eq);
  const invalid = validateDnsSubdomain(name);
  if (invalid !== undefined) throw new Error(`${flag}: ${JSON.stringify(name)} is not a valid import name: ${invalid}`);
  const port = value.slice(eq + 1);
  if (!/^\d+$/.test(port)) throw new Error(`${flag}: ${JSON.stringify(port)} is not a port number`);
  if (Number(port) < 1 || Number(port) > 65535) throw new Error(`${flag}: port ${Number(port)} is out of range 1-65535`);
  return { name, port: Number(port) };
}

/** The valid --import arguments among a container's args (others are skipped). */
export function importArgsOf(args: readonly string[] | undefined): ImportPort[] {
  const out: ImportPort[] = [];
  for (const arg of args ?? []) {
    if (!arg.startsWith(PREFIX)) continue;
    try {
      out.push(parseImportArg(arg.slice(PREFIX.length)));
    } catch {
      // Not one we wrote: nothing of ours to replace.
    }
  }
  return out;
}
