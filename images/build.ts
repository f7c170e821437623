// npm run images: the images a local node runs, built here without a Docker engine or a registry,
// as OCI image layout archives that `ctr images import` (and so the harness's node) loads.
//
//   localhost/kubectl-mcsa:dev   what images/Dockerfile builds, from the same bundles: Node, the
//                                libraries it links, mcsa-manager and mcsa-sidecar on PATH
//   localhost/pause:dev          the pod sandbox: images/pause/main.go, static
//   localhost/mcsa-shell:dev     busybox (sh, wget, cat, ...) for test apps
//   localhost/mcsa-kubectl:dev   the shell plus the harness's kubectl
//
// Each archive is cached under ~/.cache/kubectl-mcsa/images, named by a digest of everything that
// goes into it (the files' bytes, the configs, this builder's own source), so it is rebuilt only
// when one of those changes. See docs/images.md.
//
//   npm run images -- build [--only NAME ...]    build what changed; print name, digest, size
//   npm run images -- list                       the images and what they hold
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { cacheDir, findGo, requiredVersion } from "../harness/binaries.ts";
import { type Bundles, DIST, ROOT, bundle, noticesWithNode, nodeVersion } from "../scripts/package.ts";
import { type Image, type ImageEntry, type RunConfig, ociArchitecture, ociLayout } from "./oci.ts";

export const TAG = "dev";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Source files whose change changes the archives' bytes: a new version of this builder. */
const BUILDER_SOURCES = ["images/build.ts", "images/oci.ts", "scripts/package.ts"];
/**
 * What the bundles are made of: the folders their entry points may import (eslint's MAY_IMPORT
 * keeps them from importing anything else), the locked npm packages, and the bundler's settings.
 */
const BUNDLE_SOURCES = { folders: ["common", "client", "controller", "webhook", "sidecar", "manager", "plugin"], files: ["package.json", "package-lock.json", "scripts/package.ts"] };
/** How many archives of one image (and bundle sets) the cache keeps: other checkouts may still use an older one. */
const KEEP_PER_IMAGE = 3;

export interface ImageDefinition {
  name: string;
  ref: string;
  description: string;
  make(inputs: Inputs): Promise<Image>;
}

export interface BuiltImage {
  name: string;
  ref: string;
  /** The manifest's digest, as `ctr images ls` and the kubelet report it. */
  digest: string;
  /** Bytes of the archive. */
  size: number;
  /** The OCI image layout archive to import. */
  tar: string;
  reused: boolean;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Files from this machine

/** The libraries and the loader `ldd` lists for a binary, as absolute paths; none for a static one. */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    if (!line || /not a dynamic executable|statically linked/.test(line)) continue;
    const arrow = /^(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    if (arrow) {
      if (arrow[2] === "not found") throw new Error(`ldd: library ${arrow[1]} not found`);
      // linux-vdso and friends: provided by the kernel, no file.
      if (arrow[2]!.startsWith("/")) paths.push(arrow[2]!);
      continue;
    }
    const loader = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (loader) paths.push(loader[1]!);
  }
  return [...new Set(paths)];
}

function ldd(binary: string): string[] {
  const result = spawnSync("ldd", [binary], { encoding: "utf8" });
  if (result.error) throw new Error(`cannot run ldd on ${binary}: ${result.error.message}`);
  return parseLdd(`${result.stdout}\n${result.stderr}`);
}

/** The Debian packages that own files, from `dpkg -S` output: path -> package. */
export function parseDpkgSearch(output: string): Map<string, string> {
  const owners = new Map<string, string>();
  for (const line of output.split("\n")) {
    const match = /^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?(?:, [^:]+)*: (\/.*)$/.exec(line.trim());
    if (match) owners.set(match[2]!, match[1]!);
  }
  return owners;
}

/**
 * The Debian copyright files of the packages that ship the given files, at the paths Debian puts
 * them (/usr/share/doc/<package>/copyright). None where dpkg is missing or knows no file.
 */
function debianCopyrights(paths: readonly string[]): ImageEntry[] {
  // ldd names /lib/... where the package installed /usr/lib/... (merged /usr): ask for both.
  const candidates = new Set(paths.flatMap((path) => [path, join(realpathSync(dirname(path)), basename(path))]));
  const result = spawnSync("dpkg", ["-S", ...candidates], { encoding: "utf8" });
  if (result.error) return [];
  const packages = new Set(parseDpkgSearch(result.stdout).values());
  return [...packages].sort().flatMap((pkg) => {
    const copyright = `/usr/share/doc/${pkg}/copyright`;
    return existsSync(copyright) ? [hostFile(copyright, copyright, 0o644)] : [];
  });
}

function hostFile(hostPath: string, imagePath = hostPath, mode?: number): ImageEntry {
  return { type: "file", path: imagePath, data: readFileSync(hostPath), mode: mode ?? statSync(hostPath).mode & 0o7777 };
}

/** A binary at imagePath and, at the paths ldd gives, every library it loads and the loader. */
function binaryWithLibraries(hostPath: string, imagePath: string): ImageEntry[] {
  return [hostFile(hostPath, imagePath, 0o755), ...ldd(hostPath).map((lib) => hostFile(lib))];
}

const text = (path: string, content: string, mode = 0o644): ImageEntry => ({ type: "file", path, data: Buffer.from(content), mode });

/** root, nobody and the non-root user 65532 the project's pods run as; /tmp. */
function accounts(): ImageEntry[] {
  return [
    text("/etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
    text("/etc/group", "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"),
    { type: "directory", path: "/tmp", mode: 0o1777 },
  ];
}

/** What the images are made of, each found or built once per run. */
export class Inputs {
  private bundlesPromise: Promise<Bundles> | undefined;
  private pausePromise: Promise<string> | undefined;
  private readonly log: (line: string) => void;
  private readonly bundleDir: string;
  private readonly kubectlBinary: string | undefined;
  constructor(log: (line: string) => void = () => {}, options: Pick<BuildOptions, "bundleDir" | "kubectl"> = {}) {
    this.log = log;
    this.bundleDir = options.bundleDir ?? DIST;
    this.kubectlBinary = options.kubectl;
  }

  /**
   * dist/mcsa-manager.mjs and the rest, as images/Dockerfile copies them. esbuild's output is a
   * function of the sources, the locked packages and scripts/package.ts, so the bundles are cached
   * by a digest of those and bundled again only when one changed (esbuild takes seconds).
   */
  bundles(): Promise<Bundles> {
    this.bundlesPromise ??= (async () => {
      const dir = join(imagesCacheDir(), "bundles", bundleSourcesKey().slice(0, 16));
      const cached: Bundles = {
        plugin: join(dir, "kubectl-mcsa.cjs"),
        manager: join(dir, "mcsa-manager.mjs"),
        sidecar: join(dir, "mcsa-sidecar.mjs"),
        notices: join(dir, "THIRD_PARTY_NOTICES"),
      };
      if (existsSync(dir)) {
        const now = new Date();
        utimesSync(dir, now, now);
        return cached;
      }
      const bundles = await bundle(this.bundleDir);
      this.log(`bundled ${relative(ROOT, bundles.manager)} and ${relative(ROOT, bundles.sidecar)}`);
      const tmp = `${dir}.tmp-${process.pid}`;
      mkdirSync(tmp, { recursive: true });
      for (const key of ["plugin", "manager", "sidecar", "notices"] as const) copyFileSync(bundles[key], join(tmp, basename(cached[key])));
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      pruneOldest(dirname(dir), /^[0-9a-f]{16}$/, () => {});
      return cached;
    })();
    return this.bundlesPromise;
  }

  /** The pinned Node binary the npm `node` package installed, and its license. */
  node(): { binary: string; license: string } {
    const arch = process.arch;
    const platformPackage = `node-linux-${arch}`;
    let dir: string;
    try {
      dir = dirname(createRequire(join(ROOT, "node_modules", "node", "package.json")).resolve(`${platformPackage}/package.json`));
    } catch {
      throw new Error(`${platformPackage} is not installed (the npm node package installs it): run npm ci`);
    }
    const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
    if (version !== nodeVersion()) throw new Error(`${platformPackage} is ${version}, package.json pins node ${nodeVersion()}: run npm ci`);
    return { binary: join(dir, "bin", "node"), license: readFileSync(join(dir, "LICENSE"), "utf8") };
  }

  /** images/pause built static; the binary is cached by its source and the Go version. */
  pause(): Promise<string> {
    this.pausePromise ??= Promise.resolve().then(() => {
      const source = join(ROOT, "images", "pause");
      const go = findGo();
      const goVersion = spawnSync(go, ["env", "GOVERSION"], { encoding: "utf8" }).stdout.trim();
      const key = sha256Hex([goVersion, ...["go.mod", "main.go"].map((f) => readFileSync(join(source, f), "utf8"))].join("\0"));
      const binary = join(imagesCacheDir(), "pause", `pause-${key.slice(0, 16)}`);
      if (existsSync(binary)) return binary;
      mkdirSync(dirname(binary), { recursive: true });
      const tmp = `${binary}.tmp-${process.pid}`;
      this.log(`building images/pause with ${goVersion}`);
      const result = spawnSync(go, ["build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", tmp, "."], {
        cwd: source,
        encoding: "utf8",
        env: { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOARCH: ociArchitecture(), GOTOOLCHAIN: "local" },
      });
      if (result.status !== 0) {
        rmSync(tmp, { force: true });
        throw new Error(`go build of images/pause failed: ${(result.stderr || String(result.error)).trim().split("\n").join(" | ")}`);
      }
      renameSync(tmp, binary);
      return binary;
    });
    return this.pausePromise;
  }

  /** The harness's kubectl (built by npm run clusters -- build). */
  kubectl(): string {
    if (this.kubectlBinary) return this.kubectlBinary;
    const version = requiredVersion("kube", "k8s.io/kubernetes");
    const binary = join(cacheDir(), "bin", `kubernetes-${version}`, "kubectl");
    if (!existsSync(binary)) throw new Error(`kubectl ${version} is not built yet (${binary}): run npm run clusters -- build`);
    return binary;
  }

  /** Debian's busybox-static. */
  busybox(): string {
    const binary = "/bin/busybox";
    if (!existsSync(binary)) throw new Error("busybox is not installed: run apt-get install -y busybox-static");
    return binary;
  }
}

/** busybox at /bin/busybox and a link for each of its applets where `busybox --list-full` puts it. */
function busyboxEntries(busybox: string): ImageEntry[] {
  const listed = spawnSync(busybox, ["--list-full"], { encoding: "utf8" });
  if (listed.status !== 0) throw new Error(`${busybox} --list-full failed: is it Debian's busybox-static?`);
  const links = listed.stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && line !== "bin/busybox" && /^[\w./[-]+$/.test(line))
    .map((line): ImageEntry => ({ type: "symlink", path: `/${line}`, target: "/bin/busybox" }));
  return [...binaryWithLibraries(busybox, "/bin/busybox"), ...links];
}

// ---------------------------------------------------------------------------------------------
// The images

const platform = (): Pick<Image, "architecture" | "os"> => ({ architecture: ociArchitecture(), os: "linux" });

async function shellImage(inputs: Inputs, ref: string, extra: Image["layers"], config: Partial<RunConfig>): Promise<Image> {
  const busybox = inputs.busybox();
  return {
    ref,
    ...platform(),
    config: { Env: [`PATH=${PATH}`], Cmd: ["sh"], ...config },
    layers: [{ comment: "busybox-static and its applets, accounts, /tmp", entries: [...busyboxEntries(busybox), ...accounts(), ...debianCopyrights([busybox])] }, ...extra],
  };
}

export const IMAGES: readonly ImageDefinition[] = [
  {
    name: "kubectl-mcsa",
    ref: `localhost/kubectl-mcsa:${TAG}`,
    description: "images/Dockerfile's image: Node, its libraries, /usr/bin/env; mcsa-manager and mcsa-sidecar on PATH",
    async make(inputs) {
      const node = inputs.node();
      const bundles = await inputs.bundles();
      // The bundles start with `#!/usr/bin/env node` or `#!/usr/bin/env -S node <flags>`: coreutils'
      // env (busybox's has no -S).
      const env = "/usr/bin/env";
      const runtime = [...binaryWithLibraries(node.binary, "/usr/local/bin/node"), ...binaryWithLibraries(env, env)];
      return {
        ref: this.ref,
        ...platform(),
        config: {
          User: "65532:65532",
          Env: [`PATH=${PATH}`, "NODE_ENV=production"],
          Entrypoint: ["mcsa-manager"],
          WorkingDir: "/opt/mcsa",
          Labels: {
            "org.opencontainers.image.title": "mcsa",
            "org.opencontainers.image.description": "kubectl mcsa in-cluster image: mcsa-manager (import controller, webhook) and mcsa-sidecar",
            "org.opencontainers.image.source": "https://github.com/kubectl-mcsa/kubectl-mcsa",
            "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.version": TAG,
          },
        },
        layers: [
          {
            comment: `Node ${nodeVersion()} from the npm node package, the libraries ldd lists, coreutils env, accounts, /tmp`,
            entries: [...runtime, ...accounts(), ...debianCopyrights(runtime.filter((e) => e.path !== "/usr/local/bin/node").map((e) => e.path))],
          },
          {
            comment: "mcsa-manager and mcsa-sidecar bundles (npm run package -- --bundles-only), LICENSE, THIRD_PARTY_NOTICES",
            entries: [
              hostFile(bundles.manager, "/opt/mcsa/mcsa-manager.mjs", 0o755),
              hostFile(bundles.sidecar, "/opt/mcsa/mcsa-sidecar.mjs", 0o755),
              hostFile(join(ROOT, "LICENSE"), "/opt/mcsa/LICENSE", 0o644),
              { type: "file", path: "/opt/mcsa/THIRD_PARTY_NOTICES", data: noticesWithNode(readFileSync(bundles.notices, "utf8"), node.license), mode: 0o644 },
              { type: "symlink", path: "/usr/local/bin/mcsa-manager", target: "/opt/mcsa/mcsa-manager.mjs" },
              { type: "symlink", path: "/usr/local/bin/mcsa-sidecar", target: "/opt/mcsa/mcsa-sidecar.mjs" },
            ],
          },
        ],
      };
    },
  },
  {
    name: "pause",
    ref: `localhost/pause:${TAG}`,
    description: "the pod sandbox: images/pause/main.go built static; sleeps, reaps children, exits 0 on SIGTERM/SIGINT",
    async make(inputs) {
      const pause = await inputs.pause();
      return {
        ref: this.ref,
        ...platform(),
        config: { User: "65535:65535", Env: [`PATH=${PATH}`], Entrypoint: ["/pause"] },
        layers: [{ comment: "images/pause", entries: [hostFile(pause, "/pause", 0o755)] }],
      };
    },
  },
  {
    name: "mcsa-shell",
    ref: `localhost/mcsa-shell:${TAG}`,
    description: "busybox-static with its applets linked (sh, wget, cat, sleep, ls, env, grep, nc, ...); Cmd sh",
    make(inputs) {
      return shellImage(inputs, this.ref, [], {});
    },
  },
  {
    name: "mcsa-kubectl",
    ref: `localhost/mcsa-kubectl:${TAG}`,
    description: "mcsa-shell plus the harness's kubectl at /usr/local/bin/kubectl; Entrypoint kubectl",
    make(inputs) {
      const kubectl = inputs.kubectl();
      return shellImage(inputs, this.ref, [{ comment: "kubectl", entries: binaryWithLibraries(kubectl, "/usr/local/bin/kubectl") }], {
        Entrypoint: ["kubectl"],
        Cmd: ["version", "--client"],
      });
    },
  },
];

export const knownImages = (): string[] => IMAGES.map((image) => image.ref);

// ---------------------------------------------------------------------------------------------
// Building, with the cache

export function imagesCacheDir(): string {
  return join(cacheDir(), "images");
}

const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/**
 * What decides an archive's bytes: the builder's source, the image's reference, config and layers,
 * with each file's content by its digest. Equal keys, equal archives.
 */
export function inputKey(image: Image, builder: string): string {
  const layers = image.layers.map((layer) => ({
    comment: layer.comment,
    entries: layer.entries.map((entry) => (entry.type === "file" ? { ...entry, data: sha256Hex(entry.data) } : entry)),
  }));
  return sha256Hex(JSON.stringify({ builder, image: { ...image, layers } }));
}

/** A digest of every file the bundles are made from, by path and content. */
export function bundleSourcesKey(root = ROOT): string {
  const files: string[] = [...BUNDLE_SOURCES.files];
  const walk = (dir: string) => {
    if (!existsSync(join(root, dir))) return;
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  for (const folder of BUNDLE_SOURCES.folders) walk(folder);
  const hash = createHash("sha256");
  for (const file of files.sort()) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update("\0");
  return hash.digest("hex");
}

function builderVersion(): string {
  return sha256Hex(BUILDER_SOURCES.map((file) => readFileSync(join(ROOT, file), "utf8")).join("\0"));
}

interface CacheRecord {
  ref: string;
  digest: string;
  size: number;
}

/** Resolves image names to definitions; an unknown name is one line that lists the known ones. */
export function selectImages(names: readonly string[] | undefined): ImageDefinition[] {
  if (!names || names.length === 0) return [...IMAGES];
  return names.map((name) => {
    const found = IMAGES.find((image) => image.name === name || image.ref === name);
    if (!found) throw new Error(`unknown image "${name}": one of ${IMAGES.map((i) => i.name).join(", ")}`);
    return found;
  });
}

export interface BuildOptions {
  /** Image names (or references); all when empty. */
  only?: readonly string[];
  log?: (line: string) => void;
  /** Where to bundle mcsa-manager and mcsa-sidecar: dist/ (where images/Dockerfile takes them) unless given. */
  bundleDir?: string;
  /** The kubectl for mcsa-kubectl: the harness's (in the cache) unless given. */
  kubectl?: string;
}

/** Builds the images whose inputs changed, reuses the others; returns every selected image's archive. */
export async function buildImages(options: BuildOptions = {}): Promise<BuiltImage[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const selected = selectImages(options.only);
  const inputs = new Inputs(log, options);
  const builder = builderVersion();
  const dir = imagesCacheDir();
  mkdirSync(dir, { recursive: true });
  const built: BuiltImage[] = [];
  for (const definition of selected) {
    const started = Date.now();
    const image = await definition.make(inputs);
    const key = inputKey(image, builder).slice(0, 16);
    const tar = join(dir, `${definition.name}-${key}.tar`);
    const recordFile = `${tar.slice(0, -".tar".length)}.json`;
    let record: CacheRecord | undefined;
    if (existsSync(tar) && existsSync(recordFile)) {
      record = JSON.parse(readFileSync(recordFile, "utf8")) as CacheRecord;
      const now = new Date();
      utimesSync(recordFile, now, now);
    }
    const reused = record !== undefined;
    if (!record) {
      const layout = ociLayout(image);
      const tmp = `${tar}.tmp-${process.pid}`;
      const fd = openSync(tmp, "w");
      try {
        for (const block of layout.blocks) writeSync(fd, block);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, tar);
      record = { ref: image.ref, digest: layout.digest, size: layout.size };
      writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
      pruneOldest(dir, new RegExp(`^${definition.name}-[0-9a-f]{16}\\.json$`), (f) => rmSync(join(dir, f.replace(/\.json$/, ".tar")), { force: true }));
    }
    built.push({ name: definition.name, ref: definition.ref, digest: record.digest, size: record.size, tar, reused, seconds: (Date.now() - started) / 1000 });
  }
  return built;
}

/** Keeps the KEEP_PER_IMAGE entries of dir matching pattern used last; calls remove for the others. */
function pruneOldest(dir: string, pattern: RegExp, also: (name: string) => void): void {
  const used = readdirSync(dir)
    .filter((f) => pattern.test(f))
    .map((f) => ({ f, mtime: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const { f } of used.slice(KEEP_PER_IMAGE)) {
    rmSync(join(dir, f), { recursive: true, force: true });
    also(f);
  }
}

/**
 * Builds (or reuses) the images and hands each archive to importOne, one at a time: the harness
 * passes its node's import (`ctr -n k8s.io images import`). Returns what was loaded.
 */
export async function loadImages(importOne: (image: BuiltImage) => Promise<void>, options: BuildOptions = {}): Promise<BuiltImage[]> {
  const images = await buildImages(options);
  for (const image of images) await importOne(image);
  return images;
}

// ---------------------------------------------------------------------------------------------
// The command

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export function formatBuilt(images: readonly BuiltImage[]): string {
  const width = Math.max(...images.map((i) => i.ref.length));
  return images
    .map((i) => `${i.ref.padEnd(width)}  ${i.digest}  ${mib(i.size).padStart(9)}  ${i.reused ? "reused" : "built "} ${i.seconds.toFixed(1)}s  ${i.tar}`)
    .join("\n");
}

const USAGE = "usage: npm run images -- build [--only NAME ...] | list";

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { only: { type: "string", multiple: true }, help: { type: "boolean", short: "h", default: false } },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === "help") {
    console.log(`${USAGE}\nimages: ${IMAGES.map((i) => i.name).join(", ")}`);
    return;
  }
  if (rest.length > 0) throw new Error(`unexpected argument "${rest[0]}": ${USAGE}`);
  switch (command) {
    case "build": {
      const started = Date.now();
      console.log(formatBuilt(await buildImages({ ...(values.only ? { only: values.only } : {}) })));
      console.error(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      return;
    }
    case "list":
      for (const image of IMAGES) console.log(`${image.name.padEnd(13)} ${image.ref.padEnd(27)} ${image.description}`);
      return;
    default:
      throw new Error(command ? `unknown command "${command}": ${USAGE}` : USAGE);
  }
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    console.error(`npm run images: ${(error as Error).message}`);
    process.exit(1);
  }
}
