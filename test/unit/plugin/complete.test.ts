// Completion: what `kubectl mcsa __complete` answers (Cobra's protocol, which kubectl speaks to
// plugins through kubectl_complete-mcsa), and the bash, zsh and fish scripts run in those shells.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { dump } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { completionScript } from "../../../plugin/complete.ts";
import { registration, run, sai } from "./fake.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const dir = mkdtempSync(join(tmpdir(), "mcsa-complete-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kubeconfig = join(dir, "kubeconfig");
writeFileSync(
  kubeconfig,
  dump({
    clusters: [{ name: "c1", cluster: { server: "https://c1.test" } }, { name: "c2", cluster: { server: "https://c2.test" } }],
    users: [{ name: "admin", user: {} }],
    contexts: [{ name: "cluster1", context: { cluster: "c1", user: "admin" } }, { name: "cluster2", context: { cluster: "c2", user: "admin" } }],
    "current-context": "cluster1",
  }),
  { mode: 0o600 },
);

const clusters = () => [
  { context: "cluster1", imports: [sai("alpha"), sai("beta")], registrations: [registration("cluster2")], namespaces: ["default", "demo"] },
  { context: "cluster2", namespaces: ["remote-ns"] },
];

async function complete(...args: string[]): Promise<{ values: string[]; directive: string; lines: string[] }> {
  const result = await run(["__complete", "--kubeconfig", kubeconfig, ...args], clusters());
  expect(result.code).toBe(0);
  const lines = result.out.trimEnd().split("\n");
  return { values: lines.slice(0, -1).map((l) => l.split("\t")[0]!), directive: lines.at(-1)!, lines };
}

describe("__complete", () => {
  it.each([
    [[""], ["bootstrap", "unbootstrap", "clusters", "import", "get", "describe", "check", "rotate", "remove", "kubeconfig", "export", "install", "uninstall", "completion", "version"]],
    [["r"], ["rotate", "remove"]],
    [["get", ""], ["alpha", "beta"]],
    [["remove", "a"], ["alpha"]],
    [["get", "alpha", ""], []],
    [["--context", ""], ["cluster1", "cluster2"]],
    [["get", "--context=cluster"], ["--context=cluster1", "--context=cluster2"]],
    [["bootstrap", "--from", "cluster2", "--to", ""], ["cluster1", "cluster2"]],
    [["get", "-n", ""], ["default", "demo"]],
    [["import", "x", "--remote-context", "cluster2", "--remote-namespace", ""], ["remote-ns"]],
    [["import", "x", "--cluster", ""], ["cluster2"]],
    [["get", "--cluster", ""], ["c1", "c2"]],
    [["get", "--user", ""], ["admin"]],
    [["get", "-o", ""], ["custom-columns=", "json", "jsonpath=", "name", "wide", "yaml"]],
    [["install", "-o", ""], ["yaml", "json"]],
    [["install", "--image-pull-policy", "I"], ["IfNotPresent"]],
    [["import", "x", "--dry-run", ""], ["none", "client"]],
    [["completion", ""], ["bash", "zsh", "fish", "kubectl"]],
    [["remove", "alpha", "--f"], ["--force"]],
    [["get", "--no"], ["--no-headers"]],
  ])("%j", async (args, expected) => {
    expect((await complete(...args)).values).toEqual(expected);
  });

  it("describes commands and flags; tells the shell not to complete files, and no space after jsonpath=", async () => {
    expect((await complete("")).lines).toContain("remove\tRemove an import: revoke its remote tokens, then delete it and its Secret");
    expect((await complete("get", "--sel")).lines).toEqual(["--selector\tlabel selector, e.g. -l team=a,tier!=test", ":4"]);
    expect((await complete("get", "-o", "j")).directive).toBe(":6");
    expect((await complete("--kubeconfig", "")).directive).toBe(":0");
  });

  it("completes nothing, quietly, when the cluster cannot be asked", async () => {
    const result = await run(["__complete", "--kubeconfig", kubeconfig, "--context", "nowhere", "get", ""], clusters());
    expect(result).toMatchObject({ code: 0, out: ":4\n", err: "" });
  });
});

describe("completion scripts", () => {
  // kubectl-mcsa on PATH, as krew or a release install puts it.
  const bin = join(dir, "bin");
  execFileSync("mkdir", ["-p", bin]);
  writeFileSync(join(bin, "kubectl-mcsa"), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, "plugin/main.ts")}" "$@"\n`);
  chmodSync(join(bin, "kubectl-mcsa"), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: kubeconfig };
  const shell = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`]).status === 0;
  const script = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, completionScript(name.split(".")[1]!));
    return path;
  };

  it.skipIf(!shell("bash"))("bash", () => {
    const out = execFileSync("bash", ["-c", `source ${script("c.bash")}; COMP_WORDS=(kubectl-mcsa r); COMP_CWORD=1; _kubectl_mcsa; printf '%s\\n' "\${COMPREPLY[@]}"`], { env, encoding: "utf8" });
    expect(out.trim().split("\n")).toEqual(["rotate", "remove"]);
    const flags = execFileSync("bash", ["-c", `source ${script("c.bash")}; COMP_WORDS=(kubectl-mcsa get -o y); COMP_CWORD=3; _kubectl_mcsa; printf '%s\\n' "\${COMPREPLY[@]}"`], { env, encoding: "utf8" });
    expect(flags.trim()).toBe("yaml");
  });

  it.skipIf(!shell("zsh"))("zsh", () => {
    // _describe and compdef come with compinit; stand-ins print what the script hands them.
    const out = execFileSync(
      "zsh",
      ["-c", `compdef() { :; }; _describe() { local name=\${@[-1]}; print -l -- "\${(@P)name}"; }; source ${script("c.zsh")}; words=(kubectl-mcsa r); CURRENT=2; _kubectl_mcsa`],
      { env, encoding: "utf8" },
    );
    expect(out.trim().split("\n")).toEqual([
      "rotate:Issue a new token for an import now (the previous one stays valid until it expires)",
      "remove:Remove an import: revoke its remote tokens, then delete it and its Secret",
    ]);
  });

  it.skipIf(!shell("fish"))("fish", () => {
    const out = execFileSync("fish", ["-c", `source ${script("c.fish")}; complete -C "kubectl-mcsa r"`], { env, encoding: "utf8" });
    expect(out.trim().split("\n").map((l) => l.split("\t")[0])).toEqual(["remove", "rotate"]);
  });

  const KUBECTL = join(process.env.MCSA_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kubectl-mcsa"), "bin", "kubernetes-v1.37.2", "kubectl");
  it.skipIf(!existsSync(KUBECTL))(`kubectl mcsa <TAB>: the built kubectl runs kubectl_complete-mcsa (${KUBECTL})`, () => {
    writeFileSync(join(bin, "kubectl_complete-mcsa"), completionScript("kubectl"));
    chmodSync(join(bin, "kubectl_complete-mcsa"), 0o755);
    writeFileSync(join(bin, "kubectl"), `#!/bin/sh\nexec "${KUBECTL}" "$@"\n`);
    chmodSync(join(bin, "kubectl"), 0o755);
    const out = execFileSync(KUBECTL, ["__complete", "mcsa", "r"], { env, encoding: "utf8" });
    expect(out.split("\n").filter((l) => !l.startsWith(":") && l).map((l) => l.split("\t")[0])).toEqual(["rotate", "remove"]);
    const contexts = execFileSync(KUBECTL, ["__complete", "mcsa", "get", "--context", ""], { env, encoding: "utf8" });
    expect(contexts).toMatch(/^cluster1\ncluster2\n:4\n/);
  });
});
