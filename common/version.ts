// Which Kubernetes an API server runs, and whether it is recent enough for a feature.
import { type KubeConfig, VersionApi } from "@kubernetes/client-node";
import { withTimeout } from "./deadline.ts";

/** Whether a gitVersion ("v1.29.3", "v1.28.9-eks-1234") is at least major.minor; false when it cannot be read. */
export function versionAtLeast(gitVersion: string, major: number, minor: number): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  if (m === null) return false;
  const [actualMajor, actualMinor] = [Number(m[1]), Number(m[2])];
  return actualMajor > major || (actualMajor === major && actualMinor >= minor);
}

/** The API server's version (e.g. v1.37.2), from /version. */
export async function serverVersion(kc: KubeConfig, timeoutMs = 10_000): Promise<string> {
  const info = await withTimeout(kc.makeApiClient(VersionApi).getCode(), "reading the server version", timeoutMs);
  return info.gitVersion;
}
