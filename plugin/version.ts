// One version for the plugin, the images and the krew manifest: package.json's.
import pkg from "../package.json" with { type: "json" };

export const VERSION_STRING = `v${pkg.version}`;
