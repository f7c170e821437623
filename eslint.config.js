import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Dependencies point one way (docs/architecture.md): shared code, then the parts, then the entry
// points, then the tools that drive them. Each folder lists the folders it may never import.
const TOP_FOLDERS = ["common", "controller", "webhook", "sidecar", "client", "manager", "plugin", "harness", "scripts", "images", "bench", "test"];
const MAY_IMPORT = {
  common: ["common", "client"],
  client: ["client"],
  controller: ["common", "client", "controller"],
  webhook: ["common", "client", "webhook"],
  sidecar: ["common", "client", "sidecar"],
  manager: ["common", "client", "controller", "webhook", "manager"],
  plugin: ["common", "client", "plugin"],
  harness: ["common", "client", "harness"],
  scripts: ["common", "client", "controller", "webhook", "sidecar", "manager", "plugin", "harness", "scripts"],
  images: ["common", "client", "harness", "scripts", "images"],
  bench: ["common", "client", "controller", "webhook", "sidecar", "manager", "plugin", "harness", "scripts", "bench"],
};

const layerRules = Object.entries(MAY_IMPORT).map(([folder, allowed]) => ({
  files: [`${folder}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: TOP_FOLDERS.filter((f) => !allowed.includes(f)).map((f) => ({
          group: [`**/${f}/**`, `../${f}`, `../../${f}`],
          message: `${folder}/ may not import ${f}/: dependencies point one way (see docs/architecture.md)`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".cache/", "tools/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  ...layerRules,
);
