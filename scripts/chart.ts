// npm run chart -- --out DIR: the Helm chart of kubectl mcsa, generated from the objects
// `kubectl mcsa install` applies (installObjects() in plugin/commands/install.ts): one source.
//
//   DIR/Chart.yaml
//   DIR/values.yaml, values.schema.json   what varies: image, sidecarImage, imagePullPolicy, replicas,
//                                         resources, logLevel, namespaceSelector
//   DIR/crds/<name>.yaml                  the CRD (Helm installs it first, and never upgrades or deletes it)
//   DIR/templates/install.yaml            every other object, in install's order
//   DIR/templates/NOTES.txt
//
// How: installObjects() is called with marker strings where its options vary (images, pull policy,
// log level, the webhook's certificate); the fields the options do not reach (replicas, resources,
// the webhook's namespaceSelector) get markers set in the returned objects. The objects are dumped
// as YAML, and each marked scalar becomes a template expression. An object that install gains later
// is in the chart the next time it is generated, with nothing to change here. renderChart() is the
// same substitution in TypeScript: the unit tests check it against installObjects(), and the e2e
// test checks helm's own rendering against it.
//
// The webhook's serving certificate: install makes a CA and a serving pair at install time and keeps
// them in the Secret mcsa-webhook-tls. The chart does the same in the template: it looks the Secret
// up (`lookup`) and keeps it across upgrades, re-issues the serving certificate from the same CA when
// it has less than a year left (the date is kept in an annotation of the Secret), and makes a new CA
// and pair (genCAWithKey, genSignedCertWithKey; ECDSA P-256 keys, as install's) only when the Secret
// is missing. `helm template` and --dry-run cannot look anything up: they show a fresh pair.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type KubernetesObject, type V1Container, type V1Deployment, type V1LabelSelector, type V1MutatingWebhookConfiguration, type V1ResourceRequirements } from "@kubernetes/client-node";
import { dump } from "js-yaml";
import { GROUP, SYSTEM_NAMESPACE } from "../common/api.ts";
import { DEFAULT_IMAGE, MANAGER_NAME, PRODUCT_VERSION, WEBHOOK_SECRET, type WebhookTls, webhookDnsNames } from "../common/manifests.ts";
import { CA_DAYS, SERVING_DAYS, SERVING_MIN_REMAINING_DAYS } from "../common/serving-cert.ts";
import { installObjects } from "../plugin/commands/install.ts";
import { wireForm as printedForm } from "../plugin/output.ts";

export const CHART_NAME = "kubectl-mcsa";
/** On the webhook's Secret: when the serving certificate the chart made expires (RFC 3339, UTC). */
export const SERVING_NOT_AFTER_ANNOTATION = `${GROUP}/serving-cert-not-after`;
/** The manager's container in its Deployment. */
const MANAGER_CONTAINER = "manager";
const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;

export interface ChartValues {
  /** Image of the in-cluster process (install --image). */
  image: string;
  /** Image of the injected sidecar; "" means image (install --sidecar-image). */
  sidecarImage: string;
  /** "" leaves it to Kubernetes (install without --image-pull-policy). */
  imagePullPolicy: "" | (typeof PULL_POLICIES)[number];
  replicas: number;
  resources: V1ResourceRequirements;
  /** "" leaves the manager's default (install without --log-level). */
  logLevel: "" | (typeof LOG_LEVELS)[number];
  /** Namespaces where the webhook injects the sidecar. */
  namespaceSelector: V1LabelSelector;
}

/** The webhook's certificate material as the template holds it. */
export interface ChartTls extends WebhookTls {
  notAfter: string;
}

/** A marker in installObjects()' input or output: how helm fills it, and how renderChart() does. */
interface Marker {
  /** Go template expression of the value. */
  expr: string;
  /** The value for the TypeScript rendering. */
  value: (values: ChartValues, tls: ChartTls) => unknown;
  /** A string marker whose empty value drops the list item or mapping key that holds it. */
  optional?: boolean;
}

const MARK = "MCSAMARK";
const mark = (name: string): string => `${MARK}_${name}_`;
const MARKERS: Record<string, Marker> = {
  image: { expr: ".Values.image", value: (v) => v.image },
  sidecarImage: { expr: "(.Values.sidecarImage | default .Values.image)", value: (v) => v.sidecarImage || v.image },
  imagePullPolicy: { expr: ".Values.imagePullPolicy", value: (v) => v.imagePullPolicy, optional: true },
  logLevel: { expr: ".Values.logLevel", value: (v) => v.logLevel, optional: true },
  replicas: { expr: ".Values.replicas", value: (v) => v.replicas },
  resources: { expr: ".Values.resources", value: (v) => v.resources },
  namespaceSelector: { expr: ".Values.namespaceSelector", value: (v) => v.namespaceSelector },
  caBundle: { expr: "$tls.caBundle", value: (_, t) => t.caBundle },
  caKey: { expr: "$tls.caKey", value: (_, t) => t.caKey },
  cert: { expr: "$tls.cert", value: (_, t) => t.cert },
  key: { expr: "$tls.key", value: (_, t) => t.key },
  notAfter: { expr: "$tls.notAfter", value: (_, t) => t.notAfter },
};
const MARK_RE = new RegExp(`${MARK}_(${Object.keys(MARKERS).join("|")})_`, "g");

/** A string of installObjects' output that holds markers: literal text and marker names, base64-encoded or not. */
interface Hole {
  parts: ({ text: string } | { marker: string })[];
  base64: boolean;
}

function holeOf(s: string): Hole | undefined {
  const split = (text: string): Hole["parts"] | undefined => {
    if (!text.includes(MARK)) return undefined;
    const parts: Hole["parts"] = [];
    let last = 0;
    for (const m of text.matchAll(MARK_RE)) {
      if (m.index > last) parts.push({ text: text.slice(last, m.index) });
      parts.push({ marker: m[1]! });
      last = m.index + m[0].length;
    }
    if (last < text.length) parts.push({ text: text.slice(last) });
    if (parts.some((p) => "text" in p && p.text.includes(MARK))) throw new Error(`chart: unknown marker in ${JSON.stringify(text)}`);
    return parts;
  };
  const plain = split(s);
  if (plain) return { parts: plain, base64: false };
  if (/^[A-Za-z0-9+/]+=*$/.test(s)) {
    const decoded = Buffer.from(s, "base64").toString("utf8");
    const parts = Buffer.from(decoded).toString("base64") === s ? split(decoded) : undefined;
    if (parts) return { parts, base64: true };
  }
  return undefined;
}

/** The default values: install's own defaults, read from the objects install applies. */
export interface ChartModel {
  /** installObjects()' objects with markers, the CRDs apart. */
  objects: KubernetesObject[];
  crds: KubernetesObject[];
  defaults: ChartValues;
}

const isCrd = (o: KubernetesObject) => o.kind === "CustomResourceDefinition";

/** An object as the API server gets it from client-node (KubernetesObjectApi, which install applies with). */
/** As install sends them: the API's names (client-node's x_kubernetes_* become x-kubernetes-*). */
export function wireForm<T extends KubernetesObject>(object: T): T {
  return printedForm(object) as T;
}

function managerOf(objects: KubernetesObject[]): { deployment: V1Deployment; container: V1Container } {
  const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata?.name === MANAGER_NAME) as V1Deployment | undefined;
  if (!deployment?.spec?.template.spec) throw new Error(`chart: installObjects() has no Deployment ${MANAGER_NAME}`);
  const container = deployment.spec.template.spec.containers.find((c) => c.name === MANAGER_CONTAINER);
  if (!container) throw new Error(`chart: the Deployment ${MANAGER_NAME} has no container ${MANAGER_CONTAINER}`);
  return { deployment, container };
}

export function chartModel(): ChartModel {
  const tls: WebhookTls = { caBundle: mark("caBundle"), caKey: mark("caKey"), cert: mark("cert"), key: mark("key") };
  const tsObjects = installObjects({
    image: mark("image"),
    sidecarImage: mark("sidecarImage"),
    imagePullPolicy: mark("imagePullPolicy") as ChartValues["imagePullPolicy"] & string as "Always",
    logLevel: mark("logLevel"),
    tls,
    // Every Kubernetes the chart supports (Chart.yaml kubeVersion) has them, as install --dry-run=client assumes.
    matchConditions: true,
  });
  // As install sends them (client-node's names, e.g. x_kubernetes_list_type, become the API's).
  const objects = tsObjects.map(wireForm);
  const { deployment, container } = managerOf(objects);
  const webhooks = objects.filter((o): o is V1MutatingWebhookConfiguration => o.kind === "MutatingWebhookConfiguration").flatMap((o) => o.webhooks ?? []);
  if (webhooks.length === 0 || webhooks.some((w) => w.namespaceSelector === undefined)) throw new Error("chart: installObjects() has no webhook with a namespaceSelector");
  const defaults: ChartValues = {
    image: DEFAULT_IMAGE,
    sidecarImage: "",
    imagePullPolicy: "",
    replicas: deployment.spec!.replicas ?? 1,
    resources: structuredClone(container.resources ?? {}),
    logLevel: "",
    namespaceSelector: structuredClone(webhooks[0]!.namespaceSelector!),
  };
  (deployment.spec as unknown as Record<string, unknown>).replicas = mark("replicas");
  (container as unknown as Record<string, unknown>).resources = mark("resources");
  for (const w of webhooks) (w as unknown as Record<string, unknown>).namespaceSelector = mark("namespaceSelector");
  const secret = objects.find((o) => o.kind === "Secret" && o.metadata?.name === WEBHOOK_SECRET);
  if (!secret?.metadata) throw new Error(`chart: installObjects() has no Secret ${WEBHOOK_SECRET}`);
  secret.metadata.annotations = { ...secret.metadata.annotations, [SERVING_NOT_AFTER_ANNOTATION]: mark("notAfter") };
  return { objects: objects.filter((o) => !isCrd(o)), crds: objects.filter(isCrd), defaults };
}

/** Replaces each string with markers by what fill() gives for it; undefined drops it. */
function mapHoles(value: unknown, fill: (hole: Hole) => unknown): unknown {
  if (typeof value === "string") {
    const hole = holeOf(value);
    return hole ? fill(hole) : value;
  }
  if (Array.isArray(value)) return value.map((v) => mapHoles(v, fill)).filter((v) => v !== undefined);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const mapped = mapHoles(v, fill);
      if (mapped !== undefined) out[k] = mapped;
    }
    return out;
  }
  return value;
}

/** The objects helm renders for these values and certificate, computed in TypeScript (CRDs apart). */
export function renderChart(values: ChartValues, tls: ChartTls, model = chartModel()): KubernetesObject[] {
  return mapHoles(model.objects, (hole) => {
    const vals = hole.parts.map((p) => ("text" in p ? p.text : MARKERS[p.marker]!.value(values, tls)));
    if (hole.parts.some((p) => "marker" in p && MARKERS[p.marker]!.optional && vals[hole.parts.indexOf(p)] === "")) return undefined;
    const whole = vals.length === 1 && "marker" in hole.parts[0]! ? structuredClone(vals[0]) : vals.join("");
    return hole.base64 ? Buffer.from(String(whole)).toString("base64") : whole;
  }) as KubernetesObject[];
}

const goString = (s: string): string => JSON.stringify(s);

/** The template expression (JSON, hence YAML) of a hole, and the condition it needs if optional. */
function templateOf(hole: Hole): { expr: string; condition?: string } {
  let value: string;
  if (hole.parts.length === 1 && "marker" in hole.parts[0]!) {
    value = MARKERS[hole.parts[0].marker]!.expr;
  } else {
    const format = hole.parts.map((p) => ("text" in p ? p.text.replaceAll("%", "%%") : "%s")).join("");
    const args = hole.parts.filter((p) => "marker" in p).map((p) => MARKERS[p.marker]!.expr);
    value = `(printf ${goString(format)} ${args.join(" ")})`;
  }
  const optional = hole.parts.filter((p) => "marker" in p && MARKERS[p.marker]!.optional).map((p) => MARKERS[(p as { marker: string }).marker]!.expr);
  return {
    expr: `{{ ${value}${hole.base64 ? " | b64enc" : ""} | toJson }}`,
    ...(optional.length > 0 ? { condition: optional.length === 1 ? optional[0]! : `and ${optional.join(" ")}` } : {}),
  };
}

/** YAML of the objects with each hole as its template expression. */
export function templateYaml(objects: KubernetesObject[]): string {
  const holes = new Map<string, { expr: string; condition?: string }>();
  const tokened = mapHoles(objects, (hole) => {
    const token = `MCSAHOLE${String(holes.size).padStart(4, "0")}X`;
    holes.set(token, templateOf(hole));
    return token;
  }) as KubernetesObject[];
  const text = tokened.map((o) => `---\n${dump(o, { lineWidth: -1, noRefs: true })}`).join("");
  const used = new Set<string>();
  const lines = text.split("\n").flatMap((line) => {
    const tokens = line.match(/MCSAHOLE\d{4}X/g) ?? [];
    // Helm would take a literal "{{" in an object for an action.
    line = line.replaceAll("{{", '{{ "{{" }}');
    if (tokens.length === 0) return [line];
    const token = tokens[0]!;
    if (tokens.length > 1 || !line.endsWith(token)) throw new Error(`chart: a marked value is not a whole YAML scalar: ${line}`);
    used.add(token);
    const hole = holes.get(token)!;
    const filled = line.slice(0, -token.length) + hole.expr;
    if (hole.condition === undefined) return [filled];
    if (/^\s*- [^\s"']+: /.test(line)) throw new Error(`chart: an optional value is the first key of a list item: ${line}`);
    return [`{{- if ${hole.condition} }}`, filled, "{{- end }}"];
  });
  if (used.size !== holes.size) throw new Error("chart: a marked value was lost in the YAML");
  return lines.join("\n");
}

function tlsTemplate(): string {
  const dns = webhookDnsNames();
  const date = (hours: number) => `(dateInZone "2006-01-02T15:04:05Z07:00" (now | dateModify "+${hours}h") "UTC")`;
  const get = (key: string) => `(index $data ${goString(key)})`;
  return [
    "{{- /*",
    "The webhook's serving certificate and its CA, as `kubectl mcsa install` keeps them in the Secret",
    `${WEBHOOK_SECRET}: an existing Secret is kept across upgrades; its serving certificate is re-issued by the`,
    `same CA when it has less than ${SERVING_MIN_REMAINING_DAYS} days left; a new CA (${CA_DAYS} days) and serving certificate`,
    `(${SERVING_DAYS} days) are made only when the Secret is missing. Keys are ECDSA P-256, as install's. helm template`,
    "and --dry-run cannot look the Secret up, and show a fresh pair.",
    "*/}}",
    `{{- $secret := lookup "v1" "Secret" ${goString(SYSTEM_NAMESPACE)} ${goString(WEBHOOK_SECRET)} | default dict }}`,
    '{{- $data := get $secret "data" | default dict }}',
    `{{- $notAfter := dig "metadata" "annotations" ${goString(SERVING_NOT_AFTER_ANNOTATION)} "" $secret }}`,
    "{{- $tls := dict }}",
    `{{- if and ${["ca.crt", "ca.key", "tls.crt", "tls.key"].map(get).join(" ")} }}`,
    `{{-   $tls = dict "caBundle" (${get("ca.crt")} | b64dec) "caKey" (${get("ca.key")} | b64dec) "cert" (${get("tls.crt")} | b64dec) "key" (${get("tls.key")} | b64dec) "notAfter" $notAfter }}`,
    `{{-   if and $notAfter ((toDate "2006-01-02T15:04:05Z07:00" $notAfter).Before (now | dateModify "+${SERVING_MIN_REMAINING_DAYS * 24}h")) }}`,
    `{{-     $serving := genSignedCertWithKey ${goString(dns[0]!)} nil (list ${dns.map(goString).join(" ")}) ${SERVING_DAYS} (buildCustomCert ${get("ca.crt")} ${get("ca.key")}) (genPrivateKey "ecdsa") }}`,
    `{{-     $tls = merge (dict "cert" $serving.Cert "key" $serving.Key "notAfter" ${date(SERVING_DAYS * 24)}) $tls }}`,
    "{{-   end }}",
    "{{- else }}",
    `{{-   $ca := genCAWithKey "mcsa-webhook-ca" ${CA_DAYS} (genPrivateKey "ecdsa") }}`,
    `{{-   $serving := genSignedCertWithKey ${goString(dns[0]!)} nil (list ${dns.map(goString).join(" ")}) ${SERVING_DAYS} $ca (genPrivateKey "ecdsa") }}`,
    `{{-   $tls = dict "caBundle" $ca.Cert "caKey" $ca.Key "cert" $serving.Cert "key" $serving.Key "notAfter" ${date(SERVING_DAYS * 24)} }}`,
    "{{- end }}",
  ].join("\n");
}

function valuesYaml(defaults: ChartValues): string {
  const y = (value: unknown) => dump(value, { lineWidth: -1 }).trimEnd();
  const block = (comment: string[], key: keyof ChartValues) => {
    const v = y({ [key]: defaults[key] });
    return [...comment.map((c) => `# ${c}`), v, ""].join("\n");
  };
  return [
    "# Values of the kubectl-mcsa chart, generated by `npm run chart` from the objects `kubectl mcsa install`",
    "# applies. Each value matches an install flag or a field install sets; see docs/install.md.",
    "",
    block(["Image of the in-cluster process, the import controller and webhook (install --image)."], "image"),
    block(["Image of the sidecar the webhook injects into pods; empty: the same as image (install --sidecar-image)."], "sidecarImage"),
    block([`Pull policy of the in-cluster process: ${PULL_POLICIES.join(", ")}, or empty for Kubernetes' default (install --image-pull-policy).`], "imagePullPolicy"),
    block(["Replicas of the in-cluster process (its Deployment)."], "replicas"),
    block(["Resources of the in-cluster process's container."], "resources"),
    block([`Log level of the in-cluster process: ${LOG_LEVELS.join(", ")}, or empty for its default (install --log-level).`], "logLevel"),
    block(["Namespaces whose pods the webhook injects the sidecar into (a label selector)."], "namespaceSelector"),
  ].join("\n");
}

function valuesSchema(): unknown {
  const selector = {
    type: "object",
    additionalProperties: false,
    properties: {
      matchLabels: { type: "object", additionalProperties: { type: "string" } },
      matchExpressions: {
        type: "array",
        items: {
          type: "object",
          required: ["key", "operator"],
          additionalProperties: false,
          properties: {
            key: { type: "string" },
            operator: { enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
            values: { type: "array", items: { type: "string" } },
          },
        },
      },
    },
  };
  const quantities = { type: "object", additionalProperties: { type: ["string", "number"] } };
  return {
    $schema: "https://json-schema.org/draft-07/schema#",
    type: "object",
    additionalProperties: false,
    required: ["image", "replicas", "namespaceSelector"],
    properties: {
      image: { type: "string", minLength: 1 },
      sidecarImage: { type: "string" },
      imagePullPolicy: { enum: ["", ...PULL_POLICIES] },
      replicas: { type: "integer", minimum: 1 },
      resources: { type: "object", additionalProperties: false, properties: { requests: quantities, limits: quantities, claims: { type: "array" } } },
      logLevel: { enum: ["", ...LOG_LEVELS] },
      namespaceSelector: selector,
      // Helm's own: values shared with subcharts (this chart has none).
      global: { type: "object" },
    },
  };
}

/** The chart's files: path inside the chart → content. */
export function chartFiles(model = chartModel()): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    "Chart.yaml",
    dump(
      {
        apiVersion: "v2",
        name: CHART_NAME,
        description: "Multicluster service accounts: the ServiceAccountImport API, its controller and the webhook that injects the sidecar (what kubectl mcsa install applies).",
        type: "application",
        version: PRODUCT_VERSION,
        appVersion: `v${PRODUCT_VERSION}`,
        // Native sidecars (the webhook falls back to a plain container before 1.29) and the webhook's matchConditions (1.28).
        kubeVersion: ">=1.28.0-0",
        keywords: ["multicluster", "serviceaccount", "token"],
      },
      { lineWidth: -1 },
    ),
  );
  files.set("values.yaml", valuesYaml(model.defaults));
  files.set("values.schema.json", `${JSON.stringify(valuesSchema(), null, 2)}\n`);
  for (const crd of model.crds) files.set(`crds/${crd.metadata!.name}.yaml`, dump(crd, { lineWidth: -1, noRefs: true }));
  files.set(
    "templates/install.yaml",
    [
      "{{- /* Generated by `npm run chart` from installObjects() (plugin/commands/install.ts); do not edit. */}}",
      tlsTemplate(),
      templateYaml(model.objects),
    ].join("\n"),
  );
  files.set(
    "templates/NOTES.txt",
    [
      `kubectl mcsa is installed in the namespace ${SYSTEM_NAMESPACE}: deployment/${MANAGER_NAME} runs the import controller and the webhook.`,
      "The webhook injects the sidecar into annotated pods of the namespaces selected by namespaceSelector",
      "{{- with .Values.namespaceSelector.matchLabels }} (labels: {{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}){{ end }}.",
      "Next: kubectl mcsa bootstrap and kubectl mcsa import (docs/imports.md).",
      "Before helm uninstall, remove the imports (kubectl mcsa remove): the controller revokes their tokens.",
      "",
    ].join("\n"),
  );
  files.set(".helmignore", "*.tgz\n");
  return files;
}

/** Writes the chart into dir (a previous chart there replaced, anything else refused); returns the files' paths. */
export function writeChart(dir: string): string[] {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(join(dir, "Chart.yaml"))) throw new Error(`${dir} is not empty and holds no chart: give --out a new or empty directory`);
    rmSync(dir, { recursive: true, force: true });
  }
  const written: string[] = [];
  for (const [path, content] of chartFiles()) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    written.push(file);
  }
  return written;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" }, help: { type: "boolean", short: "h", default: false } } });
  if (values.help || values.out === undefined) {
    (values.help ? console.log : console.error)("usage: npm run chart -- --out DIR   (writes the Helm chart of kubectl mcsa into DIR, replacing it)");
    process.exit(values.help ? 0 : 2);
  }
  const dir = resolve(values.out);
  let files: string[];
  try {
    files = writeChart(dir);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(1);
  }
  console.log(`wrote the chart ${CHART_NAME} ${PRODUCT_VERSION} into ${dir} (${files.length} files): helm install mcsa ${dir}`);
}
