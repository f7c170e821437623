// The kubeconfig loader picks what kubectl picks: the KUBECONFIG list merged with the first file
// winning, missing files skipped, --kubeconfig/--context/--cluster/--user, and every user auth kind
// kubectl supports. Each row is checked against the table, and against the built kubectl itself
// (`config view --minify`) when it is there.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../common/errors.ts";
import { type ConnectionFlags, loadKubeConfig } from "../../../common/kube.ts";

const KUBECTL = join(process.env.MCSA_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kubectl-mcsa"), "bin", "kubernetes-v1.37.2", "kubectl");
const haveKubectl = existsSync(KUBECTL);
const dir = mkdtempSync(join(tmpdir(), "mcsa-kube-loader-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  clusters?: [string, string][]; // name, server
  users?: [string, Record<string, unknown>][];
  contexts?: [string, string, string, string?][]; // name, cluster, user, namespace
  current?: string;
}

function file(name: string, e: Entry): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: (e.clusters ?? []).map(([n, server]) => ({ name: n, cluster: { server } })),
      users: (e.users ?? []).map(([n, user]) => ({ name: n, user })),
      contexts: (e.contexts ?? []).map(([n, cluster, user, namespace]) => ({ name: n, context: { cluster, user, ...(namespace ? { namespace } : {}) } })),
      ...(e.current ? { "current-context": e.current } : {}),
    }),
    { mode: 0o600 },
  );
  return path;
}

const a = file("a", {
  clusters: [["c-a", "https://a.test:6443"], ["shared", "https://shared-from-a.test"]],
  users: [["u-a", { token: "token-a" }]],
  contexts: [["ctx-a", "c-a", "u-a", "ns-a"], ["both", "c-a", "u-a"]],
  current: "ctx-a",
});
const b = file("b", {
  clusters: [["c-b", "https://b.test:6443"], ["shared", "https://shared-from-b.test"]],
  users: [["u-b", { username: "bob", password: "not-a-secret" }]],
  contexts: [["ctx-b", "c-b", "u-b"], ["both", "c-b", "u-b"], ["uses-shared", "shared", "u-b"]],
  current: "ctx-b",
});
const noCurrent = file("no-current", { clusters: [["c-n", "https://n.test"]], users: [["u-n", {}]], contexts: [["ctx-n", "c-n", "u-n"]] });
const missing = join(dir, "does-not-exist");

interface Row {
  what: string;
  kubeconfig?: string; // KUBECONFIG
  flags?: ConnectionFlags;
  expect: { context: string; server: string; user: string; namespace?: string } | RegExp;
}

const rows: Row[] = [
  { what: "KUBECONFIG=a:b: the first file's current-context", kubeconfig: `${a}:${b}`, expect: { context: "ctx-a", server: "https://a.test:6443", user: "u-a", namespace: "ns-a" } },
  { what: "KUBECONFIG=b:a: now b's", kubeconfig: `${b}:${a}`, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "a file without current-context does not hide the next one's", kubeconfig: `${noCurrent}:${b}`, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "a context in both files: the first file's", kubeconfig: `${b}:${a}`, flags: { context: "both" }, expect: { context: "both", server: "https://b.test:6443", user: "u-b" } },
  { what: "a cluster in both files: the first file's", kubeconfig: `${a}:${b}`, flags: { context: "uses-shared" }, expect: { context: "uses-shared", server: "https://shared-from-a.test", user: "u-b" } },
  { what: "a missing file in the list is skipped", kubeconfig: `${missing}:${b}`, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "empty and repeated entries are skipped", kubeconfig: `:${b}::${b}:${a}`, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "--kubeconfig replaces the list", kubeconfig: `${a}`, flags: { kubeconfig: b }, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "--context picks across files", kubeconfig: `${a}:${b}`, flags: { context: "ctx-b" }, expect: { context: "ctx-b", server: "https://b.test:6443", user: "u-b" } },
  { what: "--cluster overrides the context's cluster", kubeconfig: `${a}:${b}`, flags: { cluster: "c-b" }, expect: { context: "ctx-a", server: "https://b.test:6443", user: "u-a", namespace: "ns-a" } },
  { what: "--user overrides the context's user", kubeconfig: `${a}:${b}`, flags: { user: "u-b" }, expect: { context: "ctx-a", server: "https://a.test:6443", user: "u-b", namespace: "ns-a" } },
  { what: "a missing --kubeconfig is an error", flags: { kubeconfig: missing }, expect: /kubeconfig file .*does-not-exist not found/ },
  { what: "an unknown --context is an error naming the known ones", kubeconfig: `${a}`, flags: { context: "nope" }, expect: /context "nope" not found in kubeconfig \(known contexts: ctx-a, both\)/ },
  { what: "no current context anywhere", kubeconfig: `${noCurrent}`, expect: /no current context in kubeconfig: pass --context/ },
];

function ours(row: Row) {
  const kc = loadKubeConfig(row.flags ?? {}, { KUBECONFIG: row.kubeconfig ?? "" }, join(dir, "no-home"));
  const context = kc.getContextObject(kc.getCurrentContext());
  return { context: kc.getCurrentContext(), server: kc.getCurrentCluster()!.server, user: kc.getCurrentUser()!.name, ...(context?.namespace ? { namespace: context.namespace } : {}) };
}

/** How a request authenticates, told apart in kubectl's -v=9 output: u-a sends a token, u-b basic auth. */
const AUTH_OF: Record<string, string> = { "u-a": "Bearer", "u-b": "Basic", "u-n": "none" };

/**
 * What the built kubectl picks for the same files and flags: the context and namespace as
 * `config view --minify` shows them, the server and credential kind from the request it makes
 * (`config view` ignores --cluster and --user; a request does not).
 */
function kubectls(row: Row) {
  const flags: string[] = [];
  if (row.flags?.kubeconfig) flags.push("--kubeconfig", row.flags.kubeconfig);
  if (row.flags?.context) flags.push("--context", row.flags.context);
  const env = { PATH: process.env.PATH, HOME: join(dir, "no-home"), KUBECONFIG: row.kubeconfig ?? "" };
  const view = JSON.parse(execFileSync(KUBECTL, ["config", "view", "--minify", "-o", "json", ...flags], { env, encoding: "utf8" })) as {
    "current-context": string;
    contexts: { context: { namespace?: string } }[];
  };
  if (row.flags?.cluster) flags.push("--cluster", row.flags.cluster);
  if (row.flags?.user) flags.push("--user", row.flags.user);
  const probe = spawnSync(KUBECTL, ["get", "--raw", "/mcsa-probe", "-v=9", "--request-timeout=1s", ...flags], { env, encoding: "utf8" }).stderr;
  const namespace = view.contexts[0]?.context.namespace;
  return {
    context: view["current-context"],
    server: /'(https:\/\/[^/']+)\/mcsa-probe/.exec(probe)?.[1],
    auth: /Authorization: (\w+) <masked>/.exec(probe)?.[1] ?? "none",
    ...(namespace ? { namespace } : {}),
  };
}

describe("kubeconfig precedence, as kubectl's", () => {
  it.each(rows)("$what", (row) => {
    if (row.expect instanceof RegExp) {
      expect(() => ours(row)).toThrow(UserError);
      expect(() => ours(row)).toThrow(row.expect);
    } else {
      expect(ours(row)).toEqual(row.expect);
    }
  });

  // Without the built kubectl (npm run clusters -- build makes it), this comparison is skipped.
  it.skipIf(!haveKubectl)(`matches the built kubectl (context, server, credential, namespace) on every row that succeeds: ${KUBECTL}`, () => {
    for (const row of rows.filter((r) => !(r.expect instanceof RegExp))) {
      const { user, ...picked } = ours(row);
      expect(kubectls(row), row.what).toEqual({ ...picked, auth: AUTH_OF[user] });
    }
  });
});

describe("no kubeconfig", () => {
  it("in a pod (no kubeconfig at all): the in-cluster config, as client-go", () => {
    const kc = loadKubeConfig({}, { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, join(dir, "no-home"));
    expect(kc.getCurrentCluster()?.server).toBe("https://10.96.0.1:443");
  });

  it("elsewhere: one line that says how to give one", () => {
    expect(() => loadKubeConfig({}, { KUBECONFIG: missing }, join(dir, "no-home"))).toThrow(/^no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~\/.kube\/config$/);
  });
});

describe("user auth kinds", () => {
  const server = "https://auth.test:6443";
  const withUser = (name: string, user: Record<string, unknown>) => file(name, { clusters: [["c", server]], users: [["u", user]], contexts: [["ctx", "c", "u"]], current: "ctx" });
  const headersOf = async (path: string) => {
    const opts: { headers?: Record<string, string>; cert?: Buffer; key?: Buffer } = {};
    await loadKubeConfig({ kubeconfig: path }).applyToHTTPSOptions(opts as never);
    return opts;
  };

  it("token", async () => {
    expect((await headersOf(withUser("token", { token: "static" }))).headers?.Authorization).toBe("Bearer static");
  });

  it("tokenFile (relative to the kubeconfig, trimmed), which client-node alone ignores", async () => {
    writeFileSync(join(dir, "sa-token"), "from-file\n", { mode: 0o600 });
    expect((await headersOf(withUser("token-file", { tokenFile: "sa-token" }))).headers?.Authorization).toBe("Bearer from-file");
    // Both: the file wins, as in client-go.
    expect((await headersOf(withUser("token-both", { tokenFile: "sa-token", token: "static" }))).headers?.Authorization).toBe("Bearer from-file");
  });

  it("tokenFile: a replaced file is read at once (a rotated projected token), the last good token while it is unreadable, else one clear error", async () => {
    const path = join(dir, "rotating-token");
    writeFileSync(path, "first");
    const kc = loadKubeConfig({ kubeconfig: withUser("rotating", { tokenFile: "rotating-token" }) });
    const header = async () => {
      const opts: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(opts as never);
      return opts.headers?.Authorization;
    };
    expect(await header()).toBe("Bearer first");
    writeFileSync(`${path}.new`, "second");
    renameSync(`${path}.new`, path);
    expect(await header()).toBe("Bearer second");
    rmSync(path);
    expect(await header()).toBe("Bearer second");
    const never = loadKubeConfig({ kubeconfig: withUser("never", { tokenFile: "no-such-token" }) });
    await expect(never.applyToHTTPSOptions({} as never)).rejects.toThrow(/cannot read the token file .*no-such-token/);
  });

  it("client certificate and key files, relative to the kubeconfig", async () => {
    writeFileSync(join(dir, "client.crt"), "CERT");
    writeFileSync(join(dir, "client.key"), "KEY", { mode: 0o600 });
    const opts = await headersOf(withUser("certs", { "client-certificate": "client.crt", "client-key": "client.key" }));
    expect(opts.cert?.toString()).toBe("CERT");
    expect(opts.key?.toString()).toBe("KEY");
  });

  it("exec plugins (a command relative to the kubeconfig)", async () => {
    const script = join(dir, "credential.sh");
    writeFileSync(script, '#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}\'\n');
    chmodSync(script, 0o700);
    const exec = { apiVersion: "client.authentication.k8s.io/v1", command: "./credential.sh", interactiveMode: "Never" };
    expect((await headersOf(withUser("exec", { exec }))).headers?.Authorization).toBe("Bearer from-exec");
  });

  it("ignores client-node's own token-file key, as kubectl does", async () => {
    writeFileSync(join(dir, "other-token"), "should-not-be-sent");
    expect((await headersOf(withUser("token-file-key", { "token-file": join(dir, "other-token") }))).headers?.Authorization).toBeUndefined();
  });
});
