// images/build.ts: the parsers as tables; then the real images, built into a temporary cache and
// read back by the system's tar. The shell and kubectl-mcsa images run in a read-only chroot (as
// uid 65532, in a mount namespace of their own) to prove they hold everything their programs load;
// the pause binary exits 0 on SIGTERM and SIGINT and reaps what is reparented to it.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requiredVersion } from "../../../harness/binaries.ts";
import { waitFor } from "../../../harness/wait.ts";
import { type BuiltImage, IMAGES, buildImages, bundleSourcesKey, formatBuilt, inputKey, knownImages, parseDpkgSearch, parseLdd, selectImages } from "../../../images/build.ts";
import type { Image } from "../../../images/oci.ts";
import { ROOT, nodeVersion } from "../../../scripts/package.ts";
import { type ReadLayout, listLayer, readLayout, unpackLayers } from "./layout.ts";

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;

const work = mkdtempSync(join(tmpdir(), "mcsa-images-test-"));
const savedCacheDir = process.env.MCSA_CACHE_DIR;
beforeAll(() => {
  process.env.MCSA_CACHE_DIR = join(work, "cache");
});
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.MCSA_CACHE_DIR;
  else process.env.MCSA_CACHE_DIR = savedCacheDir;
  rmSync(work, { recursive: true, force: true });
});

async function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: 60_000, env, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/**
 * Runs a command in the image's file system, read-only, as the image's user: a private mount
 * namespace bind-mounts the root onto itself read-only, then chroot. The mount goes with the namespace.
 */
function runInImage(root: string, config: ReadLayout["config"]["config"], command: string[]) {
  const script = 'root=$1 user=$2; shift 2; mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" && exec chroot --userspec="$user" "$root" /usr/bin/env -i "$@"';
  return run("unshare", ["-m", "sh", "-c", script, "sh", root, config.User ?? "0:0", ...config.Env, ...command]);
}

describe("parseLdd", () => {
  it.each([
    {
      case: "a dynamic binary: libraries by path, the loader, no vdso",
      output: [
        "\tlinux-vdso.so.1 (0x00007ffd)",
        "\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f86a14fe000)",
        "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f86a1200000)",
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f86a0ff9000)",
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f86a1520000)",
      ].join("\n"),
      paths: ["/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"],
    },
    { case: "a static binary (glibc's ldd)", output: "\tnot a dynamic executable", paths: [] },
    { case: "a static binary (other ldds)", output: "\tstatically linked", paths: [] },
    { case: "a library listed twice", output: "a.so => /lib/a.so (0x1)\na.so => /lib/a.so (0x2)", paths: ["/lib/a.so"] },
  ])("$case", ({ output, paths }) => {
    expect(parseLdd(output)).toEqual(paths);
  });

  it("refuses a library that is not found", () => {
    expect(() => parseLdd("\tlibmissing.so.1 => not found")).toThrow("ldd: library libmissing.so.1 not found");
  });
});

describe("parseDpkgSearch", () => {
  it.each([
    { case: "package with an architecture", output: "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6", owners: [["/lib/x86_64-linux-gnu/libc.so.6", "libc6"]] },
    { case: "package without one", output: "coreutils: /usr/bin/env", owners: [["/usr/bin/env", "coreutils"]] },
    { case: "a path several packages share: the first", output: "libgcc-s1:amd64, gcc-12-base: /usr/share/doc/x", owners: [["/usr/share/doc/x", "libgcc-s1"]] },
    { case: "diversions and errors are skipped", output: "diversion by dash from: /bin/sh\ndpkg-query: no path found matching pattern /x", owners: [] },
  ])("$case", ({ output, owners }) => {
    expect([...parseDpkgSearch(output)]).toEqual(owners);
  });
});

describe("selectImages", () => {
  it("selects all, or by name or reference", () => {
    expect(selectImages(undefined).map((i) => i.name)).toEqual(["kubectl-mcsa", "pause", "mcsa-shell", "mcsa-kubectl"]);
    expect(selectImages(["pause", "localhost/mcsa-shell:dev"]).map((i) => i.name)).toEqual(["pause", "mcsa-shell"]);
    expect(knownImages()).toEqual(["localhost/kubectl-mcsa:dev", "localhost/pause:dev", "localhost/mcsa-shell:dev", "localhost/mcsa-kubectl:dev"]);
  });

  it("refuses an unknown name with one line that lists the known ones", () => {
    expect(() => selectImages(["nope"])).toThrow('unknown image "nope": one of kubectl-mcsa, pause, mcsa-shell, mcsa-kubectl');
  });
});

describe("inputKey", () => {
  const image = (data = "a", mode = 0o755): Image => ({
    ref: "localhost/t:dev",
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"] },
    layers: [{ comment: "one", entries: [{ type: "file", path: "/bin/t", data: Buffer.from(data), mode }] }],
  });

  it("is the same for the same inputs and changes with a file's bytes, a mode, the config or the builder", () => {
    const key = inputKey(image(), "builder-1");
    expect(inputKey(image(), "builder-1")).toBe(key);
    const others = [
      inputKey(image("b"), "builder-1"),
      inputKey(image("a", 0o700), "builder-1"),
      inputKey({ ...image(), config: { Env: ["PATH=/usr/bin"] } }, "builder-1"),
      inputKey(image(), "builder-2"),
    ];
    expect(new Set([key, ...others]).size).toBe(5);
  });
});

describe("bundleSourcesKey", () => {
  it("changes with what the bundles are made of, not with tests or docs", () => {
    const root = join(work, "sources");
    const put = (path: string, content: string) => {
      mkdirSync(join(root, path, ".."), { recursive: true });
      writeFileSync(join(root, path), content);
    };
    for (const file of ["package.json", "package-lock.json", "scripts/package.ts", "common/a.ts", "sidecar/main.ts", "test/unit/x.test.ts", "docs/x.md"]) put(file, file);
    const key = bundleSourcesKey(root);
    put("test/unit/x.test.ts", "changed");
    put("docs/x.md", "changed");
    expect(bundleSourcesKey(root)).toBe(key);
    const changed = [
      () => put("common/a.ts", "changed"),
      () => put("controller/new.ts", "new"),
      () => put("package-lock.json", "changed"),
      () => put("scripts/package.ts", "changed"),
    ].map((change) => {
      change();
      return bundleSourcesKey(root);
    });
    expect(new Set([key, ...changed]).size).toBe(5);
  });
});

describe("the small images, built into a temporary cache", () => {
  let cold: BuiltImage[];
  let warm: BuiltImage[];
  let shell: ReadLayout;
  let pause: ReadLayout;

  beforeAll(async () => {
    cold = await buildImages({ only: ["pause", "mcsa-shell"], log: () => {} });
    warm = await buildImages({ only: ["pause", "mcsa-shell"], log: () => {} });
    pause = await readLayout(cold[0]!.tar, join(work, "pause"));
    shell = await readLayout(cold[1]!.tar, join(work, "shell"));
  }, 120_000);

  it("builds once, then reuses the same archive while nothing changed", () => {
    expect(cold.map((i) => [i.ref, i.reused])).toEqual([
      ["localhost/pause:dev", false],
      ["localhost/mcsa-shell:dev", false],
    ]);
    expect(warm.map((i) => [i.ref, i.reused])).toEqual([
      ["localhost/pause:dev", true],
      ["localhost/mcsa-shell:dev", true],
    ]);
    expect(warm.map((i) => [i.digest, i.tar, i.size])).toEqual(cold.map((i) => [i.digest, i.tar, i.size]));
    for (const image of cold) expect(image.tar.startsWith(join(work, "cache", "images"))).toBe(true);
    expect(formatBuilt(warm).split("\n")[0]).toMatch(/^localhost\/pause:dev +sha256:[0-9a-f]{64} +1\.\d MiB {2}reused /);
  });

  it("names each image as containerd expects and reports the manifest's digest", () => {
    expect(pause.index.manifests[0]!.annotations).toEqual({ "io.containerd.image.name": "localhost/pause:dev", "org.opencontainers.image.ref.name": "dev" });
    expect(pause.index.manifests[0]!.digest).toBe(cold[0]!.digest);
    expect(shell.index.manifests[0]!.annotations?.["io.containerd.image.name"]).toBe("localhost/mcsa-shell:dev");
  });

  it("pause: one static binary at /pause, run as 65535", async () => {
    expect(pause.config.config).toMatchObject({ User: "65535:65535", Entrypoint: ["/pause"] });
    const listed = await listLayer(pause.layers[0]!);
    expect(listed.map(({ mode, owner, name }) => `${mode} ${owner} ${name}`)).toEqual(["-rwxr-xr-x 0/0 pause"]);
    const root = join(work, "pause-root");
    await unpackLayers(pause.layers, root);
    expect(readFileSync(join(root, "pause")).subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(parseLdd((await run("ldd", [join(root, "pause")])).stderr + (await run("ldd", [join(root, "pause")])).stdout)).toEqual([]);
  });

  it("mcsa-shell: busybox with its applets linked, accounts, /tmp; Cmd sh", async () => {
    expect(shell.config.config).toMatchObject({ Cmd: ["sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] });
    const listed = await listLayer(shell.layers[0]!);
    const byName = new Map(listed.map((e) => [e.name, e]));
    expect(byName.get("bin/busybox")).toMatchObject({ mode: "-rwxr-xr-x", owner: "0/0" });
    for (const applet of ["bin/sh", "bin/cat", "bin/sleep", "bin/ls", "bin/grep", "usr/bin/wget", "usr/bin/env"]) {
      expect(byName.get(applet), applet).toMatchObject({ mode: "lrwxrwxrwx", target: "/bin/busybox" });
    }
    expect(byName.get("tmp/")).toMatchObject({ mode: "drwxrwxrwt", owner: "0/0" });
    expect(byName.get("etc/passwd")).toMatchObject({ mode: "-rw-r--r--" });
    expect(listed.every((e) => e.owner === "0/0" && e.mtime === "1970-01-01 00:00")).toBe(true);
  });

  it.skipIf(!isRoot)("mcsa-shell runs sh, cat, wget from a read-only root as 65532", async () => {
    const root = join(work, "shell-root");
    await unpackLayers(shell.layers, root);
    const result = await runInImage(root, { ...shell.config.config, User: "65532:65532" }, [
      "sh",
      "-c",
      "id -u; echo hi | cat; grep -c nonroot /etc/passwd; which wget sleep ls; { touch /x; } 2>&1 | grep -o 'Read-only file system'",
    ]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.split("\n")).toEqual(["65532", "hi", "1", "/usr/bin/wget", "/bin/sleep", "/bin/ls", "Read-only file system", ""]);
  });
});

describe("the pause binary", () => {
  let binary: string;
  const started: ChildProcess[] = [];
  beforeAll(async () => {
    const [built] = await buildImages({ only: ["pause"], log: () => {} });
    const dir = join(work, "pause-run");
    await unpackLayers([(await readLayout(built!.tar, join(work, "pause-layout"))).layers[0]!], dir);
    binary = join(dir, "pause");
  }, 120_000);
  afterAll(() => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
  });

  const exited = (child: ChildProcess) => new Promise<[number | null, string | null]>((done) => child.on("exit", (code, signal) => done([code, signal])));
  const childrenOf = (parent: number) =>
    readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .flatMap((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent ? [Number(pid)] : [];
        } catch {
          return [];
        }
      });

  // Go catches every signal from its first instant, so no outside sign tells when pause's own
  // handlers are in place; reaping an orphan is one. Hence each case starts with it, as PID 1 of
  // its own PID namespace (unshare --fork exits as pause does).
  it.skipIf(!isRoot).each(["SIGTERM", "SIGINT"] as const)("reaps a child reparented to it, then exits 0 on %s", async (signal) => {
    const fifo = join(work, `release-${signal}`);
    await execFileAsync("mkfifo", [fifo]);
    const namespace = spawn("unshare", ["--pid", "--fork", "--kill-child", binary], { detached: true, stdio: "ignore" });
    started.push(namespace);
    const exit = exited(namespace);
    const pausePid = await waitFor("pause inside its PID namespace", () => Number(readFileSync(`/proc/${namespace.pid}/task/${namespace.pid}/children`, "utf8").trim()) || undefined);
    // A shell in the namespace starts cat in the background and exits: cat is orphaned to pause.
    await execFileAsync("nsenter", ["--target", String(pausePid), "--pid", "--", "sh", "-c", `cat ${fifo} >/dev/null 2>&1 </dev/null & exit 0`]);
    const [orphan] = await waitFor("cat to be reparented to pause", () => {
      const found = childrenOf(pausePid);
      return found.length > 0 ? found : undefined;
    });
    // Release cat: it exits, and only pause's wait removes it from the process table.
    closeSync(openSync(fifo, "w"));
    await waitFor("pause to reap the orphan", () => !existsSync(`/proc/${orphan}`)).catch((error: Error) => {
      const stat = (pid: number) => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8").trim() : "gone");
      throw new Error(`${error.message}; orphan: ${stat(orphan!)}; pause: ${stat(pausePid)}`);
    });
    process.kill(pausePid, signal);
    expect(await exit).toEqual([0, null]);
  });
});

describe("localhost/kubectl-mcsa:dev", () => {
  let built: BuiltImage;
  let layout: ReadLayout;
  const dockerfile = readFileSync(join(ROOT, "images", "Dockerfile"), "utf8");

  beforeAll(async () => {
    [built] = (await buildImages({ only: ["kubectl-mcsa"], bundleDir: join(work, "dist"), log: () => {} })) as [BuiltImage];
    layout = await readLayout(built.tar, join(work, "mcsa"));
  }, 300_000);

  it("is configured as images/Dockerfile says: user, entrypoint, environment, working directory", () => {
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    const workdir = /^WORKDIR (\S+)$/m.exec(dockerfile)?.[1];
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? "null") as string[];
    const env = /^ENV (\S+=\S+)$/m.exec(dockerfile)?.[1];
    expect(layout.config.config).toMatchObject({ User: user, WorkingDir: workdir, Entrypoint: entrypoint });
    expect(layout.config.config.Env).toContain(env);
    expect(layout.config.config.User).toBe("65532:65532");
    expect(layout.config.config.Labels?.["org.opencontainers.image.title"]).toBe("mcsa");
  });

  it("holds Node, the libraries ldd lists, env, accounts, /tmp; then the bundles and their links", async () => {
    const [runtime, app] = await Promise.all(layout.layers.map(listLayer));
    const names = new Map(runtime!.map((e) => [e.name, e]));
    expect(names.get("usr/local/bin/node")).toMatchObject({ mode: "-rwxr-xr-x", owner: "0/0" });
    expect(names.get("usr/bin/env")).toMatchObject({ mode: "-rwxr-xr-x" });
    for (const lib of parseLdd((await run("ldd", [join(ROOT, "node_modules", "node", "bin", "node")])).stdout)) {
      expect(names.has(lib.slice(1)), lib).toBe(true);
    }
    expect(names.get("tmp/")).toMatchObject({ mode: "drwxrwxrwt" });
    expect(names.has("etc/passwd") && names.has("etc/group")).toBe(true);
    // The copyright files of the Debian packages the libraries and env come from.
    if (existsSync("/usr/bin/dpkg")) {
      for (const pkg of ["libc6", "libstdc++6", "libgcc-s1", "coreutils"]) expect(names.has(`usr/share/doc/${pkg}/copyright`), pkg).toBe(true);
    }
    expect(runtime!.every((e) => e.owner === "0/0" && e.mtime === "1970-01-01 00:00")).toBe(true);

    // The links and modes images/Dockerfile makes.
    const links = [...dockerfile.matchAll(/ln -s (\S+) (\S+)/g)].map((m) => ({ name: m[2]!.slice(1), target: m[1]! }));
    expect(links.length).toBe(2);
    expect(app!.filter((e) => e.target).map(({ name, target }) => ({ name, target }))).toEqual(links);
    expect(app!.filter((e) => !e.name.endsWith("/") && !e.target).map(({ mode, name }) => `${mode} ${name}`)).toEqual([
      "-rw-r--r-- opt/mcsa/LICENSE",
      "-rw-r--r-- opt/mcsa/THIRD_PARTY_NOTICES",
      "-rwxr-xr-x opt/mcsa/mcsa-manager.mjs",
      "-rwxr-xr-x opt/mcsa/mcsa-sidecar.mjs",
    ]);
  });

  it.skipIf(!isRoot)("runs node, mcsa-sidecar and mcsa-manager from a read-only root as 65532", async () => {
    const root = join(work, "mcsa-root");
    await unpackLayers(layout.layers, root);
    const config = layout.config.config;
    expect(await runInImage(root, config, ["node", "--version"])).toMatchObject({ code: 0, stdout: `v${nodeVersion()}\n` });
    const sidecar = await runInImage(root, config, ["mcsa-sidecar", "--help"]);
    expect(sidecar).toMatchObject({ code: 0 });
    expect(sidecar.stdout).toMatch(/^Usage: mcsa-sidecar /);
    const manager = await runInImage(root, config, [...config.Entrypoint!, "--help"]);
    expect(manager).toMatchObject({ code: 0 });
    expect(manager.stdout).toMatch(/^usage: mcsa-manager/);
    // Bad input reaches the program, not a missing library: its own one-line error.
    const bad = await runInImage(root, config, ["mcsa-sidecar", "--no-such-flag"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^mcsa-sidecar: .*\(see --help\)\n$/);
  });

  it("is reused while its inputs (the bundles among them) are the same", async () => {
    const again = await buildImages({ only: ["kubectl-mcsa"], bundleDir: join(work, "dist"), log: () => {} });
    expect(again[0]).toMatchObject({ reused: true, digest: built.digest });
  }, 300_000);
});

// The harness's kubectl, from the real cache (CI builds it before the tests).
const harnessKubectl = join(savedCacheDir ?? join(process.env.XDG_CACHE_HOME || join(process.env.HOME ?? "/root", ".cache"), "kubectl-mcsa"), "bin", `kubernetes-${requiredVersion("kube", "k8s.io/kubernetes")}`, "kubectl");

describe.skipIf(!existsSync(harnessKubectl))("localhost/mcsa-kubectl:dev", () => {
  let shell: BuiltImage;
  let built: BuiltImage;
  let layout: ReadLayout;
  beforeAll(async () => {
    [shell, built] = (await buildImages({ only: ["mcsa-shell", "mcsa-kubectl"], kubectl: harnessKubectl, log: () => {} })) as [BuiltImage, BuiltImage];
    layout = await readLayout(built.tar, join(work, "kubectl"));
  }, 300_000);

  it("is mcsa-shell's layer, the same blob, then kubectl; Entrypoint kubectl", async () => {
    const shellLayout = await readLayout(shell.tar, join(work, "kubectl-shell"));
    expect(layout.manifest.layers[0]!.digest).toBe(shellLayout.manifest.layers[0]!.digest);
    expect(layout.config.config).toMatchObject({ Entrypoint: ["kubectl"], Cmd: ["version", "--client"] });
    const listed = await listLayer(layout.layers[1]!);
    expect(listed.filter((e) => !e.name.endsWith("/")).map(({ mode, owner, name }) => `${mode} ${owner} ${name}`)).toEqual(["-rwxr-xr-x 0/0 usr/local/bin/kubectl"]);
  });

  it.skipIf(!isRoot)("runs kubectl and the shell from a read-only root as 65532", async () => {
    const root = join(work, "kubectl-root");
    await unpackLayers(layout.layers, root);
    const config = { ...layout.config.config, User: "65532:65532" };
    const version = await runInImage(root, config, [...config.Entrypoint!, ...config.Cmd!]);
    expect(version).toMatchObject({ code: 0 });
    expect(version.stdout).toMatch(/^Client Version: v1\.37\.2\n/);
    expect(await runInImage(root, config, ["sh", "-c", "which kubectl wget cat"])).toEqual({ code: 0, stdout: "/usr/local/bin/kubectl\n/usr/bin/wget\n/bin/cat\n", stderr: "" });
  });
});

describe("bad input", () => {
  it("an unknown image name: one line, exit 1, nothing built", async () => {
    const result = await run(process.execPath, [join(ROOT, "images", "build.ts"), "build", "--only", "nope"], { ...process.env, MCSA_CACHE_DIR: join(work, "bad") });
    expect(result).toEqual({ code: 1, stdout: "", stderr: 'npm run images: unknown image "nope": one of kubectl-mcsa, pause, mcsa-shell, mcsa-kubectl\n' });
    expect(existsSync(join(work, "bad", "images"))).toBe(false);
  });

  it("an unknown command: one line with the usage", async () => {
    const result = await run(process.execPath, [join(ROOT, "images", "build.ts"), "frobnicate"]);
    expect(result).toEqual({ code: 1, stdout: "", stderr: 'npm run images: unknown command "frobnicate": usage: npm run images -- build [--only NAME ...] | list\n' });
  });

  it("kubectl not built yet: one line that says how to build it, no archive", async () => {
    const cache = join(work, "no-kubectl");
    const result = await run(process.execPath, [join(ROOT, "images", "build.ts"), "build", "--only", "mcsa-kubectl"], { ...process.env, MCSA_CACHE_DIR: cache });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^npm run images: kubectl v[\d.]+ is not built yet \(.*\/kubectl\): run npm run clusters -- build\n$/);
    expect(existsSync(join(cache, "images")) ? readdirSync(join(cache, "images")).filter((f) => f.startsWith("mcsa-kubectl")) : []).toEqual([]);
  });

  it("lists every image it knows", async () => {
    const result = await run(process.execPath, [join(ROOT, "images", "build.ts"), "list"]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/).slice(0, 2))).toEqual(IMAGES.map((i) => [i.name, i.ref]));
  });
});
