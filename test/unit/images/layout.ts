// Reads an OCI image layout archive back the way a consumer would, with tools this project did not
// write: the system's tar unpacks it and lists the layers, node:crypto checks every digest.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export interface ReadLayout {
  ociLayout: unknown;
  index: { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  manifest: { schemaVersion: number; mediaType: string; config: Descriptor; layers: Descriptor[] };
  config: {
    architecture: string;
    os: string;
    config: { User?: string; Env: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
    rootfs: { type: string; diff_ids: string[] };
  };
  /** Paths of the layer blobs, in order. */
  layers: string[];
  /** Every file in the archive, relative. */
  files: string[];
}

/** Checks a blob against its descriptor (size and sha256) and returns its bytes. */
function readBlob(dir: string, descriptor: { digest: string; size: number }): Buffer {
  const data = readFileSync(join(dir, "blobs", "sha256", descriptor.digest.replace(/^sha256:/, "")));
  const actual = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  if (actual !== descriptor.digest) throw new Error(`blob ${descriptor.digest} has digest ${actual}`);
  if (data.length !== descriptor.size) throw new Error(`blob ${descriptor.digest} is ${data.length} bytes, its descriptor says ${descriptor.size}`);
  return data;
}

/** Unpacks the archive into dir and follows index -> manifest -> config, checking every digest. */
export async function readLayout(archive: string, dir: string): Promise<ReadLayout> {
  mkdirSync(dir, { recursive: true });
  await execFileAsync("tar", ["-xf", archive, "-C", dir]);
  const { stdout } = await execFileAsync("tar", ["-tf", archive]);
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as ReadLayout["index"];
  if (index.manifests.length !== 1) throw new Error(`index.json lists ${index.manifests.length} manifests`);
  const manifest = JSON.parse(readBlob(dir, index.manifests[0]!).toString("utf8")) as ReadLayout["manifest"];
  const config = JSON.parse(readBlob(dir, manifest.config).toString("utf8")) as ReadLayout["config"];
  for (const layer of manifest.layers) readBlob(dir, layer);
  return {
    ociLayout: JSON.parse(readFileSync(join(dir, "oci-layout"), "utf8")),
    index,
    manifest,
    config,
    layers: manifest.layers.map((l) => join(dir, "blobs", "sha256", l.digest.replace(/^sha256:/, ""))),
    files: stdout.split("\n").filter(Boolean),
  };
}

export interface ListedEntry {
  mode: string;
  owner: string;
  size: number;
  mtime: string;
  name: string;
  target?: string;
}

/** A layer as GNU tar lists it (`tar -tvf --numeric-owner`, times in UTC). */
export async function listLayer(layer: string): Promise<ListedEntry[]> {
  const { stdout } = await execFileAsync("tar", ["--numeric-owner", "-tvf", layer], { env: { ...process.env, TZ: "UTC" }, maxBuffer: 16 << 20 });
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const match = /^(\S+) (\d+\/\d+)\s+(\d+) (\S+ \S+) (.+?)(?: -> (.+))?$/.exec(line);
      if (!match) throw new Error(`cannot read tar's listing line: ${line}`);
      return { mode: match[1]!, owner: match[2]!, size: Number(match[3]), mtime: match[4]!, name: match[5]!, ...(match[6] ? { target: match[6] } : {}) };
    });
}

/** Unpacks the layers, in order, into root: the image's file system. */
export async function unpackLayers(layers: readonly string[], root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  for (const layer of layers) await execFileAsync("tar", ["--numeric-owner", "-xpf", layer, "-C", root]);
}
