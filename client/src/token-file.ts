// A bearer token read from a file and read again when the file changes: what client-go does for
// a kubeconfig's `tokenFile` and for in-cluster config, which @kubernetes/client-node does not
// (it ignores `tokenFile`, and reads its own `token-file` key once, at load).
//
// When to read again: client-go re-reads every minute, and after a 401. client-node's
// Authenticator sees requests, never responses, so there is no 401 to react to; instead, every
// request stats the file (a few microseconds) and reads it again if it is another file than the
// one read last (device, inode, size, change time). The kubelet's Secret volumes and the mcsa
// sidecar both replace token files by rename, so a new token is used from the next request on,
// not up to a minute later. A periodic read (default every 60 s) covers writes in place.
// A failed read keeps the last good token, as client-go does: the file may be mid-swap.

import { stat, readFile } from "node:fs/promises";
import type { KubeConfig, User } from "@kubernetes/client-node";
import { ClientConfigError, whyUnreadable } from "./errors.ts";

/** client-node's Authenticator interface (not exported by name from its index). */
export type Authenticator = Parameters<KubeConfig["addAuthenticator"]>[0];
type RequestOptions = Parameters<Authenticator["applyAuthentication"]>[1];

export interface TokenFileOptions {
  /** Read the file again at least this often, changed or not (default 60 000 ms, as client-go). */
  refreshMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

interface FileState {
  token: string;
  readAt: number;
  /** Identity of the file read: another value means another file (a rename over it). */
  version: string;
}

const version = (s: { dev: number; ino: number; size: number; ctimeMs: number; mtimeMs: number }) =>
  `${s.dev}:${s.ino}:${s.size}:${s.ctimeMs}:${s.mtimeMs}`;

/** Reads token files, each again whenever it was replaced or refreshMs has passed. */
export class TokenFileSource {
  readonly #refreshMs: number;
  readonly #now: () => number;
  readonly #files = new Map<string, FileState>();

  constructor(options: TokenFileOptions = {}) {
    this.#refreshMs = options.refreshMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The current token in path. Throws ClientConfigError only if it was never read successfully. */
  async token(path: string): Promise<string> {
    const last = this.#files.get(path);
    try {
      const info = await stat(path);
      if (last && last.version === version(info) && this.#now() - last.readAt < this.#refreshMs) return last.token;
      const token = (await readFile(path, "utf8")).trim();
      if (token === "") throw new Error("it is empty");
      // Stat again: a swap between the stat and the read must not pin the old identity.
      this.#files.set(path, { token, readAt: this.#now(), version: version(await stat(path)) });
      return token;
    } catch (error) {
      if (last) return last.token;
      throw new ClientConfigError("FileUnreadable", `cannot read the token file ${path}: ${whyUnreadable(error)}`, { path, cause: error });
    }
  }

  /** Forget what was read, so that the next request reads the file (e.g. after a 401). */
  invalidate(path?: string): void {
    if (path === undefined) this.#files.clear();
    else this.#files.delete(path);
  }
}

/**
 * A client-node Authenticator for users whose token lives in a file. Register which user reads
 * which file, then `kubeConfig.addAuthenticator(it)`; users not registered are left to others.
 *
 *   const auth = new TokenFileAuthenticator();
 *   auth.register("my-user", "/var/run/secrets/tokens/token");
 *   kc.addAuthenticator(auth);
 */
export class TokenFileAuthenticator implements Authenticator {
  readonly source: TokenFileSource;
  readonly #users = new Map<string, string>();

  constructor(options: TokenFileOptions | TokenFileSource = {}) {
    this.source = options instanceof TokenFileSource ? options : new TokenFileSource(options);
  }

  /** The user named userName authenticates with the token in path. */
  register(userName: string, path: string): this {
    this.#users.set(userName, path);
    return this;
  }

  /** The token file of a user, if registered. */
  tokenFile(userName: string): string | undefined {
    return this.#users.get(userName);
  }

  isAuthProvider(user: User): boolean {
    return this.#users.has(user.name);
  }

  async applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const path = this.#users.get(user.name);
    if (path === undefined) return;
    const token = await this.source.token(path);
    const headers = (opts.headers ??= {}) as Record<string, unknown>;
    headers.Authorization = `Bearer ${token}`;
  }
}
