// OCI image layout archives (https://github.com/opencontainers/image-spec/blob/main/image-layout.md),
// the form `ctr images import` and other OCI tools take an image in without a registry:
//
//   oci-layout                  {"imageLayoutVersion": "1.0.0"}
//   index.json                  one manifest, annotated with the image's reference
//   blobs/sha256/<hex>          each layer (an uncompressed tar), the config JSON, the manifest JSON
//
// Everything is derived from the entries given, nothing from the clock or the files' owners: the
// same entries give the same bytes, so the same digests (times 0, owners 0:0, entries sorted).
// The tar writer is scripts/package.ts's, the one the release archives use.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { type ArchiveEntry, tarBlocks } from "../scripts/package.ts";

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

/** containerd names the image it imports after this annotation of the index's manifest. */
export const CONTAINERD_IMAGE_NAME = "io.containerd.image.name";
export const OCI_REF_NAME = "org.opencontainers.image.ref.name";

/** One thing in an image's file system; paths are absolute. Owners are always 0:0. */
export type ImageEntry =
  | { type: "file"; path: string; data: Buffer; mode: number }
  | { type: "directory"; path: string; mode: number }
  | { type: "symlink"; path: string; target: string };

export interface Layer {
  /** What the layer holds, for the config's history. */
  comment: string;
  entries: ImageEntry[];
}

/** The parts of the OCI image config's `config` that these images set. */
export interface RunConfig {
  User?: string;
  Env: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

export interface Image {
  /** The full reference, as pods name it: localhost/<name>:<tag>. */
  ref: string;
  architecture: string;
  os: string;
  config: RunConfig;
  layers: Layer[];
}

export interface Blob {
  digest: string;
  size: number;
  blocks: Buffer[];
}

export function blob(blocks: Buffer[]): Blob {
  const hash = createHash("sha256");
  let size = 0;
  for (const block of blocks) {
    hash.update(block);
    size += block.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size, blocks };
}

const jsonBlob = (value: unknown): Blob => blob([Buffer.from(JSON.stringify(value))]);

/** The architecture name OCI configs use for a Node `process.arch`. */
export function ociArchitecture(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  const name = names[arch];
  if (!name) throw new Error(`no OCI architecture name for Node's process.arch "${arch}"`);
  return name;
}

/**
 * The tar entries of a layer: every parent directory made explicit (0755 unless listed), sorted by
 * path bytes (a parent before its children), names relative to the root as layer tars spell them.
 * Two entries for one path are an error unless they are the same.
 */
export function layerEntries(entries: readonly ImageEntry[]): ArchiveEntry[] {
  const byPath = new Map<string, ImageEntry>();
  const add = (entry: ImageEntry) => {
    if (!posix.isAbsolute(entry.path) || posix.normalize(entry.path) !== entry.path || entry.path === "/") {
      throw new Error(`image path must be absolute and normal, not the root: "${entry.path}"`);
    }
    const seen = byPath.get(entry.path);
    if (seen && !sameEntry(seen, entry)) throw new Error(`two different entries for ${entry.path} in one layer`);
    byPath.set(entry.path, entry);
  };
  for (const entry of entries) add(entry);
  for (const path of [...byPath.keys()]) {
    for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
      const seen = byPath.get(dir);
      if (seen && seen.type !== "directory") throw new Error(`${dir} is a ${seen.type} but ${path} is inside it`);
      if (!seen) byPath.set(dir, { type: "directory", path: dir, mode: 0o755 });
    }
  }
  const name = (entry: ImageEntry) => entry.path.slice(1) + (entry.type === "directory" ? "/" : "");
  return [...byPath.values()]
    .map((entry): ArchiveEntry => {
      switch (entry.type) {
        case "file":
          return { name: name(entry), data: entry.data, mode: entry.mode };
        case "directory":
          return { name: name(entry), data: Buffer.alloc(0), mode: entry.mode, type: "directory" };
        case "symlink":
          return { name: name(entry), data: Buffer.alloc(0), mode: 0o777, type: "symlink", linkname: entry.target };
      }
    })
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

function sameEntry(a: ImageEntry, b: ImageEntry): boolean {
  if (a.type === "file" && b.type === "file") return a.mode === b.mode && a.data.equals(b.data);
  if (a.type === "directory" && b.type === "directory") return a.mode === b.mode;
  if (a.type === "symlink" && b.type === "symlink") return a.target === b.target;
  return false;
}

/** The tag of a reference (`localhost/pause:dev` -> `dev`), which OCI's ref.name annotation holds. */
export function referenceTag(ref: string): string {
  const match = /^[^@]+:([\w][\w.-]{0,127})$/.exec(ref);
  if (!match?.[1] || match[1].includes("/")) throw new Error(`image reference "${ref}" has no tag: name it like localhost/NAME:TAG`);
  return match[1];
}

export interface Layout {
  /** The OCI layout archive, as the blocks to write in order. */
  blocks: Buffer[];
  size: number;
  /** The manifest's digest: what containerd and the kubelet report as the image's digest. */
  digest: string;
  config: string;
  layers: string[];
}

/** The OCI image layout archive of one image. */
export function ociLayout(image: Image): Layout {
  const layers = image.layers.map((layer) => blob(tarBlocks(layerEntries(layer.entries))));
  const config = jsonBlob({
    architecture: image.architecture,
    os: image.os,
    config: image.config,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    history: image.layers.map((layer) => ({ created_by: layer.comment })),
  });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.layer, digest: l.digest, size: l.size })),
  });
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        mediaType: MEDIA_TYPES.manifest,
        digest: manifest.digest,
        size: manifest.size,
        annotations: { [CONTAINERD_IMAGE_NAME]: image.ref, [OCI_REF_NAME]: referenceTag(image.ref) },
        platform: { architecture: image.architecture, os: image.os },
      },
    ],
  };
  // A blob shared by two layers (the same entries twice) is stored once.
  const blobs = new Map<string, Blob>();
  for (const b of [...layers, config, manifest]) blobs.set(b.digest, b);
  const directory = (name: string): ArchiveEntry => ({ name, data: Buffer.alloc(0), mode: 0o755, type: "directory" });
  const outer: ArchiveEntry[] = [
    directory("blobs/"),
    directory("blobs/sha256/"),
    ...[...blobs.values()]
      .sort((a, b) => a.digest.localeCompare(b.digest))
      .map((b) => ({ name: `blobs/sha256/${b.digest.slice("sha256:".length)}`, data: Buffer.concat(b.blocks), mode: 0o644 })),
    { name: "index.json", data: Buffer.from(JSON.stringify(index)), mode: 0o644 },
    { name: "oci-layout", data: Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })), mode: 0o644 },
  ];
  const blocks = tarBlocks(outer);
  return {
    blocks,
    size: blocks.reduce((n, b) => n + b.length, 0),
    digest: manifest.digest,
    config: config.digest,
    layers: layers.map((l) => l.digest),
  };
}
