// The release artifacts as a user gets them: krew validates dist/mcsa.yaml (krew/mcsa.yaml filled
// by npm run package) and installs the plugin from it and the local archive; kubectl then finds
// `kubectl mcsa` through its plugin mechanism; and the single-file binary works against the local
// clusters without Node or the repository. Packages the host platform only, when dist/ is missing
// or older than the sources (npm run package builds all five).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { ApiextensionsV1Api } from "@kubernetes/client-node";
import { loadAll, load as loadYaml } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CRD_NAME } from "../../common/api.ts";
import { DEFAULT_IMAGE } from "../../common/manifests.ts";
import { DIST, PLATFORMS, type Platform, archiveName, binaryName, completionShimName, hostPlatform, isPackaged, packageAll, parseSums, platformId } from "../../scripts/package.ts";
import { type KrewBinaries, ensureKrew } from "../../harness/krew.ts";
import { adminConfig, createPodReader, statusOf, uniqueName } from "../../harness/kube.ts";

const state = inject("clusters");
const host = hostPlatform();
const version = `v${(JSON.parse(readFileSync(join(DIST, "..", "package.json"), "utf8")) as { version: string }).version}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; platforms: { selector: { matchLabels: { os: string; arch: string } }; uri: string; sha256: string; bin: string }[] };
}

const manifestPath = join(DIST, "mcsa.yaml");
const manifest = (): Manifest => loadYaml(readFileSync(manifestPath, "utf8")) as Manifest;
const sha256File = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

let krew: KrewBinaries;
let binary: string;
/** A directory with kubectl-krew, for kubectl to find krew as a plugin. */
let krewPluginDir: string;
/** Temporary directories to remove at the end (each krew root holds a ~150 MB binary). */
const temporary: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
};

describe.skipIf(host === undefined)("the krew manifest and the plugin binary", () => {
  beforeAll(async () => {
    const platform = host as Platform;
    const log = (line: string) => console.error(`[krew.test] ${line}`);
    krew = await ensureKrew(log);
    if (!isPackaged(platform)) await packageAll({ platforms: [platform], log });
    binary = join(DIST, "bin", `${platform.os}_${platform.arch}`, binaryName(platform));
    krewPluginDir = tempDir("mcsa-krew-plugin-");
    symlinkSync(krew.krew, join(krewPluginDir, "kubectl-krew"));
  }, 900_000);
  afterAll(() => {
    for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the built kubectl with krew and the KREW_ROOT's plugins on PATH. */
  const kubectlWithKrew = (krewRoot: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(state.kubectl, args, {
      KREW_ROOT: krewRoot,
      KREW_NO_UPGRADE_CHECK: "1",
      PATH: [join(krewRoot, "bin"), krewPluginDir, process.env.PATH].join(":"),
      ...env,
    });

  it("passes krew's manifest validation", async () => {
    const result = await run(krew.validateManifest, ["-manifest", manifestPath, "-skip-install"]);
    expect(result.stderr).toContain("structural validation OK");
    expect(result.stderr).toContain("no overlapping spec.platform[].selector");
    expect(result.code).toBe(0);
  });

  it("names package.json's version, and the sums of the archives next to it", () => {
    const m = manifest();
    expect(m).toMatchObject({ apiVersion: "krew.googlecontainertools.github.com/v1alpha2", kind: "Plugin", metadata: { name: "mcsa" } });
    expect(m.spec.version).toBe(version);
    const sums = parseSums(readFileSync(join(DIST, "SHA256SUMS"), "utf8"));
    expect(m.spec.platforms.map((p) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`)).toContain(platformId(host!));
    for (const platform of m.spec.platforms) {
      const archive = basename(new URL(platform.uri).pathname);
      expect(platform.uri).toBe(`https://github.com/kubectl-mcsa/kubectl-mcsa/releases/download/${version}/${archive}`);
      expect(platform.sha256, archive).toBe(sha256File(join(DIST, archive)));
      expect(sums.get(archive), archive).toBe(platform.sha256);
    }
  });

  it("installs with kubectl krew from the local archive, and kubectl runs kubectl mcsa", async () => {
    const krewRoot = tempDir("mcsa-krew-root-");
    const archive = join(DIST, archiveName(host!));
    const install = await kubectlWithKrew(krewRoot, ["krew", "install", `--manifest=${manifestPath}`, `--archive=${archive}`]);
    expect(install.stderr).toContain("Installed plugin: mcsa");
    expect(install.code).toBe(0);
    expect(readdirSync(join(krewRoot, "bin"))).toEqual([binaryName(host!)]);
    expect(readdirSync(join(krewRoot, "store", "mcsa", version)).sort()).toEqual(["LICENSE", "THIRD_PARTY_NOTICES", binaryName(host!), completionShimName(host!)].sort());

    // krew's receipt of what it installed (list and uninstall need krew's index, which needs the network).
    expect(readFileSync(join(krewRoot, "receipts", "mcsa.yaml"), "utf8")).toContain(`version: ${version}`);

    const help = await kubectlWithKrew(krewRoot, ["mcsa", "--help"]);
    expect(help.stderr).toBe("");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: kubectl mcsa <command> [flags]");
    expect(help.stdout).toContain("kubectl mcsa bootstrap");
    expect(help.stdout).toContain("kubectl mcsa import <name>");

    const shortHelp = await kubectlWithKrew(krewRoot, ["mcsa", "-h"]);
    expect(shortHelp.stdout).toBe(help.stdout);

    const versionOut = await kubectlWithKrew(krewRoot, ["mcsa", "version"]);
    expect(versionOut).toMatchObject({ code: 0, stderr: "" });
    expect(versionOut.stdout).toContain(version);
  });

  it("installs the archive of every platform built, as krew on that platform would", async () => {
    for (const platform of PLATFORMS) {
      const archive = join(DIST, archiveName(platform));
      if (!existsSync(archive) || !manifest().spec.platforms.some((p) => p.uri.endsWith(`/${archiveName(platform)}`))) continue;
      const krewRoot = tempDir("mcsa-krew-root-");
      const env = { KREW_OS: platform.os, KREW_ARCH: platform.arch };
      const install = await kubectlWithKrew(krewRoot, ["krew", "install", `--manifest=${manifestPath}`, `--archive=${archive}`], env);
      expect(install.code, `${platformId(platform)}: ${install.stderr}`).toBe(0);
      const store = join(krewRoot, "store", "mcsa", version);
      expect(readdirSync(store).sort(), platformId(platform)).toEqual(["LICENSE", "THIRD_PARTY_NOTICES", binaryName(platform), completionShimName(platform)].sort());
    }
  }, 180_000);

  // A cross-built binary runs where an emulator is at hand (Debian: qemu-user, libc6-arm64-cross,
  // libstdc++6-arm64-cross, libatomic1-arm64-cross); skipped elsewhere, and before npm run package.
  const arm64 = join(DIST, "bin", "linux_arm64", "kubectl-mcsa");
  const arm64Sysroot = "/usr/aarch64-linux-gnu";
  it.skipIf(!existsSync("/usr/bin/qemu-aarch64") || !existsSync(join(arm64Sysroot, "lib", "libatomic.so.1")) || !existsSync(arm64))(
    "runs the linux-arm64 binary under qemu-user",
    async () => {
      const result = await run("/usr/bin/qemu-aarch64", ["-L", arm64Sysroot, arm64, "version"], {}, 120_000);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout.trim()).toBe(`kubectl-mcsa ${version}`);
    },
    150_000,
  );

  describe("the binary against the local clusters", () => {
    const mcsa = (...args: string[]) => run(binary, ["--kubeconfig", state.kubeconfig, ...args]);

    it("prints the install objects (--dry-run=client -o yaml), with the image of its own version", async () => {
      const result = await mcsa("--context", "cluster1", "install", "--dry-run=client", "-o", "yaml");
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const objects = loadAll(result.stdout) as { kind: string; metadata: { name: string }; spec?: unknown }[];
      expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(["CustomResourceDefinition", "Deployment", "MutatingWebhookConfiguration"]));
      expect(objects.find((o) => o.kind === "CustomResourceDefinition")?.metadata.name).toBe(CRD_NAME);
      expect(result.stdout).toContain(`image: ${DEFAULT_IMAGE}`);
      expect(DEFAULT_IMAGE).toBe(`ghcr.io/kubectl-mcsa/mcsa:${version}`);
    });

    it("bootstraps cluster1 to import from cluster2, and undoes it", async () => {
      const name = uniqueName("krew-remote");
      const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", name);
      expect(bootstrap.stderr).toBe("");
      expect(bootstrap.code).toBe(0);
      expect(bootstrap.stdout).toContain(name);
      const unbootstrap = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", name);
      expect(unbootstrap.stderr).toBe("");
      expect(unbootstrap.code).toBe(0);
    });

    it("installs, lists imports and uninstalls (leaving cluster1 as it found it)", async () => {
      const ext = adminConfig(state, "cluster1").makeApiClient(ApiextensionsV1Api);
      const installedBefore = (await statusOf(ext.readCustomResourceDefinition({ name: CRD_NAME }))) === 200;
      if (!installedBefore) {
        const install = await mcsa("--context", "cluster1", "install", "--wait=false");
        expect(install.stderr).toBe("");
        expect(install.code).toBe(0);
      }
      try {
        // Right after a CRD is established, the API server may answer "storage is (re)initializing" for a moment.
        let get = await mcsa("--context", "cluster1", "get", "-A");
        for (let i = 0; i < 30 && get.code !== 0 && get.stderr.includes("initializing"); i++) {
          await new Promise((r) => setTimeout(r, 500));
          get = await mcsa("--context", "cluster1", "get", "-A");
        }
        expect(get.code, get.stderr).toBe(0);
        const asJson = await mcsa("--context", "cluster1", "get", "-A", "-o", "json");
        expect(asJson.code, asJson.stderr).toBe(0);
        expect(JSON.parse(asJson.stdout)).toMatchObject({ items: expect.any(Array) });

        // The import flow with the binary: bootstrap, grant and import, show, remove, unbootstrap.
        const remoteName = uniqueName("krew-flow");
        const sa = uniqueName("krew-lister");
        await createPodReader(state, "cluster2", "default", sa);
        const steps = [
          ["bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", remoteName],
          ["--context", "cluster1", "import", sa, "--cluster", remoteName, "--remote-namespace", "default", "--service-account", sa, "--remote-context", "cluster2"],
        ];
        for (const step of steps) {
          const result = await mcsa(...step);
          expect(result.code, `${step.join(" ")}: ${result.stderr}`).toBe(0);
        }
        const shown = await mcsa("--context", "cluster1", "get", sa, "-o", "json");
        expect(JSON.parse(shown.stdout).spec).toEqual({ clusterName: remoteName, namespace: "default", name: sa });
        const described = await mcsa("--context", "cluster1", "describe", sa);
        expect(described.stdout).toMatch(new RegExp(`Service Account:\\s+${sa}`));
        for (const step of [["--context", "cluster1", "remove", sa, "--remote-context", "cluster2"], ["unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", remoteName]]) {
          const result = await mcsa(...step);
          expect(result.code, `${step.join(" ")}: ${result.stderr}`).toBe(0);
        }
      } finally {
        if (!installedBefore) {
          const uninstall = await mcsa("--context", "cluster1", "uninstall", "--timeout", "30s");
          expect(uninstall.code, uninstall.stderr).toBe(0);
          expect(await statusOf(ext.readCustomResourceDefinition({ name: CRD_NAME }))).toBe(404);
        }
      }
    });

    it("fails like kubectl on a bad flag or context: one line on stderr, exit 1", async () => {
      const badContext = await mcsa("--context", "no-such-context", "get");
      expect(badContext.code).toBe(1);
      expect(badContext.stderr.trim().split("\n")).toHaveLength(1);
      expect(badContext.stderr).toContain("no-such-context");
      const badFlag = await run(binary, ["get", "--bogus-flag"]);
      expect(badFlag.code).toBe(1);
      expect(badFlag.stderr).toMatch(/^error: .*bogus-flag/);
    });
  });
});
