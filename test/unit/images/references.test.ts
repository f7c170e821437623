// images/references.ts: which images pods need that the node does not have, and the one line that
// says what to do about it.
import { describe, expect, it } from "vitest";
import { assertImagesLoaded, missingImages, normalizeReference, notLoadedMessage } from "../../../images/references.ts";

const KNOWN = ["localhost/kubectl-mcsa:dev", "localhost/pause:dev", "localhost/mcsa-shell:dev", "localhost/mcsa-kubectl:dev"];

describe("normalizeReference", () => {
  it.each([
    ["localhost/pause:dev", "localhost/pause:dev"],
    ["localhost/pause", "localhost/pause:latest"],
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["team/app:v1", "docker.io/team/app:v1"],
    ["registry.example:5000/app", "registry.example:5000/app:latest"],
    ["ghcr.io/kubectl-mcsa/mcsa:v0.1.0", "ghcr.io/kubectl-mcsa/mcsa:v0.1.0"],
    [`localhost/app@sha256:${"a".repeat(64)}`, `localhost/app@sha256:${"a".repeat(64)}`],
  ])("%s is %s", (ref, normalized) => {
    expect(normalizeReference(ref)).toBe(normalized);
  });

  it.each(["", "has space", "/leading"])("refuses %j", (ref) => {
    expect(() => normalizeReference(ref)).toThrow(`not an image reference: "${ref}"`);
  });
});

describe("missingImages", () => {
  it.each([
    { case: "nothing missing", pods: [{ containers: [{ image: "localhost/mcsa-shell:dev" }] }], loaded: KNOWN, missing: [] },
    {
      case: "init, app and ephemeral containers all count, init first",
      pods: [{ initContainers: [{ image: "localhost/x:dev" }], containers: [{ image: "localhost/pause:dev" }, { image: "busybox" }], ephemeralContainers: [{ image: "localhost/y:dev" }] }],
      loaded: KNOWN,
      missing: ["localhost/x:dev", "docker.io/library/busybox:latest", "localhost/y:dev"],
    },
    {
      case: "each missing image once, across pods",
      pods: [{ containers: [{ image: "localhost/kubectl-mcsa:dev" }] }, { containers: [{ image: "localhost/kubectl-mcsa:dev" }] }],
      loaded: ["localhost/pause:dev"],
      missing: ["localhost/kubectl-mcsa:dev"],
    },
    { case: "loaded names are normalized too", pods: [{ containers: [{ image: "docker.io/library/busybox:latest" }] }], loaded: ["busybox"], missing: [] },
    { case: "a container without an image is skipped", pods: [{ containers: [{}] }], loaded: [], missing: [] },
  ])("$case", ({ pods, loaded, missing }) => {
    expect(missingImages(pods, loaded)).toEqual(missing);
  });
});

describe("notLoadedMessage", () => {
  it.each([
    {
      case: "a known image not loaded: build it",
      missing: ["localhost/mcsa-shell:dev"],
      line: 'image "localhost/mcsa-shell:dev" is not loaded into the node: run npm run images -- build (known: localhost/kubectl-mcsa:dev, localhost/pause:dev, localhost/mcsa-shell:dev, localhost/mcsa-kubectl:dev)',
    },
    {
      case: "an image the project does not build: name a known one",
      missing: ["localhost/x:dev"],
      line: 'image "localhost/x:dev" is not loaded into the node, and it pulls from no registry: use one of the images npm run images -- build makes instead of "localhost/x:dev" (known: localhost/kubectl-mcsa:dev, localhost/pause:dev, localhost/mcsa-shell:dev, localhost/mcsa-kubectl:dev)',
    },
    {
      case: "several, some unknown",
      missing: ["localhost/pause:dev", "docker.io/library/busybox:latest"],
      line: 'images "localhost/pause:dev", "docker.io/library/busybox:latest" are not loaded into the node, and it pulls from no registry: use one of the images npm run images -- build makes instead of "docker.io/library/busybox:latest" (known: localhost/kubectl-mcsa:dev, localhost/pause:dev, localhost/mcsa-shell:dev, localhost/mcsa-kubectl:dev)',
    },
  ])("$case", ({ missing, line }) => {
    const message = notLoadedMessage(missing, KNOWN);
    expect(message).toBe(line);
    expect(message).not.toContain("\n");
  });
});

describe("assertImagesLoaded", () => {
  it("passes when every image is loaded", () => {
    expect(() => assertImagesLoaded([{ containers: [{ image: "localhost/pause:dev" }] }], KNOWN, KNOWN)).not.toThrow();
  });

  it("throws the one line when one is not", () => {
    expect(() => assertImagesLoaded([{ containers: [{ image: "localhost/x:dev" }] }], KNOWN, KNOWN)).toThrow(/^image "localhost\/x:dev" is not loaded into the node, and it pulls from no registry: /);
  });
});
