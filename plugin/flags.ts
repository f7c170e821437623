// Flag values every command reads the same way, each error one line that names the flag.
import { parseDuration } from "../common/duration.ts";
import { UserError } from "../common/errors.ts";
import type { Output } from "./env.ts";
import { println } from "./env.ts";

/** Seconds of a Go-style duration flag (--timeout 30s, --ttl 1h). */
export function durationFlag(value: string, flag: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new UserError(`invalid value "${value}" for ${flag}: ${(error as Error).message.replace(/^invalid duration "[^"]*": /, "")} (e.g. 30s, 10m, 1h)`);
  }
}

export const DRY_RUN_VALUES = ["none", "client", "server"] as const;

/**
 * kubectl's --dry-run: "client" prints what would be created, "none" (or no flag) acts; a bare
 * --dry-run means client, with kubectl's own warning. Server-side dry run is not offered: the
 * plugin's commands create objects in two clusters, which no single API server can rehearse.
 */
export function dryRunFlag(value: string | undefined, err: Output): "none" | "client" {
  if (value === undefined || value === "none") return "none";
  if (value === "" || value === "true") {
    println(err, "warning: --dry-run is deprecated and can be replaced with --dry-run=client.");
    return "client";
  }
  if (value === "client") return "client";
  if (value === "server") throw new UserError('--dry-run=server is not supported by kubectl mcsa: use --dry-run=client to print the objects');
  throw new UserError(`invalid value "${value}" for --dry-run: allowed values are none, client (server is not supported)`);
}

/** -o of the commands that print manifests with --dry-run=client. */
export function manifestFormat(output: string | undefined, dryRun: "none" | "client"): "yaml" | "json" | undefined {
  if (output === undefined) return undefined;
  const format = output.replace(/^=/, "");
  if (format !== "yaml" && format !== "json") throw new UserError(`invalid value "${output}" for -o/--output: allowed values are yaml, json (with --dry-run=client)`);
  if (dryRun !== "client") throw new UserError("-o/--output goes with --dry-run=client: add --dry-run=client to print the objects instead of creating them");
  return format;
}
