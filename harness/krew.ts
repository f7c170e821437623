// krew and its manifest validator, built from the Go module pinned in tools/krew and cached
// outside git by version (~/.cache/kubectl-mcsa/bin/krew-<version>/), like the cluster binaries.
// Used by the e2e test of krew/mcsa.yaml.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { build, cacheDir, findGo, requiredVersion } from "./binaries.ts";

export interface KrewBinaries {
  /** krew itself; kubectl finds it as the plugin `kubectl krew` when named kubectl-krew on PATH. */
  krew: string;
  validateManifest: string;
  version: string;
}

function target() {
  const version = requiredVersion("krew", "sigs.k8s.io/krew");
  const dir = join(cacheDir(), "bin", `krew-${version}`);
  return {
    version,
    binaries: { krew: join(dir, "krew"), validateManifest: join(dir, "validate-krew-manifest"), version },
    build: {
      moduleDir: "krew",
      // krew prints this in `kubectl krew version`, and uses it to decide on upgrades.
      ldflags: `-X sigs.k8s.io/krew/internal/version.gitTag=${version}`,
      dir,
      packages: ["sigs.k8s.io/krew/cmd/krew", "sigs.k8s.io/krew/cmd/validate-krew-manifest"],
      outputs: ["krew", "validate-krew-manifest"],
      label: `krew ${version}`,
    },
  };
}

/** Builds krew when missing (about a minute on 2 cores, once per version). */
export async function ensureKrew(log: (line: string) => void = (l) => console.error(l)): Promise<KrewBinaries> {
  const t = target();
  if (!(existsSync(t.binaries.krew) && existsSync(t.binaries.validateManifest))) await build(findGo(), t.build, log);
  return t.binaries;
}
