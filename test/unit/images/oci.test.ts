// images/oci.ts: layer entries as a table; an image layout written, then read back by the system's
// tar (index -> manifest -> config -> layers, every digest and diff_id checked); the same entries
// give the same bytes, any change gives another digest.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Image, type ImageEntry, layerEntries, ociArchitecture, ociLayout, referenceTag } from "../../../images/oci.ts";
import { listLayer, readLayout } from "./layout.ts";

const work = mkdtempSync(join(tmpdir(), "mcsa-oci-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const file = (path: string, content: string, mode = 0o644): ImageEntry => ({ type: "file", path, data: Buffer.from(content), mode });

describe("layerEntries", () => {
  it.each([
    {
      case: "adds parent directories, sorts by path, names them as layer tars do",
      entries: [file("/usr/bin/tool", "x", 0o755), file("/etc/passwd", "p")],
      names: ["etc/", "etc/passwd", "usr/", "usr/bin/", "usr/bin/tool"],
    },
    {
      case: "keeps a listed directory's mode",
      entries: [{ type: "directory", path: "/tmp", mode: 0o1777 } as ImageEntry, file("/tmp/a", "a")],
      names: ["tmp/", "tmp/a"],
    },
    {
      case: "sorts by bytes: a parent before its children, siblings by name",
      entries: [file("/a/b-c", "1"), file("/a/b/c", "2"), file("/a/B", "3")],
      names: ["a/", "a/B", "a/b-c", "a/b/", "a/b/c"],
    },
    {
      case: "one entry given twice the same is one",
      entries: [file("/x", "same"), file("/x", "same")],
      names: ["x"],
    },
  ])("$case", ({ entries, names }) => {
    expect(layerEntries(entries).map((e) => e.name)).toEqual(names);
  });

  it("gives the modes and link targets asked for", () => {
    const entries = layerEntries([{ type: "directory", path: "/tmp", mode: 0o1777 }, { type: "symlink", path: "/bin/sh", target: "/bin/busybox" }]);
    expect(entries.map(({ name, mode, type, linkname }) => ({ name, mode, type, linkname }))).toEqual([
      { name: "bin/", mode: 0o755, type: "directory", linkname: undefined },
      { name: "bin/sh", mode: 0o777, type: "symlink", linkname: "/bin/busybox" },
      { name: "tmp/", mode: 0o1777, type: "directory", linkname: undefined },
    ]);
  });

  it.each([
    { case: "a relative path", entries: [file("etc/passwd", "")], error: 'image path must be absolute and normal, not the root: "etc/passwd"' },
    { case: "a path with ..", entries: [file("/etc/../x", "")], error: 'image path must be absolute and normal, not the root: "/etc/../x"' },
    { case: "the root", entries: [{ type: "directory", path: "/", mode: 0o755 } as ImageEntry], error: 'image path must be absolute and normal, not the root: "/"' },
    { case: "two different files at one path", entries: [file("/x", "a"), file("/x", "b")], error: "two different entries for /x in one layer" },
    { case: "a file where a directory must be", entries: [file("/bin", ""), file("/bin/sh", "")], error: "/bin is a file but /bin/sh is inside it" },
  ])("refuses $case", ({ entries, error }) => {
    expect(() => layerEntries(entries)).toThrow(error);
  });
});

describe("referenceTag", () => {
  it.each([
    ["localhost/pause:dev", "dev"],
    ["localhost:5000/team/app:v1.2.3", "v1.2.3"],
    ["docker.io/library/busybox:1.36", "1.36"],
  ])("%s has tag %s", (ref, tag) => {
    expect(referenceTag(ref)).toBe(tag);
  });

  it.each(["localhost/pause", "localhost:5000/pause", "localhost/pause@sha256:abc"])("%s has none: one line that says how to name it", (ref) => {
    expect(() => referenceTag(ref)).toThrow(`image reference "${ref}" has no tag: name it like localhost/NAME:TAG`);
  });
});

describe("ociArchitecture", () => {
  it.each([
    ["x64", "amd64"],
    ["arm64", "arm64"],
  ])("Node's %s is OCI's %s", (arch, oci) => {
    expect(ociArchitecture(arch)).toBe(oci);
  });

  it("refuses an architecture it has no name for", () => {
    expect(() => ociArchitecture("mips")).toThrow('no OCI architecture name for Node\'s process.arch "mips"');
  });
});

describe("ociLayout", () => {
  const image = (toolContent = "#!/bin/sh\necho tool\n", toolMode = 0o755): Image => ({
    ref: "localhost/test-image:dev",
    architecture: "amd64",
    os: "linux",
    config: { User: "65532:65532", Env: ["PATH=/usr/bin"], Entrypoint: ["tool"], WorkingDir: "/" },
    layers: [
      { comment: "base", entries: [file("/usr/bin/tool", toolContent, toolMode), file("/etc/passwd", "root:x:0:0::/:/bin/false\n"), { type: "directory", path: "/tmp", mode: 0o1777 }] },
      { comment: "app", entries: [{ type: "symlink", path: "/usr/local/bin/t", target: "/usr/bin/tool" }, file("/opt/app/big", "z".repeat(5000))] },
    ],
  });

  it("writes a layout that tar reads back: index -> manifest -> config -> layers, every digest checked", async () => {
    const layout = ociLayout(image());
    const archive = join(work, "image.tar");
    writeFileSync(archive, Buffer.concat(layout.blocks));
    const read = await readLayout(archive, join(work, "image"));

    expect(read.ociLayout).toEqual({ imageLayoutVersion: "1.0.0" });
    expect(read.index).toMatchObject({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json" });
    expect(read.index.manifests[0]).toMatchObject({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: layout.digest,
      annotations: { "io.containerd.image.name": "localhost/test-image:dev", "org.opencontainers.image.ref.name": "dev" },
      platform: { architecture: "amd64", os: "linux" },
    });
    expect(read.manifest.config).toMatchObject({ mediaType: "application/vnd.oci.image.config.v1+json", digest: layout.config });
    expect(read.manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar"]);
    // Uncompressed layers: each diff_id is the layer blob's own digest.
    expect(read.config.rootfs).toEqual({ type: "layers", diff_ids: read.manifest.layers.map((l) => l.digest) });
    expect(read.config).toMatchObject({
      architecture: "amd64",
      os: "linux",
      config: { User: "65532:65532", Env: ["PATH=/usr/bin"], Entrypoint: ["tool"], WorkingDir: "/" },
    });
    expect(read.files.sort()).toEqual(["blobs/", "blobs/sha256/", ...[layout.config, layout.digest, ...layout.layers].map((d) => `blobs/sha256/${d.slice(7)}`).sort(), "index.json", "oci-layout"].sort());

    const base = await listLayer(read.layers[0]!);
    expect(base.map(({ mode, owner, mtime, name }) => `${mode} ${owner} ${mtime} ${name}`)).toEqual([
      "drwxr-xr-x 0/0 1970-01-01 00:00 etc/",
      "-rw-r--r-- 0/0 1970-01-01 00:00 etc/passwd",
      "drwxrwxrwt 0/0 1970-01-01 00:00 tmp/",
      "drwxr-xr-x 0/0 1970-01-01 00:00 usr/",
      "drwxr-xr-x 0/0 1970-01-01 00:00 usr/bin/",
      "-rwxr-xr-x 0/0 1970-01-01 00:00 usr/bin/tool",
    ]);
    const app = await listLayer(read.layers[1]!);
    expect(app.map(({ mode, name, target, size }) => ({ mode, name, target, size }))).toEqual([
      { mode: "drwxr-xr-x", name: "opt/", target: undefined, size: 0 },
      { mode: "drwxr-xr-x", name: "opt/app/", target: undefined, size: 0 },
      { mode: "-rw-r--r--", name: "opt/app/big", target: undefined, size: 5000 },
      { mode: "drwxr-xr-x", name: "usr/", target: undefined, size: 0 },
      { mode: "drwxr-xr-x", name: "usr/local/", target: undefined, size: 0 },
      { mode: "drwxr-xr-x", name: "usr/local/bin/", target: undefined, size: 0 },
      { mode: "lrwxrwxrwx", name: "usr/local/bin/t", target: "/usr/bin/tool", size: 0 },
    ]);
  });

  it("gives the same bytes for the same entries, another digest for any change", () => {
    const first = ociLayout(image());
    const again = ociLayout(image());
    expect(Buffer.concat(again.blocks).equals(Buffer.concat(first.blocks))).toBe(true);
    expect(again.digest).toBe(first.digest);
    expect(again.size).toBe(Buffer.concat(first.blocks).length);

    const contentChanged = ociLayout(image("#!/bin/sh\necho other\n"));
    const modeChanged = ociLayout(image(undefined, 0o700));
    expect(new Set([first.digest, contentChanged.digest, modeChanged.digest]).size).toBe(3);
    // Only the base layer changed: the app layer keeps its digest.
    expect(contentChanged.layers[1]).toBe(first.layers[1]);
    expect(contentChanged.layers[0]).not.toBe(first.layers[0]);
  });
});
