// The CLI as a kubectl user meets it, with the built kubectl beside the plugin on the same
// kubeconfigs: the README's quick start run verbatim on the local clusters, then each high-harm
// case of issue 16 (which cluster KUBECONFIG=a:b acts on, missing files, tokenFile users, removing
// or unbootstrapping what pods still use, printer columns, dry-run output).
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { dump, load as loadYaml, loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SYSTEM_NAMESPACE } from "../../common/api.ts";
import { CONTROLLER_SERVICE_ACCOUNT } from "../../common/manifests.ts";
import { controllerKubeconfig } from "../../harness/install.ts";
import { adminConfig } from "../../harness/kube.ts";
import { Background, ROOT } from "../../harness/run.ts";

const state = inject("clusters");
const dir = join(state.dir, "cli-test");
mkdirSync(dir, { recursive: true, mode: 0o700 });

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with KUBECONFIG set as a user would have it (never a --kubeconfig added). */
function exec(file: string, args: string[], env: NodeJS.ProcessEnv, timeout = 90_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, NO_COLOR: "1", ...env }, timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
const mcsa = (args: string[], env: NodeJS.ProcessEnv = { KUBECONFIG: state.kubeconfig }) => exec(process.execPath, [join(ROOT, "plugin/main.ts"), ...args], env);
const kubectl = (args: string[], env: NodeJS.ProcessEnv = { KUBECONFIG: state.kubeconfig }) => exec(state.kubectl, args, env);

/** The commands of the README's quick start, continuation lines joined, comments dropped. */
function quickStart(): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split("## Quick start with real clusters")[1]!;
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .map((line) => line.replace(/\s+#\s.*$/, "").trim())
    .filter((line) => line && !line.startsWith("#"));
}

let manager: Background | undefined;
const quick: { command: string; result: Result }[] = [];

beforeAll(async () => {
  for (const command of quickStart()) {
    const words = command.split(/\s+/);
    expect(words[0], command).toBe("kubectl");
    // Local clusters run no pods: the controller install deployed runs here as a process, with
    // the identity install created, before anything waits for it.
    if (words[1] === "mcsa" && words[2] === "import" && !manager) {
      manager = new Background("manager/main.ts", ["--kubeconfig", await controllerKubeconfig(state, "cluster1"), "--cluster-check-interval", "1s", "--revoke-timeout", "10s"]);
      await manager.waitFor(/import controller started/);
    }
    const result = words[1] === "mcsa" ? await mcsa(words.slice(2)) : await kubectl(words.slice(1));
    quick.push({ command, result });
    if (result.code !== 0) throw new Error(`README quick start: \`${command}\` exited ${result.code}: ${result.stderr}`);
  }
}, 240_000);

afterAll(async () => {
  // Leave the clusters as other test files expect them: the controller still runs while the
  // imports go (their finalizer), the registration still there so that it can revoke.
  await mcsa(["remove", "cluster2-demo-pod-lister", "-n", "demo", "--context", "cluster1", "--force", "--timeout", "30s"]);
  await mcsa(["uninstall", "--context", "cluster1", "--timeout", "60s"]);
  await mcsa(["unbootstrap", "--from", "cluster2", "--to", "cluster1", "--force"]);
  await manager?.stop();
  for (const context of ["cluster1", "cluster2"]) await kubectl(["delete", "namespace", "demo", "--context", context, "--wait=false"]);
  rmSync(dir, { recursive: true, force: true });
}, 180_000);

describe("the README's quick start, verbatim, on a clean pair of clusters", () => {
  it("runs every command, and the import is Ready", () => {
    expect(quick.map((q) => q.command.split(" ").slice(0, 3).join(" "))).toEqual([
      "kubectl mcsa install",
      "kubectl mcsa bootstrap",
      "kubectl create namespace",
      "kubectl create serviceaccount",
      "kubectl create role",
      "kubectl create rolebinding",
      "kubectl create namespace",
      "kubectl mcsa import",
      "kubectl mcsa get",
      "kubectl label namespace",
    ]);
    const imported = quick.find((q) => q.command.startsWith("kubectl mcsa import"))!.result;
    expect(imported.stdout).toMatch(/serviceaccountimport "cluster2-demo-pod-lister" is ready/);
    expect(quick.find((q) => q.command.startsWith("kubectl mcsa get"))!.result.stdout).toMatch(/^cluster2-demo-pod-lister\s+cluster2\s+demo\s+pod-lister\s+True\s/m);
  });
});

describe("kubeconfig: the plugin acts on the cluster kubectl shows", () => {
  // One file per cluster, each with its own current-context, from the harness's admin kubeconfig.
  const admin = loadYaml(readFileSync(state.kubeconfig, "utf8")) as { clusters: { name: string }[]; users: { name: string }[]; contexts: { name: string }[] };
  const only = (name: string) => {
    const path = join(dir, `${name}.kubeconfig`);
    writeFileSync(
      path,
      dump({
        apiVersion: "v1",
        kind: "Config",
        clusters: admin.clusters.filter((c) => c.name === name),
        users: admin.users.filter((u) => u.name === `${name}-admin`),
        contexts: admin.contexts.filter((c) => c.name === name),
        "current-context": name,
      }),
      { mode: 0o600 },
    );
    return path;
  };

  it("KUBECONFIG=a:b: kubectl and the plugin both take a's current context (the plugin took b's)", async () => {
    const env = { KUBECONFIG: `${only("cluster1")}:${only("cluster2")}` };
    const shown = await kubectl(["config", "current-context"], env);
    expect(shown.stdout.trim()).toBe("cluster1");
    // cluster1 is the one with registrations: the plugin lists them only if it acts on cluster1.
    const clusters = await mcsa(["clusters"], env);
    expect(clusters.stderr).toBe("");
    expect(clusters.stdout).toMatch(/^cluster2\s+https:\/\//m);
    const reversed = await mcsa(["clusters"], { KUBECONFIG: `${only("cluster2")}:${only("cluster1")}` });
    expect(reversed.stderr).toMatch(/No clusters registered in context "cluster2"/);
    expect((await kubectl(["config", "current-context"], { KUBECONFIG: `${only("cluster2")}:${only("cluster1")}` })).stdout.trim()).toBe("cluster2");
  });

  it("a missing file in KUBECONFIG is skipped by both", async () => {
    const env = { KUBECONFIG: `${join(dir, "missing")}:${only("cluster1")}` };
    expect((await kubectl(["get", "serviceaccountimports", "-n", "demo", "-o", "name"], env)).stdout).toContain("cluster2-demo-pod-lister");
    const get = await mcsa(["get", "-n", "demo", "-o", "name"], env);
    expect(get.stderr).toBe("");
    expect(get.stdout).toContain("cluster2-demo-pod-lister");
  });

  it("a user with tokenFile authenticates for both (the plugin was sent anonymous: 403)", async () => {
    const token = await adminConfig(state, "cluster1")
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccountToken({ name: CONTROLLER_SERVICE_ACCOUNT, namespace: SYSTEM_NAMESPACE, body: { spec: { audiences: [], expirationSeconds: 600 } } });
    writeFileSync(join(dir, "controller.token"), `${token.status!.token}\n`, { mode: 0o600 });
    const cluster1 = admin.clusters.find((c) => c.name === "cluster1")!;
    const path = join(dir, "token-file.kubeconfig");
    writeFileSync(
      path,
      dump({
        apiVersion: "v1",
        kind: "Config",
        clusters: [cluster1],
        users: [{ name: "controller", user: { tokenFile: "controller.token" } }],
        contexts: [{ name: "as-controller", context: { cluster: "cluster1", user: "controller", namespace: "demo" } }],
        "current-context": "as-controller",
      }),
      { mode: 0o600 },
    );
    const env = { KUBECONFIG: path };
    const theirs = await kubectl(["get", "serviceaccountimports", "-o", "name"], env);
    expect(theirs.stderr).toBe("");
    expect(theirs.stdout).toContain("cluster2-demo-pod-lister");
    const ours = await mcsa(["get", "-o", "name"], env);
    expect(ours.stderr).toBe("");
    expect(ours.stdout).toContain("cluster2-demo-pod-lister");
    const who = await kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], env);
    expect(who.stdout).toBe(`system:serviceaccount:${SYSTEM_NAMESPACE}:${CONTROLLER_SERVICE_ACCOUNT}`);
  });
});

describe("no silent harm", () => {
  beforeAll(async () => {
    // A pod that uses the import (created with the label off: these clusters have no webhook to run).
    await kubectl(["label", "namespace", "demo", "multicluster-service-account-", "--context", "cluster1"]);
    const created = await kubectl([
      "run", "app", "--image=registry.k8s.io/pause:3.10", "-n", "demo", "--context", "cluster1",
      "--annotations=multicluster.admiralty.io/service-account-import.name=cluster2-demo-pod-lister",
    ]);
    expect(created.stderr).toBe("");
  });

  it("remove refuses while a pod uses the import, naming it; kubectl still shows the import", async () => {
    const refused = await mcsa(["remove", "cluster2-demo-pod-lister", "-n", "demo", "--context", "cluster1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'error: serviceaccountimport "cluster2-demo-pod-lister" is used by 1 pod(s) in namespace "demo" (app): removing it revokes their remote access; pass --force to remove it anyway\n',
    );
    expect((await kubectl(["get", "serviceaccountimports", "-n", "demo", "--context", "cluster1", "-o", "name"])).stdout).toContain("cluster2-demo-pod-lister");
  });

  it("unbootstrap of one of two registrations that share the identity refuses, and with --force keeps the identity the other uses", async () => {
    const again = await mcsa(["bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", "cluster2-again"]);
    expect(again.code, again.stderr).toBe(0);
    const listed = await mcsa(["clusters", "--context", "cluster1"]);
    expect(listed.stdout).toMatch(/^cluster2\s+https:\/\/\S+\s+\S+\s+[1-9]\d*\s+[1-9]\d*$/m);
    expect(listed.stdout).toMatch(/^cluster2-again\s+.*\s0\s+0$/m);

    const refused = await mcsa(["unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", "cluster2-again"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: cluster "cluster2-again" is still needed in context "cluster1": registration\(s\) cluster2 use the same identity .*; pass --force to unbootstrap anyway\n$/);
    const forced = await mcsa(["unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", "cluster2-again", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/kept in context "cluster2": registration\(s\) cluster2 still use it/);
    const identity = await kubectl(["get", "serviceaccount", "mcsa-importer-cluster1", "-n", SYSTEM_NAMESPACE, "--context", "cluster2", "-o", "name"]);
    expect(identity.stdout.trim()).toBe("serviceaccount/mcsa-importer-cluster1");
    const ready = await kubectl(["get", "serviceaccountimport", "cluster2-demo-pod-lister", "-n", "demo", "--context", "cluster1", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(ready.stdout).toBe("True");
  });

  it("unbootstrap refuses while imports and their pods depend on the cluster", async () => {
    const refused = await mcsa(["unbootstrap", "--from", "cluster2", "--to", "cluster1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/import\(s\) use it \([^)]*demo\/cluster2-demo-pod-lister[^)]*\); \d+ pod\(s\) use those imports \([^)]*demo\/app[^)]*\); pass --force/);
  });
});

describe("kubectl's output habits", () => {
  it("kubectl get sai: the printer columns hold working values (no <invalid>)", async () => {
    const table = await kubectl(["get", "sai", "-n", "demo", "--context", "cluster1"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^NAME\s+CLUSTER\s+REMOTE-NAMESPACE\s+SERVICE-ACCOUNT\s+READY\s+TOKEN-AGE\s+AGE$/);
    expect(table.stdout).not.toContain("<invalid>");
    expect(table.stdout).toMatch(/^cluster2-demo-pod-lister\s+cluster2\s+demo\s+pod-lister\s+True\s+[\dhms]+\s+[\dhms]+$/m);
    const wide = await kubectl(["get", "sai", "-n", "demo", "--context", "cluster1", "-o", "wide"]);
    expect(wide.stdout).toMatch(/\sTokenIssued\s.*\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s/);
  });

  it("get -oyaml of a list is a List kubectl reads back; one object has no managedFields and RFC 3339 times", async () => {
    const list = await mcsa(["get", "-oyaml", "-n", "demo", "--context", "cluster1"]);
    expect(list.stderr).toBe("");
    writeFileSync(join(dir, "list.yaml"), list.stdout);
    const reread = await kubectl(["create", "--dry-run=client", "-f", join(dir, "list.yaml"), "-o", "name", "--context", "cluster1"]);
    expect(reread.stdout.trim()).toBe("serviceaccountimport.multicluster.admiralty.io/cluster2-demo-pod-lister");
    const one = await mcsa(["get", "cluster2-demo-pod-lister", "-o", "yaml", "-n", "demo", "--context", "cluster1"]);
    expect(one.stdout).not.toContain("managedFields");
    expect(one.stdout).not.toMatch(/\.000Z/);
    const theirs = await kubectl(["get", "sai", "cluster2-demo-pod-lister", "-n", "demo", "--context", "cluster1", "-o", "jsonpath={.metadata.creationTimestamp}"]);
    expect(one.stdout).toContain(`creationTimestamp: '${theirs.stdout}'`);
    const jsonpath = await mcsa(["get", "-n", "demo", "--context", "cluster1", "-o", "jsonpath={.items[*].metadata.name}"]);
    expect(jsonpath.stdout).toBe((await kubectl(["get", "sai", "-n", "demo", "--context", "cluster1", "-o", "jsonpath={.items[*].metadata.name}"])).stdout);
  });

  it("import --dry-run=client -o yaml prints only YAML, each cluster's objects apart, that kubectl accepts", async () => {
    const dry = await mcsa([
      "import", "cluster2-demo-other", "--context", "cluster1", "-n", "demo", "--cluster", "cluster2",
      "--remote-namespace", "demo", "--service-account", "pod-lister", "--dry-run=client", "-o", "yaml",
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toBe("");
    const documents = loadAll(dry.stdout) as { kind: string }[];
    expect(documents.map((d) => d.kind)).toEqual(["ServiceAccountImport", "Secret", "Role", "RoleBinding"]);
    const [local, remote] = dry.stdout.split(/\n---\n(?=# cluster "cluster2")/);
    writeFileSync(join(dir, "local.yaml"), local!);
    writeFileSync(join(dir, "remote.yaml"), remote!);
    expect((await kubectl(["apply", "--dry-run=server", "-f", join(dir, "local.yaml"), "--context", "cluster1", "-o", "name"])).stdout.trim()).toBe(
      "serviceaccountimport.multicluster.admiralty.io/cluster2-demo-other",
    );
    expect((await kubectl(["apply", "--dry-run=server", "-f", join(dir, "remote.yaml"), "--context", "cluster2", "-o", "name"])).stdout.trim().split("\n")).toHaveLength(3);
  });

  it("argument errors are one line; unknown commands suggest the nearest", async () => {
    const bare = await mcsa(["install", "--dry-run=maybe"]);
    expect(bare.stderr).toBe('error: invalid value "maybe" for --dry-run: allowed values are none, client (server is not supported)\n');
    const unknown = await mcsa(["delete", "x"]);
    expect(unknown.stderr).toBe('error: unknown command "delete" for "kubectl mcsa": did you mean "remove"?\n');
  });
});
