// One error type for everything this package refuses, with a code to branch on and a message
// that is one line saying what to do. Messages name files and names, never a token.

export type ClientConfigErrorCode =
  /** No service account import is mounted (the import-only functions need one). */
  | "NoImportMounted"
  /** Several imports are mounted and the caller did not say which one. */
  | "SeveralImportsMounted"
  /** The named import is not mounted (and, for the generic functions, no context has that name). */
  | "ImportNotMounted"
  /** A file is missing or cannot be read. */
  | "FileUnreadable"
  /** An import's directory holds neither a token nor a kubeconfig. */
  | "ImportIncomplete"
  /** A kubeconfig cannot be parsed, or its current context names nothing. */
  | "InvalidKubeconfig"
  /** No import, no kubeconfig, and not in a pod. */
  | "NoConfiguration";

export class ClientConfigError extends Error {
  override readonly name = "ClientConfigError";
  readonly code: ClientConfigErrorCode;
  /** The file or directory concerned, if any. */
  readonly path: string | undefined;

  constructor(code: ClientConfigErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
  }
}

/** "ENOENT" → "does not exist", etc.: why a file could not be read, in words. */
export function whyUnreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "it does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    case "ENOTDIR":
      return "a parent is not a directory";
    default:
      return code ?? (error instanceof Error ? error.message : String(error));
  }
}
