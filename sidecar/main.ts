#!/usr/bin/env -S node --max-semi-space-size=1
// (The hashbang is what the image runs, as the bundle keeps it: a 1 MiB young generation keeps
// garbage Buffers from piling up under load, see docs/benchmarks.md "Sidecar proxy".)
//
// mcsa-sidecar: keeps each import's token files and kubeconfigs fresh for the app containers of
// its pod and serves a local authenticating proxy per import. See docs/sidecar.md.
//
//   node sidecar/main.ts --secrets-dir=/etc/mcsa/secrets --output-dir=/var/run/secrets/admiralty.io \
//     --health-port=17000 --import=cluster2-pod-lister=17001

import { statSync } from "node:fs";
import { createLogger } from "../common/log.ts";
import { checkDirs, OptionsError, parseOptions, USAGE, type DirProbe } from "./options.ts";
import { Sidecar } from "./sidecar.ts";

const probe: DirProbe = (path) => {
  try {
    return statSync(path).isDirectory() ? "dir" : "other";
  } catch {
    return "missing";
  }
};

/** Runs until SIGTERM or SIGINT; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof OptionsError)) throw error;
    process.stderr.write(`mcsa-sidecar: ${error.message} (see --help)\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const problems = checkDirs(options, probe);
  if (problems.length > 0) {
    process.stderr.write(`mcsa-sidecar: ${problems.join("; ")}\n`);
    return 2;
  }
  const log = createLogger("mcsa-sidecar", { level: options.logLevel });
  const sidecar = new Sidecar(options, log);
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  try {
    await sidecar.start();
  } catch (error) {
    log.error("could not start", { error: (error as Error).message });
    await sidecar.stop().catch(() => undefined);
    return 1;
  }
  const signal = await stopped;
  log.info("stopping", { signal });
  await sidecar.stop();
  log.info("stopped");
  return 0;
}

if (import.meta.main) {
  // Exit even if a stray handle (a half-closed socket) would keep the event loop alive. No
  // top-level await: the module stays bundleable to CommonJS (see docs/sidecar.md, memory).
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
