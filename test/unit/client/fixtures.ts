// Fixture directories for the client library's tests, laid out as the kubelet lays out a Secret
// volume (`key -> ..data/key`, `..data -> ..<timestamp>`), through the same atomic writer the
// sidecar tests use, so that an update is the kubelet's swap, step for step.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atomicWrite } from "../../../sidecar/kubelet-layout.ts";
import { proxyKubeconfig, renderKubeconfig } from "../../../common/kubeconfig.ts";

export const CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";

export class Fixture {
  readonly root = mkdtempSync(join(tmpdir(), "mcsa-client-"));
  readonly imports = join(this.root, "serviceaccountimports");

  /** An import as a Secret volume (the original's webhook mounted the Secret itself). */
  async secretImport(name: string, token: string, extra: Record<string, string> = {}): Promise<string> {
    const dir = join(this.imports, name);
    await atomicWrite(dir, { token, "ca.crt": CA, namespace: `ns-${name}\n`, server: `https://${name}.example:6443\n`, ...extra }, { mode: 0o444 });
    return dir;
  }

  /** An import of a proxy-only pod: no token, a config that points at the local proxy. */
  async proxyOnlyImport(name: string, port: number): Promise<string> {
    const dir = join(this.imports, name);
    const config = renderKubeconfig(proxyKubeconfig([{ name, proxyUrl: `http://127.0.0.1:${port}`, namespace: `ns-${name}` }]));
    await atomicWrite(dir, { "ca.crt": CA, namespace: `ns-${name}`, server: `https://${name}.example:6443`, config }, { mode: 0o444 });
    return dir;
  }

  /** A file under root (directories made), returning its path. */
  file(relative: string, content: string): string {
    const path = join(this.root, relative);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, content);
    return path;
  }

  /** The pod's own service account, as the kubelet projects it, under root (inClusterRoot: root). */
  async serviceAccount(token: string, namespace = "app-ns"): Promise<void> {
    await atomicWrite(join(this.root, "var/run/secrets/kubernetes.io/serviceaccount"), { token, "ca.crt": CA, namespace }, { mode: 0o644 });
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The Authorization header client-node would send with kc's current context. */
export async function authorization(kc: { applyToHTTPSOptions(opts: object): Promise<void> }): Promise<string | undefined> {
  const opts: { headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts);
  return opts.headers?.Authorization;
}

export function kubeconfigYaml(input: { contexts: { name: string; server: string; namespace?: string; user: Record<string, unknown> }[]; current?: string }): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: input.contexts.map((c) => ({ name: c.name, cluster: { server: c.server } })),
    users: input.contexts.map((c) => ({ name: c.name, user: c.user })),
    contexts: input.contexts.map((c) => ({ name: c.name, context: { cluster: c.name, user: c.name, ...(c.namespace ? { namespace: c.namespace } : {}) } })),
    ...(input.current ? { "current-context": input.current } : {}),
  });
}
