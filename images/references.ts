// Which images a pod needs that the node does not have. The node has no registry to pull from:
// every image a pod names must have been loaded (npm run images builds them), so a missing one is
// bad input, answered with one line that says what to do.

/**
 * A reference as containerd and the kubelet name it: a domain (docker.io when the first part is
 * not one), docker.io's `library/` for one-part names, and `:latest` when there is no tag or digest.
 */
export function normalizeReference(ref: string): string {
  const trimmed = ref.trim();
  if (!/^[a-z0-9][\w./:@+-]*$/i.test(trimmed)) throw new Error(`not an image reference: "${ref}"`);
  const slash = trimmed.indexOf("/");
  const first = slash < 0 ? "" : trimmed.slice(0, slash);
  const hasDomain = first.includes(".") || first.includes(":") || first === "localhost";
  let named = hasDomain ? trimmed : `docker.io/${trimmed}`;
  if (!hasDomain && slash < 0) named = `docker.io/library/${trimmed}`;
  const lastPart = named.slice(named.lastIndexOf("/") + 1);
  return lastPart.includes(":") || lastPart.includes("@") ? named : `${named}:latest`;
}

/** The containers of a pod spec, as much of it as this needs (a V1PodSpec fits). */
export interface PodImages {
  containers?: readonly { image?: string }[];
  initContainers?: readonly { image?: string }[];
  ephemeralContainers?: readonly { image?: string }[];
}

/** The images the pods name that are not loaded, normalized, each once, in the order first named. */
export function missingImages(pods: readonly PodImages[], loaded: Iterable<string>): string[] {
  const have = new Set([...loaded].map(normalizeReference));
  const missing = new Set<string>();
  for (const pod of pods) {
    for (const container of [...(pod.initContainers ?? []), ...(pod.containers ?? []), ...(pod.ephemeralContainers ?? [])]) {
      if (!container.image) continue;
      const ref = normalizeReference(container.image);
      if (!have.has(ref)) missing.add(ref);
    }
  }
  return [...missing];
}

/**
 * The one line for images that are not loaded: build them if the project builds them, else name
 * the ones it does (there is no registry to pull anything else from).
 */
export function notLoadedMessage(missing: readonly string[], known: readonly string[]): string {
  const knownSet = new Set(known.map(normalizeReference));
  const quoted = (refs: readonly string[]) => refs.map((r) => `"${r}"`).join(", ");
  const unknown = missing.filter((ref) => !knownSet.has(normalizeReference(ref)));
  const subject = missing.length === 1 ? `image ${quoted(missing)} is not loaded into the node` : `images ${quoted(missing)} are not loaded into the node`;
  const todo =
    unknown.length === 0
      ? ": run npm run images -- build"
      : `, and it pulls from no registry: use one of the images npm run images -- build makes instead of ${quoted(unknown)}`;
  return `${subject}${todo} (known: ${known.join(", ")})`;
}

/** Throws the one-line error when a pod names an image that is not loaded. */
export function assertImagesLoaded(pods: readonly PodImages[], loaded: Iterable<string>, known: readonly string[]): void {
  const missing = missingImages(pods, loaded);
  if (missing.length > 0) throw new Error(notLoadedMessage(missing, known));
}
