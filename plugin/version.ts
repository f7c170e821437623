// One version for the plugin, the images and the krew manifest: package.json's.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const VERSION_STRING: string = `v${(require("../package.json") as { version: string }).version}`;
