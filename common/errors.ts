// Errors a user can act on: printed as one line, exit code 1, no stack. Kept apart from the
// Kubernetes client so the plugin can report them without loading it.
export class UserError extends Error {}
