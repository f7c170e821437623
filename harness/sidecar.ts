// Running the sidecar as a child process in e2e tests and the benchmark: start, wait until
// ready, talk to its ports, stop. Every wait is bounded and says what it waited for.

import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { importKubeconfig, renderKubeconfig } from "../common/kubeconfig.ts";

export const SIDECAR_MAIN = resolve(import.meta.dirname, "../sidecar/main.ts");

import { waitFor } from "./wait.ts";

export { waitFor };

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One plain-HTTP request to a loopback port; rejects on network errors and after timeoutMs. */
export function httpCall(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpReply> {
  return new Promise((done, fail) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers, timeout: options.timeoutMs ?? 10_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", fail);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${options.method ?? "GET"} ${path} on port ${port} timed out`)));
    req.on("error", fail);
    req.end(options.body);
  });
}

/** The files of an import Secret volume (what the controller puts in the Secret). */
export function importSecretFiles(input: { name: string; token: string; caPem: string; server: string; namespace: string }): Record<string, string> {
  return {
    token: input.token,
    "ca.crt": input.caPem,
    namespace: input.namespace,
    server: input.server,
    config: renderKubeconfig(
      importKubeconfig({ name: input.name, server: input.server, caData: input.caPem, namespace: input.namespace, token: input.token }),
    ),
  };
}

export interface RunningSidecar {
  child: ChildProcess;
  /** Every line the sidecar wrote to stdout and stderr. */
  logs: string[];
  healthPort: number;
  stop(): Promise<number | null>;
}

/** Starts `node sidecar/main.ts args` and waits until /readyz answers 200. */
export async function startSidecar(
  args: string[],
  healthPort: number,
  /** command: an executable to run instead of `node sidecar/main.ts` (a bundle, run by its hashbang). */
  options: { readyTimeoutMs?: number; waitReady?: boolean; command?: string } = {},
): Promise<RunningSidecar> {
  const [file, fileArgs] = options.command ? [options.command, args] : [process.execPath, [SIDECAR_MAIN, ...args]];
  const child = spawn(file, fileArgs, { stdio: ["ignore", "pipe", "pipe"] });
  const logs: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      logs.push(...lines);
    });
  }
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timeout = delay(10_000).then(() => "timeout" as const);
    const result = await Promise.race([exited, timeout]);
    if (result === "timeout") {
      child.kill("SIGKILL");
      throw new Error(`the sidecar did not stop within 10 s of SIGTERM; last logs:\n${logs.slice(-10).join("\n")}`);
    }
    return result;
  };
  const running: RunningSidecar = { child, logs, healthPort, stop };
  if (options.waitReady === false) return running;
  try {
    await waitFor(
      `the sidecar's /readyz on port ${healthPort}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the sidecar exited with code ${child.exitCode}: ${logs.slice(-5).join(" | ")}`);
        return (await httpCall(healthPort, "/readyz", { timeoutMs: 1_000 })).status === 200;
      },
      options.readyTimeoutMs ?? 20_000,
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw new Error(`${(error as Error).message}; sidecar logs:\n${logs.slice(-10).join("\n")}`, { cause: error });
  }
  return running;
}
