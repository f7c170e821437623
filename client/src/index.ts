// @kubectl-mcsa/client: client configuration for programs that call other clusters through
// kubectl mcsa's service account imports, for @kubernetes/client-node. See README.md.

export {
  configAndNamespace,
  namedConfigAndNamespace,
  allNamedConfigsAndNamespaces,
  serviceAccountImportConfigAndNamespace,
  namedServiceAccountImportConfigAndNamespace,
  allServiceAccountImportConfigsAndNamespaces,
  inClusterConfigAndNamespace,
  IN_CLUSTER,
  type ConfigAndNamespace,
  type ConfigOptions,
} from "./config.ts";
export { importNames, importMounted, importsDir, IMPORTS_DIR, IMPORTS_DIR_ENV, type ImportLookup } from "./imports.ts";
export { kubeconfigFiles, loadKubeconfig, loadKubeconfigFiles, type KubeconfigLookup } from "./kubeconfig.ts";
export { TokenFileAuthenticator, TokenFileSource, type Authenticator, type TokenFileOptions } from "./token-file.ts";
export { ClientConfigError, type ClientConfigErrorCode } from "./errors.ts";
