// The sidecar: for each import, follow its Secret volume, write its files and feed its proxy;
// write the merged kubeconfig; serve health, readiness and metrics. Start and stop as a whole.

import type { Server } from "node:http";
import { tokenExpiry, type ImportSecretContents } from "../common/import-secret.ts";
import type { Logger } from "../common/log.ts";
import { createHealthServer, readiness, type ReadinessReport } from "./health.ts";
import { SidecarMetrics } from "./metrics.ts";
import type { SidecarOptions } from "./options.ts";
import { atomicWrite, removeStaleVersions } from "./kubelet-layout.ts";
import { FILE_MODE, FileWriter, IMPORTS_SUBDIR, importDir, importPayload, planImportFiles, planMergedKubeconfig, removeStaleTemps, unwantedFiles, type ImportOutput } from "./output.ts";
import { proxyUrl } from "../common/kubeconfig.ts";
import { ImportProxy } from "./proxy.ts";
import { watchSecretDir, type ReadCause, type SecretWatcher } from "./secret-watch.ts";
import { join } from "node:path";

interface ImportState {
  name: string;
  proxy: ImportProxy;
  watcher: SecretWatcher | undefined;
  contents: ImportSecretContents | undefined;
  expiry: Date | undefined;
  filesWritten: boolean;
  lastError: string | undefined;
  expiredLogged: boolean;
}

/** How long stop() lets requests under way finish (kubelet's default grace period is 30 s). */
export const DRAIN_MS = 10_000;

export class Sidecar {
  readonly metrics = new SidecarMetrics();
  readonly #options: SidecarOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #writer = new FileWriter();
  readonly #imports: ImportState[];
  #health: Server | undefined;
  #mergedWritten = false;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(options: SidecarOptions, logger: Logger, now: () => number = Date.now) {
    this.#options = options;
    this.#log = logger;
    this.#now = now;
    this.#imports = options.imports.map((i) => ({
      name: i.name,
      proxy: new ImportProxy({ name: i.name, port: i.port, address: options.proxyAddress, allow: options.proxyAllow, metrics: this.metrics, logger, now }),
      watcher: undefined,
      contents: undefined,
      expiry: undefined,
      filesWritten: false,
      lastError: undefined,
      expiredLogged: false,
    }));
    for (const i of this.#imports) this.metrics.initImport(i.name);
  }

  /** The proxies' actual ports (differ from the options' only when those say 0). */
  get proxies(): { name: string; port: number }[] {
    return this.#imports.map((i) => ({ name: i.name, port: i.proxy.port }));
  }

  get healthPort(): number {
    const address = this.#health?.address();
    return typeof address === "object" && address ? address.port : this.#options.healthPort;
  }

  readiness(): ReadinessReport {
    return readiness(
      this.#imports.map((i) => ({
        name: i.name,
        hasToken: i.contents !== undefined,
        expiry: i.expiry,
        filesWritten: i.filesWritten,
        lastError: i.lastError,
      })),
      this.#mergedWritten,
      this.#now(),
    );
  }

  async start(): Promise<void> {
    const o = this.#options;
    await removeStaleTemps(o.outputDir);
    await removeStaleTemps(join(o.outputDir, IMPORTS_SUBDIR));
    for (const i of this.#imports) {
      await removeStaleTemps(importDir(o.outputDir, i.name));
      await removeStaleVersions(importDir(o.outputDir, i.name));
    }
    // Listen first: a port taken is a configuration error to report before anything else.
    for (const i of this.#imports) {
      await i.proxy.listen().catch((error: Error) => {
        throw new Error(`import ${i.name}: cannot listen on ${o.proxyAddress}:${i.proxy.port}: ${error.message}`);
      });
    }
    const health = createHealthServer({
      address: o.healthAddress,
      port: o.healthPort,
      readiness: () => this.readiness(),
      metrics: () => this.metrics.render(),
    });
    await new Promise<void>((resolve, reject) => {
      health.once("error", (error) => reject(new Error(`cannot listen on ${o.healthAddress}:${o.healthPort} (health port): ${error.message}`)));
      health.listen(o.healthPort, o.healthAddress, () => resolve());
    });
    this.#health = health;
    for (const i of this.#imports) {
      i.watcher = watchSecretDir(
        join(o.secretsDir, i.name),
        { debounceMs: o.debounceMs, resyncMs: o.resyncMs },
        {
          onContents: (contents, cause) => this.#apply(i, contents, cause),
          onError: (error, cause) => this.#failed(i, error, cause),
        },
      );
    }
    await Promise.all(this.#imports.map((i) => i.watcher?.ready));
    this.#expiryTimer = setInterval(() => this.#checkExpiry(), Math.min(o.resyncMs, 10_000));
    this.#expiryTimer.unref();
    this.#checkExpiry();
    this.#log.info("sidecar started", {
      imports: this.proxies.map((p) => `${p.name}=${o.proxyAddress}:${p.port}`),
      health: `${o.healthAddress}:${this.healthPort}`,
      outputDir: o.outputDir,
      ready: this.readiness().ready,
    });
  }

  /**
   * Stops accepting, lets requests under way finish for up to drainMs (bounded: a watch would
   * never end by itself), then closes everything. In a pod, SIGTERM reaches a native sidecar after
   * the app containers have exited, so there is rarely anything left to drain.
   */
  async stop(drainMs = DRAIN_MS): Promise<void> {
    clearInterval(this.#expiryTimer);
    await Promise.all(this.#imports.map((i) => i.watcher?.close()));
    const cut = await Promise.all(this.#imports.map((i) => i.proxy.close(drainMs)));
    const unfinished = cut.reduce((a, b) => a + b, 0);
    if (unfinished > 0) this.#log.warn("requests still running after the drain were cut", { requests: unfinished, drainMs });
    const health = this.#health;
    if (health) {
      await new Promise<void>((resolve) => {
        health.close(() => resolve());
        health.closeAllConnections();
      });
    }
  }

  async #apply(i: ImportState, contents: ImportSecretContents, cause: ReadCause): Promise<void> {
    const expiry = tokenExpiry(contents.token);
    // The proxy first: it only needs memory, and the old token may be about to expire.
    i.proxy.setCredentials({ token: contents.token, expiry, server: contents.server, caPem: contents.caPem });
    i.contents = contents;
    i.expiry = expiry;
    // Readiness holds while the new files are written: the set is switched whole, so apps read
    // the old (still valid) credentials or the new ones, never a mix of the two.
    const output = this.#output(i);
    for (const path of unwantedFiles(this.#options.outputDir, i.name, output)) await this.#writer.remove(path);
    const payload = importPayload(planImportFiles(this.#options.outputDir, i.name, contents, output));
    const written = await atomicWrite(importDir(this.#options.outputDir, i.name), payload, { mode: FILE_MODE });
    await this.#writeMerged();
    i.filesWritten = true;
    i.lastError = undefined;
    i.expiredLogged = false;
    this.metrics.refreshes.inc({ import: i.name });
    if (expiry) this.metrics.tokenExpiry.set({ import: i.name }, Math.floor(expiry.getTime() / 1000));
    else this.metrics.tokenExpiry.delete({ import: i.name });
    this.#updateReadyGauge();
    this.#log.info("import credentials updated", {
      import: i.name,
      cause,
      server: contents.server,
      namespace: contents.namespace,
      expires: expiry?.toISOString(),
      filesWritten: written,
    });
  }

  /** What app containers get for an import: its proxy's URL, and the token file unless proxy-only. */
  #output(i: ImportState): ImportOutput {
    return { proxyUrl: proxyUrl(this.#options.proxyAddress, i.proxy.port), appToken: this.#options.appToken };
  }

  async #writeMerged(): Promise<void> {
    // Only once every import has contents: app containers start when all are ready anyway.
    if (this.#imports.some((i) => i.contents === undefined)) return;
    const entries = this.#imports.map((i) => ({ name: i.name, namespace: i.contents?.namespace ?? "", proxyUrl: this.#output(i).proxyUrl }));
    await this.#writer.write(planMergedKubeconfig(this.#options.outputDir, entries));
    this.#mergedWritten = true;
  }

  #failed(i: ImportState, error: Error, cause: ReadCause): void {
    i.lastError = error.message;
    this.metrics.refreshFailures.inc({ import: i.name });
    this.#updateReadyGauge();
    // Messages from parseImportSecret never quote the token; the logger redacts tokens anyway.
    this.#log.warn(i.contents ? "import Secret unusable, keeping the last good credentials" : "import Secret unusable", {
      import: i.name,
      cause,
      error: error.message,
    });
  }

  #checkExpiry(): void {
    const now = this.#now();
    for (const i of this.#imports) {
      if (i.expiry && i.expiry.getTime() <= now && !i.expiredLogged) {
        i.expiredLogged = true;
        this.#log.error("token expired and no new one has arrived: the proxy answers 503 until it does", {
          import: i.name,
          expired: i.expiry.toISOString(),
        });
      }
    }
    this.#updateReadyGauge();
  }

  #updateReadyGauge(): void {
    const now = this.#now();
    for (const i of this.#imports) {
      const ok = i.contents !== undefined && i.filesWritten && !(i.expiry && i.expiry.getTime() <= now);
      this.metrics.ready.set({ import: i.name }, ok ? 1 : 0);
    }
  }
}
