// Connecting to API servers the way kubectl does (--kubeconfig, --context, KUBECONFIG, in-cluster),
// and turning client errors into one line that says what happened, never carrying a token.
import { existsSync } from "node:fs";
import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { redactTokens } from "./redact.ts";

export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
}

import { UserError } from "./errors.ts";

export { UserError };

/**
 * client-node 2.0 builds a new undici Agent for every request, so every call opens (and keeps)
 * a new TLS connection: slow, and memory grows with the request count. Reuse one per cluster and
 * user of this KubeConfig; credentials that change (tokens) travel in headers, not in the agent.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher: (cluster: unknown, options: unknown) => unknown };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, options) => {
    const key = JSON.stringify([kc.getCurrentContext(), (cluster as { server?: string } | null)?.server]);
    if (!cache.has(key)) cache.set(key, create(cluster, options));
    return cache.get(key);
  };
  return kc;
}

export function loadKubeConfig(flags: ConnectionFlags): KubeConfig {
  const kc = new KubeConfig();
  if (flags.kubeconfig) {
    if (!existsSync(flags.kubeconfig)) throw new UserError(`kubeconfig file ${flags.kubeconfig} not found`);
    kc.loadFromFile(flags.kubeconfig);
  } else {
    kc.loadFromDefault();
  }
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UserError(
        `context "${flags.context}" not found in kubeconfig` +
          (known.length ? ` (known contexts: ${known.join(", ")})` : " (it has no contexts)"),
      );
    }
    kc.setCurrentContext(flags.context);
  }
  // client-node invents a localhost:8080 context when it finds no kubeconfig at all.
  if (!flags.kubeconfig && kc.getCurrentContext() === "loaded-context" && kc.getCurrentCluster()?.server === "http://localhost:8080") {
    throw new UserError("no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config");
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError("no current context in kubeconfig: pass --context, or set one with kubectl config use-context");
  }
  return reuseConnections(kc);
}

/** The namespace of the current context, as kubectl picks it when -n is not given. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
}

/** The HTTP status of a failed API call, or undefined for a network-level failure. */
export function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusCode(error) === 404;
}

export function isConflict(error: unknown): boolean {
  return statusCode(error) === 409;
}

/** The API server's own message of a failed call (its Status), else the error's message. */
export function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    let message: string | undefined;
    if (typeof body === "string") {
      try {
        message = (JSON.parse(body) as { message?: string }).message;
      } catch {
        message = body.trim() || undefined;
      }
    } else if (body && typeof body === "object") {
      message = (body as { message?: string }).message;
    }
    return redactTokens(message ?? `HTTP ${error.code}`);
  }
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return redactTokens([e?.message ?? String(error), cause].filter(Boolean).join(": "));
}

/** "<what>: <server's message>" with a hint for the usual statuses. */
export function describeApiError(error: unknown, what: string, server?: string): string {
  const code = statusCode(error);
  const message = apiMessage(error);
  if (code === undefined) return `${what}: cannot reach ${server ?? "the API server"}: ${message}`;
  if (code === 401) return `${what}: unauthorized (401): the credentials were rejected: ${message}`;
  if (code === 403) return `${what}: forbidden (403): ${message}`;
  return `${what}: ${message}`;
}
