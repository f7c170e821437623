// helm, built from the Go module pinned in tools/helm and cached outside git by version
// (~/.cache/kubectl-mcsa/bin/helm-<version>/helm), like the cluster binaries. Used by the e2e test
// of the chart `npm run chart` generates; `npm run clusters -- build` builds it too, so that CI
// (.ci/run) has it before the tests run.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type BuildTarget, build, cacheDir, findGo, requiredVersion } from "./binaries.ts";

export interface HelmBinary {
  helm: string;
  version: string;
}

function target(): { binary: HelmBinary; build: BuildTarget } {
  const version = requiredVersion("helm", "helm.sh/helm/v4");
  const dir = join(cacheDir(), "bin", `helm-${version}`);
  return {
    binary: { helm: join(dir, "helm"), version },
    build: {
      moduleDir: "helm",
      // As helm's own Makefile stamps a release: `helm version` prints it, and charts see it as .Capabilities.HelmVersion.
      ldflags: `-X helm.sh/helm/v4/internal/version.version=${version} -X helm.sh/helm/v4/internal/version.gitTreeState=clean`,
      dir,
      packages: ["helm.sh/helm/v4/cmd/helm"],
      outputs: ["helm"],
      label: `helm ${version}`,
    },
  };
}

/** The cached helm, or undefined, without building anything. */
export function cachedHelm(): HelmBinary | undefined {
  const t = target();
  return existsSync(t.binary.helm) ? t.binary : undefined;
}

/** Builds helm when missing (a few minutes on 2 cores, once per version). */
export async function ensureHelm(log: (line: string) => void = (l) => console.error(l)): Promise<HelmBinary> {
  const t = target();
  if (!existsSync(t.binary.helm)) await build(findGo(), t.build, log);
  return t.binary;
}
