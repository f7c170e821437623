// The mutating webhook's pure core: given a pod, its namespace's labels and the imports its
// annotation names, decide to skip it, deny it, or compute the pod with the sidecar injected.
// No I/O here. The desired pod is always inject(strip(pod)): strip removes what an earlier pass
// injected (known by the INJECTED_ANNOTATION marker and our reserved names), so running again on
// our own output (reinvocation, or a copy of an injected pod's YAML) changes nothing.

import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1Probe,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import {
  CREDENTIALS_VOLUME_NAME,
  IMPORT_ANNOTATION,
  INJECTED_ANNOTATION,
  INJECTED_ANNOTATION_VALUE,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_VALUE,
  POD_CREDENTIALS_ROOT,
  POD_MERGED_KUBECONFIG,
  PROXY_ONLY_ANNOTATION,
  PROXY_ALLOW_ANNOTATION,
  PROXY_URL_ENV,
  parseProxyAllow,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_HEALTH_PORT,
  SIDECAR_PROXY_PORT_BASE,
  SIDECAR_SECRETS_DIR,
  isReady,
  readyCondition,
  type ServiceAccountImport,
} from "../common/api.ts";
import { envVarName, parseImportAnnotation, secretVolumeName, validateDnsSubdomain } from "../common/names.ts";
import { diff, type JsonPatchOp } from "./json-patch.ts";
import { type ImportPort, formatImportArg, importArgsOf } from "../common/import-arg.ts";

/** More names than this in one annotation is a mistake or an attack, not a workload. */
export const MAX_IMPORTS_PER_POD = 32;
/** Enough for MAX_IMPORTS_PER_POD names of 253 characters with separators. */
export const MAX_ANNOTATION_LENGTH = 8192;
/** Files per import are a few KiB; room for the maximum of imports plus the atomic-write copies. */
export const CREDENTIALS_VOLUME_SIZE_LIMIT = "4Mi";
/**
 * Secret files are owned by root (no fsGroup is set: that would be pod-wide and chown every
 * volume); the sidecar runs as 65532, so it needs the "other" read bit. Nothing leaks by it:
 * the Secret volume is mounted in the sidecar only, and that mount is the boundary.
 */
export const SECRET_VOLUME_MODE = 0o444;
export const SIDECAR_USER = 65532;
/** Node's resident baseline is about 40–50 MiB; the limit stops a leak from starving the app. */
export const DEFAULT_SIDECAR_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: "10m", memory: "64Mi" },
  limits: { memory: "128Mi" },
};
const HEALTH_PORT_NAME = "mcsa-metrics";

export interface MutateOptions {
  /** Sidecar image. */
  image: string;
  /** Native sidecar (init container with restartPolicy Always, Kubernetes ≥ 1.29), else a plain container. */
  nativeSidecar: boolean;
  /** Default: what the API server would default it to (Always for `:latest` or no tag, else IfNotPresent). */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  proxyPortBase?: number;
  healthPort?: number;
  /** Replaces DEFAULT_SIDECAR_RESOURCES whole. */
  resources?: V1ResourceRequirements;
}

export interface MutateInput {
  pod: V1Pod;
  /** The request's namespace (a pod object may omit it); defaults to the pod's. Used in messages only. */
  namespace?: string;
  namespaceLabels: Readonly<Record<string, string>> | undefined;
  /** Every name the annotation lists, mapped to the import, or undefined if it does not exist. */
  imports: ReadonlyMap<string, ServiceAccountImport | undefined>;
  options: MutateOptions;
}

export type Skip = { kind: "skip"; reason: string };
export type Deny = { kind: "deny"; message: string };
export type MutateResult = Skip | Deny | { kind: "patch"; pod: V1Pod };
export type WantedImports = Skip | Deny | { kind: "imports"; names: string[] };

const skip = (reason: string): Skip => ({ kind: "skip", reason });
const deny = (message: string): Deny => ({ kind: "deny", message });

/** Quotes user input for a one-line message: escaped, and cut if long. */
function q(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Condition text comes from another component: keep our messages on one line and bounded. */
function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

export const proxyUrl = (port: number): string => `http://127.0.0.1:${port}`;

/**
 * Which imports the pod asks for, or why it is skipped or refused, from the pod and its
 * namespace alone: the admission layer calls this before looking any import up.
 */
export function wantedImports(pod: V1Pod, namespaceLabels: Readonly<Record<string, string>> | undefined): WantedImports {
  if (namespaceLabels?.[NAMESPACE_LABEL] !== NAMESPACE_LABEL_VALUE) {
    return skip(`namespace is not labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`);
  }
  const raw = pod.metadata?.annotations?.[IMPORT_ANNOTATION];
  if (raw === undefined) return skip(`pod has no ${IMPORT_ANNOTATION} annotation`);
  if (raw.length > MAX_ANNOTATION_LENGTH) {
    return deny(`annotation ${IMPORT_ANNOTATION} is ${raw.length} characters long, at most ${MAX_ANNOTATION_LENGTH} are allowed`);
  }
  const names = parseImportAnnotation(raw);
  if (names.length === 0) return skip(`annotation ${IMPORT_ANNOTATION} names no service account import`);
  if (names.length > MAX_IMPORTS_PER_POD) {
    return deny(`annotation ${IMPORT_ANNOTATION} names ${names.length} service account imports, at most ${MAX_IMPORTS_PER_POD} are allowed`);
  }
  for (const name of names) {
    // Also keeps odd strings out of API paths when the admission layer looks the names up.
    const invalid = validateDnsSubdomain(name);
    if (invalid !== undefined) {
      return deny(`annotation ${IMPORT_ANNOTATION} names ${q(name)}, which is not a valid service account import name: ${invalid}`);
    }
  }
  const collision = envCollision(names);
  return collision ?? { kind: "imports", names };
}

/** Two imports must not set the same env var (e.g. "a.b" and "a-b"), nor one clash with MCSA_PROXY_URL. */
function envCollision(names: readonly string[]): Deny | undefined {
  const owner = new Map<string, string>();
  for (const [i, name] of names.entries()) {
    const env = envVarName(name);
    if (env === PROXY_URL_ENV && i > 0) {
      return deny(
        `service account import ${q(name)} would set ${PROXY_URL_ENV}, which holds the first import's proxy (${q(names[0] ?? "")}): rename it or list it first`,
      );
    }
    const other = owner.get(env);
    if (other !== undefined) {
      return deny(`service account imports ${q(other)} and ${q(name)} would both set environment variable ${env}: rename one of them`);
    }
    owner.set(env, name);
  }
  return undefined;
}

function notReadyWhy(sai: ServiceAccountImport): string {
  const ready = readyCondition(sai);
  if (ready === undefined) return "it has no Ready condition yet";
  if (ready.status === "True") return "it has no Secret yet";
  const why = [ready.reason, ready.message].filter((s) => typeof s === "string" && s.trim() !== "").join(": ");
  return oneLine(why === "" ? `Ready is ${ready.status}` : why);
}

/** What one pass injects, resolved from the annotation, the imports and the options. */
interface Plan {
  imports: { name: string; port: number; secretName: string; volume: string }[];
  healthPort: number;
  /** `--proxy-allow`, from the pod's proxy-allow annotation: empty unless the pod opts in. */
  proxyAllow: string[];
  /** Env vars app containers get, in order: name → value. */
  env: Map<string, string>;
  /** False in proxy-only pods: app containers get no token file. */
  appToken: boolean;
}

/** The proxy-only annotation: true, false (also when absent), or a refusal naming the values. */
function proxyOnly(pod: V1Pod): boolean | Deny {
  const raw = pod.metadata?.annotations?.[PROXY_ONLY_ANNOTATION];
  if (raw === undefined || raw === "false") return false;
  if (raw === "true") return true;
  return deny(`annotation ${PROXY_ONLY_ANNOTATION} is ${q(raw)}: use "true" (app containers get no token, only the proxy) or "false"`);
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** The env vars a pass with these (import, port) pairs injects. */
function injectedEnv(imports: readonly { name: string; port: number }[]): Map<string, string> {
  const env = new Map<string, string>([["KUBECONFIG", POD_MERGED_KUBECONFIG]]);
  const first = imports[0];
  if (first !== undefined) env.set(PROXY_URL_ENV, proxyUrl(first.port));
  for (const { name, port } of imports) env.set(envVarName(name), proxyUrl(port));
  return env;
}

export function mutatePod(input: MutateInput): MutateResult {
  const { pod, options } = input;
  const wanted = wantedImports(pod, input.namespaceLabels);
  if (wanted.kind !== "imports") return wanted;
  const names = wanted.names;

  const healthPort = options.healthPort ?? SIDECAR_HEALTH_PORT;
  const base = options.proxyPortBase ?? SIDECAR_PROXY_PORT_BASE;
  if (!isPort(healthPort) || !isPort(base) || !isPort(base + names.length - 1)) {
    return deny(`webhook misconfigured: ports ${healthPort} and ${base}..${base + names.length - 1} must be within 1..65535`);
  }
  if (healthPort >= base && healthPort < base + names.length) {
    return deny(`webhook misconfigured: health port ${healthPort} falls among the proxy ports ${base}..${base + names.length - 1}`);
  }
  // Without native sidecars (Kubernetes < 1.29) the sidecar is a plain container that never
  // exits: a pod meant to run to completion (a Job's) would never complete.
  if (!options.nativeSidecar && (pod.spec?.restartPolicy === "Never" || pod.spec?.restartPolicy === "OnFailure")) {
    return deny(
      `pods with restartPolicy ${pod.spec.restartPolicy} need native sidecars (Kubernetes 1.29 or newer) to use service account imports: ` +
        "on this cluster the sidecar would keep the pod from ever completing",
    );
  }
  if (pod.spec?.hostNetwork === true) {
    // On the host's network the credential-free loopback proxy would serve every process on the node.
    return deny("pods with hostNetwork: true cannot use service account imports: their local proxy would be open to the whole node");
  }

  const namespace = input.namespace ?? pod.metadata?.namespace ?? "";
  const imports: Plan["imports"] = [];
  for (const [i, name] of names.entries()) {
    const sai = input.imports.get(name);
    if (sai === undefined) return deny(`service account import ${q(name)} not found in namespace ${q(namespace)}`);
    if (!isReady(sai)) return deny(`service account import ${q(name)} is not ready: ${notReadyWhy(sai)}`);
    const secretName = sai.status?.secrets?.[0]?.name;
    if (typeof secretName !== "string" || secretName === "") {
      return deny(`service account import ${q(name)} is not ready: its status names no Secret`);
    }
    imports.push({ name, port: base + i, secretName, volume: secretVolumeName(name) });
  }
  const only = proxyOnly(pod);
  if (typeof only !== "boolean") return only;
  const proxyAllow = parseProxyAllow(pod.metadata?.annotations?.[PROXY_ALLOW_ANNOTATION] ?? "");
  if ("error" in proxyAllow) return deny(`annotation ${PROXY_ALLOW_ANNOTATION}: ${proxyAllow.error}`);
  const plan: Plan = { imports, healthPort, proxyAllow, env: injectedEnv(imports), appToken: !only };

  const stripped = strip(structuredClone(pod), plan, options.nativeSidecar);
  const conflict = findConflict(stripped, plan, options.nativeSidecar);
  if (conflict !== undefined) return deny(conflict);
  return { kind: "patch", pod: inject(stripped, plan, options) };
}

/** JSON Patch turning the pod the API server sent into the desired one; empty when they are equal. */
export function webhookPatch(original: unknown, desired: unknown): JsonPatchOp[] {
  return diff(original, desired);
}

// ---------------------------------------------------------------------------------------------
// strip: remove what an earlier pass injected

const isSidecar = (c: V1Container): boolean => c.name === SIDECAR_CONTAINER_NAME;

/** Containers that get the files, KUBECONFIG and proxy URLs: apps, and init containers that run after a native sidecar. */
function targets(pod: V1Pod, native: boolean): V1Container[] {
  const spec = pod.spec;
  if (spec === undefined) return [];
  const all = [...(native ? (spec.initContainers ?? []) : []), ...spec.containers];
  return all.filter((c) => !isSidecar(c));
}

/** `--import=<name>=<port>` arguments of a sidecar we injected earlier. */
function sidecarImports(sidecar: V1Container | undefined): ImportPort[] {
  return importArgsOf(sidecar?.args);
}

/** Filters an optional array; an array emptied by us becomes absent, as the API server would return it. */
function filtered<T>(items: T[] | undefined, keep: (item: T) => boolean): T[] | undefined {
  if (items === undefined) return undefined;
  const kept = items.filter(keep);
  if (kept.length === items.length) return items;
  return kept.length > 0 ? kept : undefined;
}

function envKey(name: string, value: string): string {
  return `${name}\u0000${value}`;
}

/**
 * Removes injected parts. Only with our marker are the sidecar and its volumes ours; without it,
 * a container or volume with our names is the user's, and findConflict refuses the pod.
 * Env vars that equal exactly what we inject (same name, same literal value) are treated as ours
 * wherever they are: inject puts them back first in the list, so the result is a fixed point.
 */
function strip(pod: V1Pod, plan: Plan, native: boolean): V1Pod {
  const spec = pod.spec;
  if (spec === undefined) return pod;
  const annotations = pod.metadata?.annotations;
  const marked = annotations?.[INJECTED_ANNOTATION] !== undefined;
  const ours = new Set([...plan.env].map(([n, v]) => envKey(n, v)));

  if (marked) {
    const old = [...(spec.initContainers ?? []), ...spec.containers].find(isSidecar);
    // A previous pass may have injected other imports (e.g. a copied pod with an edited annotation).
    for (const [n, v] of injectedEnv(sidecarImports(old))) ours.add(envKey(n, v));
    const others = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => !isSidecar(c));
    const usedByOthers = new Set(others.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
    const sidecarVolumes = new Set((old?.volumeMounts ?? []).map((m) => m.name).filter((v) => !usedByOthers.has(v)));
    sidecarVolumes.add(CREDENTIALS_VOLUME_NAME);
    spec.initContainers = filtered(spec.initContainers, (c) => !isSidecar(c));
    spec.containers = spec.containers.filter((c) => !isSidecar(c));
    spec.volumes = filtered(spec.volumes, (v) => !sidecarVolumes.has(v.name));
    delete annotations?.[INJECTED_ANNOTATION];
  }
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    c.volumeMounts = filtered(c.volumeMounts, (m) => m.name !== CREDENTIALS_VOLUME_NAME);
  }
  // Env only in the containers we inject into: elsewhere an identical var is the user's and stays.
  for (const c of targets(pod, native)) {
    c.env = filtered(c.env, (e) => e.valueFrom !== undefined || e.value === undefined || !ours.has(envKey(e.name, e.value)));
  }
  return pod;
}

// ---------------------------------------------------------------------------------------------
// findConflict: what the user's pod already has that injection would clobber

function normalizePath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function findConflict(pod: V1Pod, plan: Plan, native: boolean): string | undefined {
  const spec = pod.spec;
  if (spec === undefined) return "pod has no spec";
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  if (all.some(isSidecar)) {
    return `pod already has a container named ${q(SIDECAR_CONTAINER_NAME)} that the webhook did not inject: rename it`;
  }
  const ourVolumes = new Set([CREDENTIALS_VOLUME_NAME, ...plan.imports.map((i) => i.volume)]);
  const taken = (spec.volumes ?? []).find((v) => ourVolumes.has(v.name));
  if (taken !== undefined) return `pod already has a volume named ${q(taken.name)}, which the webhook needs: rename it`;
  for (const c of targets(pod, native)) {
    const m = (c.volumeMounts ?? []).find((m) => normalizePath(m.mountPath) === POD_CREDENTIALS_ROOT);
    if (m !== undefined) return `container ${q(c.name)} already mounts volume ${q(m.name)} at ${POD_CREDENTIALS_ROOT}, where the webhook mounts the imports' files`;
  }
  const secretVolumes = new Set(plan.imports.map((i) => i.volume));
  const ports = new Set([plan.healthPort, ...plan.imports.map((i) => i.port)]);
  for (const c of all) {
    const m = (c.volumeMounts ?? []).find((m) => secretVolumes.has(m.name));
    if (m !== undefined) return `container ${q(c.name)} mounts volume ${q(m.name)}, which holds an import Secret only the sidecar may mount`;
    const p = (c.ports ?? []).find((p) => ports.has(p.containerPort));
    if (p !== undefined) return `container ${q(c.name)} declares port ${p.containerPort}, which the sidecar needs: use another port`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// inject

/** What the API server would default imagePullPolicy to, so a second pass sees no change. */
function defaultPullPolicy(image: string): string {
  if (image.includes("@")) return "IfNotPresent";
  const lastSegment = image.slice(image.lastIndexOf("/") + 1);
  const colon = lastSegment.lastIndexOf(":");
  const tag = colon === -1 ? "latest" : lastSegment.slice(colon + 1);
  return tag === "latest" ? "Always" : "IfNotPresent";
}

/** Probe with the API server's defaults spelled out (timeout 1, success 1, scheme HTTP). */
function httpProbe(path: string, port: number, periodSeconds: number, failureThreshold: number): V1Probe {
  return {
    httpGet: { path, port, scheme: "HTTP" },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 1,
    successThreshold: 1,
  };
}

const SIDECAR_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: SIDECAR_USER,
  runAsGroup: SIDECAR_USER,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

function sidecarContainer(plan: Plan, options: MutateOptions): V1Container {
  const mounts: V1VolumeMount[] = [
    { name: CREDENTIALS_VOLUME_NAME, mountPath: POD_CREDENTIALS_ROOT },
    ...plan.imports.map((i) => ({ name: i.volume, mountPath: `${SIDECAR_SECRETS_DIR}/${i.name}`, readOnly: true })),
  ];
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy ?? defaultPullPolicy(options.image),
    command: ["mcsa-sidecar"],
    args: [
      `--secrets-dir=${SIDECAR_SECRETS_DIR}`,
      `--output-dir=${POD_CREDENTIALS_ROOT}`,
      `--health-port=${plan.healthPort}`,
      ...plan.imports.map(formatImportArg),
      ...(plan.appToken ? [] : ["--no-app-token"]),
      ...(plan.proxyAllow.length > 0 ? [`--proxy-allow=${plan.proxyAllow.join(",")}`] : []),
    ],
    ...(options.nativeSidecar ? { restartPolicy: "Always" } : {}),
    ports: [{ name: HEALTH_PORT_NAME, containerPort: plan.healthPort, protocol: "TCP" }],
    // Native sidecar: the kubelet starts the next container only once this succeeds, i.e. once the files exist.
    startupProbe: httpProbe("/readyz", plan.healthPort, 1, 120),
    readinessProbe: httpProbe("/readyz", plan.healthPort, 10, 3),
    livenessProbe: httpProbe("/healthz", plan.healthPort, 10, 3),
    resources: structuredClone(options.resources ?? DEFAULT_SIDECAR_RESOURCES),
    securityContext: structuredClone(SIDECAR_SECURITY_CONTEXT),
    volumeMounts: mounts,
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function volumes(plan: Plan): V1Volume[] {
  return [
    { name: CREDENTIALS_VOLUME_NAME, emptyDir: { medium: "Memory", sizeLimit: CREDENTIALS_VOLUME_SIZE_LIMIT } },
    ...plan.imports.map((i) => ({ name: i.volume, secret: { secretName: i.secretName, defaultMode: SECRET_VOLUME_MODE } })),
  ];
}

/**
 * Ours go first: a user's own var of the same name wins (we never override it), and the user's
 * later vars may refer to ours as $(MCSA_..._URL). Env beats envFrom, so a KUBECONFIG coming from a
 * ConfigMap or Secret via envFrom would be shadowed: we cannot see those values here.
 */
function withEnv(existing: V1EnvVar[] | undefined, plan: Plan): V1EnvVar[] {
  const have = new Set((existing ?? []).map((e) => e.name));
  const ours = [...plan.env].filter(([name]) => !have.has(name)).map(([name, value]) => ({ name, value }));
  return [...ours, ...(existing ?? [])];
}

function inject(pod: V1Pod, plan: Plan, options: MutateOptions): V1Pod {
  const spec = pod.spec;
  if (spec === undefined) return pod;
  for (const c of targets(pod, options.nativeSidecar)) {
    c.env = withEnv(c.env, plan);
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: CREDENTIALS_VOLUME_NAME, mountPath: POD_CREDENTIALS_ROOT, readOnly: true }];
  }
  spec.volumes = [...(spec.volumes ?? []), ...volumes(plan)];
  const sidecar = sidecarContainer(plan, options);
  if (options.nativeSidecar) spec.initContainers = [sidecar, ...(spec.initContainers ?? [])];
  else spec.containers = [...spec.containers, sidecar];
  pod.metadata = pod.metadata ?? {};
  pod.metadata.annotations = { ...pod.metadata.annotations, [INJECTED_ANNOTATION]: INJECTED_ANNOTATION_VALUE };
  return pod;
}
