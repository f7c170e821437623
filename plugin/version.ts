// One version for the plugin, the images and the krew manifest: package.json's.
import { PRODUCT_VERSION } from "../common/manifests.ts";

export const VERSION_STRING = `v${PRODUCT_VERSION}`;
