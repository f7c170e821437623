// The library's six functions over fixture directories laid out as the kubelet lays them out:
// which cluster each picks, the namespace, the credentials (and that they follow a swap), and
// one clear error for each way it can fail.
import { symlinkSync, rmSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  allNamedConfigsAndNamespaces,
  allServiceAccountImportConfigsAndNamespaces,
  ClientConfigError,
  configAndNamespace,
  IMPORTS_DIR_ENV,
  namedConfigAndNamespace,
  namedServiceAccountImportConfigAndNamespace,
  serviceAccountImportConfigAndNamespace,
  type ConfigAndNamespace,
  type ConfigOptions,
} from "../../../client/src/index.ts";
import { Fixture, authorization, kubeconfigYaml } from "./fixtures.ts";

let fx: Fixture;
beforeEach(() => {
  fx = new Fixture();
});
afterEach(() => fx.remove());

/** Options that see only the fixture: its imports, its kubeconfig (if any), no real environment. */
const opts = (extra: ConfigOptions = {}): ConfigOptions => ({ importsDir: fx.imports, env: {}, kubeconfigs: [], inClusterRoot: fx.root, ...extra });

const summary = (c: ConfigAndNamespace) => ({
  source: c.source,
  name: c.name,
  namespace: c.namespace,
  server: c.config.getCurrentCluster()?.server,
});

const errorOf = (f: () => unknown): ClientConfigError => {
  try {
    f();
  } catch (error) {
    if (error instanceof ClientConfigError) return error;
    throw error;
  }
  throw new Error("expected a ClientConfigError");
};

describe("imports only", () => {
  it("the only import: the remote server, its CA file, the remote namespace, the token from the file", async () => {
    const dir = await fx.secretImport("c2", "token-1");
    const c = serviceAccountImportConfigAndNamespace(opts());
    expect(summary(c)).toEqual({ source: "import", name: "c2", namespace: "ns-c2", server: "https://c2.example:6443" });
    expect(c.config.getCurrentCluster()?.caFile).toBe(join(dir, "ca.crt"));
    expect(await authorization(c.config)).toBe("Bearer token-1");
  });

  it("credentials follow the kubelet's swap of the Secret volume, with the same KubeConfig", async () => {
    await fx.secretImport("c2", "token-1");
    const c = namedServiceAccountImportConfigAndNamespace("c2", opts());
    expect(await authorization(c.config)).toBe("Bearer token-1");
    await fx.secretImport("c2", "token-2");
    expect(await authorization(c.config)).toBe("Bearer token-2");
  });

  it("a proxy-only import: its config, through the local proxy, with no credential", async () => {
    await fx.proxyOnlyImport("c2", 17001);
    const c = serviceAccountImportConfigAndNamespace(opts());
    expect(summary(c)).toEqual({ source: "import", name: "c2", namespace: "ns-c2", server: "http://127.0.0.1:17001" });
    expect(await authorization(c.config)).toBeUndefined();
  });

  it("every import by name, sorted, and MCSA_IMPORTS_DIR moves the directory", async () => {
    await fx.secretImport("b", "tb");
    await fx.secretImport("a", "ta");
    mkdirSync(join(fx.imports, ".hidden"));
    const all = allServiceAccountImportConfigsAndNamespaces({ env: { [IMPORTS_DIR_ENV]: fx.imports } });
    expect([...all.keys()]).toEqual(["a", "b"]);
    expect(await authorization(all.get("b")!.config)).toBe("Bearer tb");
    expect(allServiceAccountImportConfigsAndNamespaces(opts({ importsDir: join(fx.root, "nowhere") })).size).toBe(0);
  });

  it.each([
    ["none mounted", async () => undefined, () => serviceAccountImportConfigAndNamespace(opts()), "NoImportMounted", /^no service account import is mounted in .*: annotate the pod with multicluster\.admiralty\.io\/service-account-import\.name/],
    ["several mounted", async () => { await fx.secretImport("a", "t"); await fx.secretImport("b", "t"); }, () => serviceAccountImportConfigAndNamespace(opts()), "SeveralImportsMounted", /^2 service account imports are mounted in .* \(a, b\): pick one with namedConfigAndNamespace\(name\)$/],
    ["the named one missing", async () => { await fx.secretImport("a", "t"); }, () => namedServiceAccountImportConfigAndNamespace("b", opts()), "ImportNotMounted", /^service account import "b" is not mounted in .* \(mounted: a\)$/],
    ["a name that climbs out", async () => undefined, () => namedServiceAccountImportConfigAndNamespace("../x", opts()), "ImportNotMounted", /^service account import "\.\.\/x" is not mounted/],
    ["its namespace file gone", async () => { const d = await fx.secretImport("a", "t"); rmSync(join(d, "..data", "namespace")); }, () => namedServiceAccountImportConfigAndNamespace("a", opts()), "FileUnreadable", /^cannot read the namespace of import "a", .*\/a\/namespace: it does not exist$/],
    ["its CA file gone", async () => { const d = await fx.secretImport("a", "t"); rmSync(join(d, "..data", "ca.crt")); }, () => namedServiceAccountImportConfigAndNamespace("a", opts()), "FileUnreadable", /^cannot read the CA bundle of import "a", .*\/a\/ca\.crt: it does not exist$/],
    ["neither token nor config", async () => { const d = await fx.secretImport("a", "t"); rmSync(join(d, "..data", "token")); }, () => namedServiceAccountImportConfigAndNamespace("a", opts()), "ImportIncomplete", /^service account import "a" in .* has neither a token nor a config file: is its sidecar running\?$/],
  ])("%s: %s", async (_what, setup, call, code, message) => {
    await setup();
    const error = errorOf(call);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain("\n");
  });
});

describe("generic: imports, then kubeconfig contexts, then in-cluster", () => {
  async function kubeconfig(): Promise<string> {
    const token = fx.file("tokens/laptop", "laptop-token-1");
    return fx.file(
      "kube/config",
      kubeconfigYaml({
        current: "laptop",
        contexts: [
          { name: "laptop", server: "https://laptop.example", namespace: "dev", user: { tokenFile: "../tokens/laptop" } },
          { name: "c2", server: "https://c2-by-context.example", user: { token: "inline" } },
          { name: "legacy", server: "https://legacy.example", user: { "token-file": token } },
        ],
      }),
    );
  }

  it("configAndNamespace: the only import first", async () => {
    await fx.secretImport("c2", "t");
    await fx.serviceAccount("sa-token");
    expect(summary(configAndNamespace(opts({ kubeconfigs: [await kubeconfig()], env: { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" } })))).toMatchObject({ source: "import", name: "c2" });
  });

  it("configAndNamespace: else the kubeconfig's current context, its tokenFile read relative to the kubeconfig and again when replaced", async () => {
    const c = configAndNamespace(opts({ kubeconfigs: [await kubeconfig()] }));
    expect(summary(c)).toEqual({ source: "kubeconfig", name: "laptop", namespace: "dev", server: "https://laptop.example" });
    expect(await authorization(c.config)).toBe("Bearer laptop-token-1");
    rmSync(join(fx.root, "tokens/laptop"));
    fx.file("tokens/laptop", "laptop-token-2");
    expect(await authorization(c.config)).toBe("Bearer laptop-token-2");
  });

  it("configAndNamespace: KUBECONFIG and HOME are read from the environment given, missing files skipped", async () => {
    const file = await kubeconfig();
    const viaEnv = configAndNamespace(opts({ kubeconfigs: undefined, env: { KUBECONFIG: `${join(fx.root, "missing")}:${file}` } }));
    expect(viaEnv.name).toBe("laptop");
    const home = fx.file("home/.kube/config", kubeconfigYaml({ current: "h", contexts: [{ name: "h", server: "https://home.example", user: {} }] }));
    expect(configAndNamespace(opts({ kubeconfigs: undefined, env: { HOME: join(home, "../..") } })).name).toBe("h");
    // KUBECONFIG wins over HOME, as in kubectl.
    expect(configAndNamespace(opts({ kubeconfigs: undefined, env: { HOME: join(home, "../.."), KUBECONFIG: file } })).name).toBe("laptop");
  });

  it("configAndNamespace: else the pod's own service account", async () => {
    await fx.serviceAccount("sa-token-1", "app-ns");
    const c = configAndNamespace(opts({ env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" } }));
    expect(summary(c)).toEqual({ source: "in-cluster", name: "in-cluster", namespace: "app-ns", server: "https://[fd00::1]:443" });
    expect(await authorization(c.config)).toBe("Bearer sa-token-1");
    await fx.serviceAccount("sa-token-2", "app-ns");
    expect(await authorization(c.config)).toBe("Bearer sa-token-2");
  });

  it("configAndNamespace: several imports, or nothing at all, are errors that say what to do", async () => {
    expect(errorOf(() => configAndNamespace(opts()))).toMatchObject({
      code: "NoConfiguration",
      message: expect.stringMatching(/^no service account import is mounted in .*, no kubeconfig was found \(KUBECONFIG, ~\/\.kube\/config\), and this is not a pod with a service account: mount an import, or set KUBECONFIG$/),
    });
    await fx.secretImport("a", "t");
    await fx.secretImport("b", "t");
    const kubeconfigs = [await kubeconfig()];
    expect(errorOf(() => configAndNamespace(opts({ kubeconfigs }))).code).toBe("SeveralImportsMounted");
  });

  it("namedConfigAndNamespace: the import of that name, else the context of that name, else an error listing both", async () => {
    await fx.secretImport("c2", "import-token");
    const kubeconfigs = [await kubeconfig()];
    const byImport = namedConfigAndNamespace("c2", opts({ kubeconfigs }));
    expect(summary(byImport)).toMatchObject({ source: "import", server: "https://c2.example:6443" });
    const legacy = namedConfigAndNamespace("legacy", opts({ kubeconfigs }));
    expect(summary(legacy)).toEqual({ source: "kubeconfig", name: "legacy", namespace: "default", server: "https://legacy.example" });
    // client-node's own `token-file` key, read again when the file changes (client-node reads it once).
    expect(await authorization(legacy.config)).toBe("Bearer laptop-token-1");
    rmSync(join(fx.root, "tokens/laptop"));
    fx.file("tokens/laptop", "laptop-token-2");
    expect(await authorization(legacy.config)).toBe("Bearer laptop-token-2");
    expect(errorOf(() => namedConfigAndNamespace("c9", opts({ kubeconfigs })))).toMatchObject({
      code: "ImportNotMounted",
      message: expect.stringMatching(/^service account import "c9" is not mounted in .* \(mounted: c2\) and no kubeconfig context has that name \(contexts: laptop, c2, legacy\)$/),
    });
  });

  it("allNamedConfigsAndNamespaces: imports, then the other contexts, then in-cluster", async () => {
    await fx.secretImport("c2", "import-token");
    await fx.serviceAccount("sa-token");
    const all = allNamedConfigsAndNamespaces(opts({ kubeconfigs: [await kubeconfig()], env: { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" } }));
    expect([...all.values()].map((c) => [c.name, c.source, c.config.getCurrentCluster()?.server])).toEqual([
      ["c2", "import", "https://c2.example:6443"],
      ["laptop", "kubeconfig", "https://laptop.example"],
      ["legacy", "kubeconfig", "https://legacy.example"],
      ["in-cluster", "in-cluster", "https://10.0.0.1:443"],
    ]);
    // Each entry is its own KubeConfig: one's current context is not another's.
    expect(await authorization(all.get("laptop")!.config)).toBe("Bearer laptop-token-1");
    expect(await authorization(all.get("in-cluster")!.config)).toBe("Bearer sa-token");
  });

  it("an unreadable or broken kubeconfig is an error naming the file", async () => {
    expect(errorOf(() => configAndNamespace(opts({ kubeconfigs: [join(fx.root, "nope")] })))).toMatchObject({
      code: "FileUnreadable",
      message: `cannot read the kubeconfig ${join(fx.root, "nope")}: it does not exist`,
    });
    const broken = fx.file("broken", "clusters: [{ name: x }]\n");
    expect(errorOf(() => configAndNamespace(opts({ kubeconfigs: [broken] })))).toMatchObject({ code: "InvalidKubeconfig" });
    const dangling = join(fx.root, "dangling");
    symlinkSync(join(fx.root, "gone"), dangling);
    expect(errorOf(() => configAndNamespace(opts({ kubeconfigs: [dangling] }))).code).toBe("FileUnreadable");
  });
});
