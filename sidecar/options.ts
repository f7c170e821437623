// The sidecar's command line. Pure: argv in, options or one clear error out. The checks that
// need the file system (do the directories exist?) take a probe, so they stay testable.

import { parseArgs } from "node:util";
import { parseProxyAllow, PROXY_STREAMS, SIDECAR_HEALTH_PORT, type ProxyStream } from "../common/api.ts";
import { type ImportPort, parseImportArg } from "../common/import-arg.ts";
import { parseLevel, type Level } from "../common/log.ts";

export type ImportOption = ImportPort;

export interface SidecarOptions {
  /** Each import's Secret is mounted at `<secretsDir>/<import>/`. */
  secretsDir: string;
  /** Files for app containers: `<outputDir>/serviceaccountimports/<import>/…` and `<outputDir>/kubeconfig`. */
  outputDir: string;
  healthPort: number;
  /** 0.0.0.0 by default: kubelet probes the pod IP. */
  healthAddress: string;
  /** Where the proxies listen: loopback only, unless told otherwise. */
  proxyAddress: string;
  /** Streaming subresources the proxies pass; none by default. */
  proxyAllow: ProxyStream[];
  imports: ImportOption[];
  /** Quiet time after a file event before the Secret is re-read (kubelet's swap is several events). */
  debounceMs: number;
  /** Whether app containers get each import's token as a file; false: proxy-only (--no-app-token). */
  appToken: boolean;
  /** Periodic re-read of every Secret, in case a file event is missed. */
  resyncMs: number;
  logLevel: Level;
}

export class OptionsError extends Error {}

export const USAGE = `Usage: mcsa-sidecar --secrets-dir=DIR --output-dir=DIR --import=NAME=PORT [--import=NAME=PORT...]
  --secrets-dir=DIR       where each import's Secret is mounted, as DIR/<import>/ (required)
  --output-dir=DIR        where to write the files for app containers (required)
  --import=NAME=PORT      an import and the loopback port of its proxy (repeat, at least one)
  --health-port=PORT      /healthz, /readyz and /metrics (default ${SIDECAR_HEALTH_PORT})
  --health-address=ADDR   address of the health port (default 0.0.0.0, for kubelet probes)
  --proxy-address=ADDR    address of the proxies (default 127.0.0.1)
  --no-app-token          write no token file for app containers: they use the proxies only
  --proxy-allow=LIST      streams the proxies pass: ${PROXY_STREAMS.join(",")} (default none)
  --debounce=MS           quiet time after a Secret file event before re-reading (default 100)
  --resync=SECONDS        periodic re-read of every Secret (default 30)
  --log-level=LEVEL       debug, info, warn or error (default info)
  -h, --help              this help`;

function port(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new OptionsError(`${flag}: ${JSON.stringify(value)} is not a port number`);
  const n = Number(value);
  if (n < 1 || n > 65535) throw new OptionsError(`${flag}: port ${n} is out of range 1-65535`);
  return n;
}

function positiveInt(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new OptionsError(`${flag}: ${JSON.stringify(value)} must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

function address(flag: string, value: string): string {
  // An IP literal: a name would need DNS, and "localhost" may resolve to a non-loopback address.
  if (!/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/.test(value)) {
    throw new OptionsError(`${flag}: ${JSON.stringify(value)} is not an IP address`);
  }
  return value;
}

function importOption(value: string): ImportOption {
  try {
    return parseImportArg(value);
  } catch (error) {
    throw new OptionsError((error as Error).message);
  }
}

/** Options from argv (without node and the script); throws OptionsError with a one-line message. */
export function parseOptions(argv: readonly string[]): SidecarOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        "secrets-dir": { type: "string" },
        "output-dir": { type: "string" },
        import: { type: "string", multiple: true },
        "health-port": { type: "string" },
        "health-address": { type: "string" },
        "proxy-address": { type: "string" },
        "no-app-token": { type: "boolean" },
        "proxy-allow": { type: "string" },
        debounce: { type: "string" },
        resync: { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    // parseArgs' messages are one line already, e.g. "Unknown option '--foo'".
    throw new OptionsError((error as Error).message.split("\n")[0] ?? String(error));
  }
  if (values.help) return "help";
  const secretsDir = values["secrets-dir"];
  const outputDir = values["output-dir"];
  if (!secretsDir) throw new OptionsError("--secrets-dir is required");
  if (!outputDir) throw new OptionsError("--output-dir is required");
  const imports = (values.import ?? []).map(importOption);
  if (imports.length === 0) throw new OptionsError("at least one --import=NAME=PORT is required");
  const healthPort = values["health-port"] === undefined ? SIDECAR_HEALTH_PORT : port("--health-port", values["health-port"]);

  const names = new Set<string>();
  const ports = new Map<number, string>([[healthPort, "--health-port"]]);
  for (const i of imports) {
    if (names.has(i.name)) throw new OptionsError(`--import: import ${JSON.stringify(i.name)} is listed twice`);
    names.add(i.name);
    const other = ports.get(i.port);
    if (other !== undefined) throw new OptionsError(`--import=${i.name}=${i.port}: port ${i.port} is already taken by ${other}`);
    ports.set(i.port, `--import=${i.name}`);
  }
  let logLevel: Level;
  try {
    logLevel = parseLevel(values["log-level"]);
  } catch (error) {
    throw new OptionsError((error as Error).message);
  }
  const proxyAllow = parseProxyAllow(values["proxy-allow"] ?? "");
  if ("error" in proxyAllow) throw new OptionsError(`--proxy-allow: ${proxyAllow.error}`);
  return {
    secretsDir,
    outputDir,
    healthPort,
    healthAddress: address("--health-address", values["health-address"] ?? "0.0.0.0"),
    proxyAddress: address("--proxy-address", values["proxy-address"] ?? "127.0.0.1"),
    proxyAllow,
    imports,
    appToken: values["no-app-token"] !== true,
    debounceMs: values.debounce === undefined ? 100 : positiveInt("--debounce", values.debounce, 0, 60_000),
    resyncMs: (values.resync === undefined ? 30 : positiveInt("--resync", values.resync, 1, 86_400)) * 1000,
    logLevel,
  };
}

export type DirProbe = (path: string) => "dir" | "missing" | "other";

/**
 * Problems with the directories, one line each: the output directory must exist (it is the
 * pod's volume) and so must each import's Secret directory (kubelet mounts it before we start).
 */
export function checkDirs(options: SidecarOptions, probe: DirProbe): string[] {
  const problems: string[] = [];
  const check = (what: string, path: string) => {
    const kind = probe(path);
    if (kind === "missing") problems.push(`${what} ${path} does not exist`);
    else if (kind === "other") problems.push(`${what} ${path} is not a directory`);
  };
  check("--output-dir", options.outputDir);
  check("--secrets-dir", options.secretsDir);
  if (probe(options.secretsDir) === "dir") {
    for (const i of options.imports) check(`the Secret directory of import ${JSON.stringify(i.name)},`, `${options.secretsDir}/${i.name}`);
  }
  return problems;
}
