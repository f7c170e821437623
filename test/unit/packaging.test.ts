// npm run package's parts that need no Node downloads: the bundles (they start, from anywhere),
// the archive writers (system tar and unzip read them back), the sums, the krew manifest template
// and its fill step, and images/Dockerfile (what it copies exists in the build output, and it puts
// the commands the manifests use on PATH). No Docker engine runs here: the image is not built.
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { load as loadYaml } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { managerDeployment } from "../../common/manifests.ts";
import { SIDECAR_USER } from "../../webhook/mutate.ts";
import {
  type ArchiveEntry,
  type Bundles,
  MANIFEST_TEMPLATE,
  PLATFORMS,
  ROOT,
  archiveName,
  binaryName,
  bundle,
  fillManifest,
  formatSums,
  nodeVersion,
  parseSums,
  sha256,
  tarGz,
  zip,
} from "../../scripts/package.ts";

const execFileAsync = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const template = readFileSync(MANIFEST_TEMPLATE, "utf8");

async function run(file: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { cwd, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

interface Manifest {
  spec: {
    version: string;
    platforms: { selector: { matchLabels: Record<string, string> }; uri: string; sha256?: string; bin: string; files: { from: string; to: string }[] }[];
  };
}

describe("the krew manifest template", () => {
  const filled = loadYaml(template.replaceAll("{{version}}", pkg.version)) as Manifest & { apiVersion: string; kind: string; metadata: { name: string } };

  it("is a krew Plugin named mcsa at package.json's version", () => {
    expect(filled).toMatchObject({ apiVersion: "krew.googlecontainertools.github.com/v1alpha2", kind: "Plugin", metadata: { name: "mcsa" } });
    expect(filled.spec.version).toBe(`v${pkg.version}`);
    expect(template).not.toMatch(/sha256:/);
  });

  it("has one platform per binary built, each pointing at its archive with its binary and LICENSE", () => {
    expect(filled.spec.platforms).toHaveLength(PLATFORMS.length);
    for (const platform of PLATFORMS) {
      const entry = filled.spec.platforms.find((p) => p.selector.matchLabels.os === platform.os && p.selector.matchLabels.arch === platform.arch);
      expect(entry, `${platform.os}/${platform.arch}`).toBeDefined();
      expect(entry!.uri).toBe(`https://github.com/kubectl-mcsa/kubectl-mcsa/releases/download/v${pkg.version}/${archiveName(platform)}`);
      expect(entry!.bin).toBe(binaryName(platform));
      expect(entry!.files.map((f) => f.from).sort()).toEqual(["LICENSE", "THIRD_PARTY_NOTICES", binaryName(platform), "kubectl_complete-mcsa*"].sort());
    }
  });

  it("tells what to run next", () => {
    const caveats = (loadYaml(template) as { spec: { caveats: string } }).spec.caveats;
    for (const command of ["kubectl mcsa install", "kubectl mcsa bootstrap", "kubectl mcsa import"]) expect(caveats).toContain(command);
  });
});

describe("fillManifest", () => {
  const sumOf = (name: string) => sha256(Buffer.from(name));

  it("sets the version and each platform's sha256 from its archive's sum", () => {
    const sums = new Map(PLATFORMS.map((p) => [archiveName(p), sumOf(archiveName(p))]));
    const manifest = loadYaml(fillManifest(template, "1.2.3", sums)) as Manifest;
    expect(manifest.spec.version).toBe("v1.2.3");
    expect(manifest.spec.platforms).toHaveLength(PLATFORMS.length);
    for (const p of manifest.spec.platforms) {
      expect(p.uri).toContain("/v1.2.3/");
      expect(p.sha256).toBe(sumOf(p.uri.split("/").pop()!));
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it("leaves out platforms whose archive was not built, and refuses when none was", () => {
    const only = PLATFORMS[0]!;
    const manifest = loadYaml(fillManifest(template, pkg.version, new Map([[archiveName(only), sumOf("x")]]))) as Manifest;
    expect(manifest.spec.platforms.map((p) => p.selector.matchLabels)).toEqual([{ os: only.os, arch: only.arch }]);
    expect(() => fillManifest(template, pkg.version, new Map())).toThrow(/no archive/);
  });
});

describe("SHA256SUMS", () => {
  it("is written as sha256sum writes it, sorted, and read back", () => {
    const sums = new Map([
      ["b.tar.gz", "b".repeat(64)],
      ["a.zip", "a".repeat(64)],
    ]);
    const text = formatSums(sums);
    expect(text).toBe(`${"a".repeat(64)}  a.zip\n${"b".repeat(64)}  b.tar.gz\n`);
    expect(parseSums(text)).toEqual(sums);
  });
});

describe("archives", () => {
  let dir: string;
  const entries: ArchiveEntry[] = [
    { name: "kubectl-mcsa", data: Buffer.from("#!/bin/sh\necho hi\n".repeat(1000)), mode: 0o755 },
    { name: "LICENSE", data: Buffer.from("license text\n"), mode: 0o644 },
    { name: "EMPTY", data: Buffer.alloc(0), mode: 0o644 },
    { name: "BLOCK", data: Buffer.alloc(512, 7), mode: 0o644 },
  ];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcsa-archives-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const check = (out: string) => {
    for (const entry of entries) {
      expect(readFileSync(join(out, entry.name)).equals(entry.data), entry.name).toBe(true);
      expect(statSync(join(out, entry.name)).mode & 0o777, entry.name).toBe(entry.mode);
    }
  };

  it("tar.gz: tar extracts every file with its mode, and the same input gives the same bytes", async () => {
    const archive = join(dir, "a.tar.gz");
    writeFileSync(archive, tarGz(entries));
    expect(tarGz(entries).equals(readFileSync(archive))).toBe(true);
    const listing = await run("tar", ["-tvzf", archive]);
    expect(listing.code, listing.stderr).toBe(0);
    expect(listing.stdout).toMatch(/^-rwxr-xr-x root\/root .* 1970-01-01 00:00 kubectl-mcsa$/m);
    const out = join(dir, "tar-out");
    mkdirSync(out);
    expect((await run("tar", ["-xzf", archive, "-C", out])).code).toBe(0);
    check(out);
  });

  it.skipIf(!existsSync("/usr/bin/unzip"))("zip: unzip tests and extracts every file with its mode", async () => {
    const archive = join(dir, "a.zip");
    writeFileSync(archive, zip(entries));
    expect(zip(entries).equals(readFileSync(archive))).toBe(true);
    const test = await run("unzip", ["-t", archive]);
    expect(test.stdout).toContain("No errors detected");
    const out = join(dir, "zip-out");
    expect((await run("unzip", ["-q", archive, "-d", out])).code).toBe(0);
    check(out);
  });
});

describe("the bundles", () => {
  let out: string;
  let bundles: Bundles;
  let elsewhere: string;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), "mcsa-bundles-"));
    bundles = await bundle(out);
    // Copied alone into an empty directory outside the repository: nothing is read from beside them.
    elsewhere = mkdtempSync(join(tmpdir(), "mcsa-bundles-alone-"));
    for (const file of [bundles.plugin, bundles.manager, bundles.sidecar]) copyFileSync(file, join(elsewhere, file.split("/").pop()!));
  }, 60_000);
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it("are single files: the plugin runs with no node_modules and no package.json beside it", async () => {
    const plugin = join(elsewhere, "kubectl-mcsa.cjs");
    const version = await run(process.execPath, [plugin, "version"], elsewhere);
    expect(version).toMatchObject({ code: 0, stderr: "" });
    expect(version.stdout.trim()).toBe(`kubectl-mcsa v${pkg.version}`);
    const help = await run(process.execPath, [plugin, "--help"], elsewhere);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: kubectl mcsa <command> [flags]");
    const noCommand = await run(process.execPath, [plugin], elsewhere);
    expect(noCommand.code).toBe(1);
    expect(noCommand.stderr).toMatch(/^error: /);
  });

  it("start the sidecar and the manager (--help exits 0), run as files thanks to their hashbang", async () => {
    const sidecar = await run(join(elsewhere, "mcsa-sidecar.mjs"), ["--help"], elsewhere);
    expect(sidecar.code, sidecar.stderr).toBe(0);
    expect(sidecar.stdout).toMatch(/mcsa-sidecar --secrets-dir/);
    const manager = await run(join(elsewhere, "mcsa-manager.mjs"), ["--help"], elsewhere);
    expect(manager.code, manager.stderr).toBe(0);
    expect(manager.stdout).toMatch(/^usage: mcsa-manager/);
    const bad = await run(process.execPath, [join(elsewhere, "mcsa-sidecar.mjs"), "--no-such-flag"], elsewhere);
    expect(bad.code).toBe(2);
  });

  it("come with the licenses of the packages inside them", () => {
    const notices = readFileSync(bundles.notices, "utf8");
    for (const name of ["yargs@", "@kubernetes/client-node@", "js-yaml@"]) expect(notices).toContain(`\n${name}`);
  });

  describe("images/Dockerfile", () => {
    const dockerfile = readFileSync(join(ROOT, "images", "Dockerfile"), "utf8").replace(/\\\n/g, " ");
    const instructions = dockerfile
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const copies = instructions
      .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
      .map((l) => {
        const words = l.split(/\s+/).slice(1).filter((w) => !w.startsWith("--"));
        return { sources: words.slice(0, -1), destination: words.at(-1)! };
      });

    it("copies files that the build output and the repository have", () => {
      expect(copies.length).toBeGreaterThan(0);
      for (const source of copies.flatMap((c) => c.sources)) {
        const path = source.startsWith("dist/") ? join(out, source.slice("dist/".length)) : join(ROOT, source);
        expect(existsSync(path), source).toBe(true);
      }
      const ignore = readFileSync(join(ROOT, "images", "Dockerfile.dockerignore"), "utf8");
      for (const source of copies.flatMap((c) => c.sources)) expect(ignore).toContain(`!${source}\n`);
    });

    it("puts the commands the manifests run on PATH, linked to copied bundles", () => {
      const links = new Map([...dockerfile.matchAll(/ln -s (\S+) \/usr\/local\/bin\/(\S+)/g)].map((m) => [m[2]!, m[1]!]));
      const managerCommand = managerDeployment({ image: "i", sidecarImage: "s" }).spec!.template.spec!.containers[0]!.command![0]!;
      for (const command of [managerCommand, "mcsa-sidecar"]) {
        const target = links.get(command);
        expect(target, command).toBeDefined();
        const copied = copies.some((c) => c.sources.some((s) => `${c.destination}${s.split("/").pop()}` === target));
        expect(copied, `${command} -> ${target}`).toBe(true);
      }
    });

    it("runs as the non-root user the pods ask for, on the pinned Node", () => {
      expect(instructions).toContain(`USER ${SIDECAR_USER}:${SIDECAR_USER}`);
      expect(instructions).toContain(`ARG NODE_VERSION=${nodeVersion()}`);
      expect(instructions.filter((l) => l.startsWith("FROM "))).toEqual(["FROM node:${NODE_VERSION}-slim AS mcsa"]);
    });
  });
});
