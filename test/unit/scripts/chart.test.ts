// The Helm chart generator (scripts/chart.ts): its objects are installObjects()' objects, each value
// reaches the field install's matching flag sets, the template text says the same as renderChart()
// (read here by a small evaluator of the few template forms the generator writes; the e2e test
// renders it with real helm), and an object install gains is in the chart by itself.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubernetesObject, V1Deployment, V1MutatingWebhookConfiguration, V1Secret } from "@kubernetes/client-node";
import { load as loadYaml, loadAll } from "js-yaml";
import { afterAll, describe, expect, it, vi } from "vitest";
import { SYSTEM_NAMESPACE } from "../../../common/api.ts";
import { DEFAULT_IMAGE, MANAGER_NAME, WEBHOOK_SECRET, crd } from "../../../common/manifests.ts";
import { installObjects } from "../../../plugin/commands/install.ts";
import {
  type ChartTls,
  type ChartValues,
  SERVING_NOT_AFTER_ANNOTATION,
  chartFiles,
  chartModel,
  renderChart,
  wireForm,
  writeChart,
} from "../../../scripts/chart.ts";
import { chartArchive } from "../../../scripts/package.ts";

/** Extra objects the mocked installObjects() appends, as if install had gained them. */
const extra = vi.hoisted(() => ({ objects: [] as KubernetesObject[] }));
vi.mock("../../../plugin/commands/install.ts", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../../plugin/commands/install.ts")>();
  return {
    ...original,
    installObjects: (options: Parameters<typeof original.installObjects>[0]) => [
      ...original.installObjects(options),
      ...extra.objects.map((o) => JSON.parse(JSON.stringify(o).replaceAll("$IMAGE", options.image)) as KubernetesObject),
    ],
  };
});

const tls: ChartTls = {
  caBundle: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
  caKey: "-----BEGIN PRIVATE KEY-----\nCAKEY\n-----END PRIVATE KEY-----\n",
  cert: "-----BEGIN CERTIFICATE-----\nSERVING\n-----END CERTIFICATE-----\n",
  key: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
  notAfter: "2031-12-01T08:00:00Z",
};
const defaults = chartModel().defaults;
const withValues = (v: Partial<ChartValues>): ChartValues => ({ ...defaults, ...v });

/** installObjects() as `kubectl mcsa install` calls it with its defaults (in cluster, matchConditions on). */
const installed = (options: Partial<Parameters<typeof installObjects>[0]> = {}) =>
  installObjects({ image: DEFAULT_IMAGE, sidecarImage: DEFAULT_IMAGE, tls, matchConditions: true, ...options })
    .filter((o) => o.kind !== "CustomResourceDefinition")
    .map(wireForm);

/** The chart's one addition to install's objects: the serving certificate's expiry on its Secret. */
function withoutNotAfter(objects: KubernetesObject[]): KubernetesObject[] {
  return objects.map((o) => {
    if (o.kind !== "Secret" || o.metadata?.name !== WEBHOOK_SECRET) return o;
    const copy = structuredClone(o);
    expect(copy.metadata!.annotations![SERVING_NOT_AFTER_ANNOTATION]).toBe(tls.notAfter);
    delete copy.metadata!.annotations![SERVING_NOT_AFTER_ANNOTATION];
    if (Object.keys(copy.metadata!.annotations!).length === 0) delete copy.metadata!.annotations;
    return copy;
  });
}

const find = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T => objects.find((o) => o.kind === kind) as T;
const manager = (objects: KubernetesObject[]) => {
  const d = objects.find((o) => o.kind === "Deployment" && o.metadata?.name === MANAGER_NAME) as V1Deployment;
  return { deployment: d, container: d.spec!.template.spec!.containers[0]! };
};

// --- a small evaluator of the template forms the generator writes ------------------------------

type Value = unknown;
interface Scope {
  values: ChartValues;
  tls: ChartTls;
}

/** Evaluates one pipeline: .Values.x, $tls.x, "string", (pipeline), printf FMT ARGS..., | default X, | b64enc, | toJson. */
function evaluate(source: string, scope: Scope): Value {
  const tokens = source.match(/"(?:[^"\\]|\\.)*"|[()|]|[^\s()|]+/g) ?? [];
  let i = 0;
  const operand = (): Value => {
    const t = tokens[i++]!;
    if (t === "(") {
      const v = pipeline();
      expect(tokens[i++]).toBe(")");
      return v;
    }
    if (t.startsWith('"')) return JSON.parse(t) as string;
    if (t.startsWith(".Values.")) return (scope.values as unknown as Record<string, Value>)[t.slice(8)];
    if (t.startsWith("$tls.")) return (scope.tls as unknown as Record<string, Value>)[t.slice(5)];
    throw new Error(`unexpected ${t} in ${source}`);
  };
  const command = (input?: { value: Value }): Value => {
    const name = tokens[i];
    if (name === "printf") {
      i++;
      const format = operand() as string;
      const args: Value[] = [];
      while (i < tokens.length && tokens[i] !== "|" && tokens[i] !== ")") args.push(operand());
      if (input) args.push(input.value);
      let n = 0;
      return format.replace(/%%|%s/g, (m) => (m === "%%" ? "%" : String(args[n++])));
    }
    if (name === "default") {
      i++;
      const fallback = operand();
      return input!.value === "" || input!.value === undefined ? fallback : input!.value;
    }
    if (name === "toJson") return i++, JSON.stringify(input!.value);
    if (name === "b64enc") return i++, Buffer.from(String(input!.value)).toString("base64");
    if (name === "and") {
      i++;
      const args: Value[] = [];
      while (i < tokens.length && tokens[i] !== "|" && tokens[i] !== ")") args.push(operand());
      return args.every(Boolean);
    }
    expect(input).toBeUndefined();
    return operand();
  };
  const pipeline = (): Value => {
    let value = command();
    while (tokens[i] === "|") {
      i++;
      value = command({ value });
    }
    return value;
  };
  const result = pipeline();
  expect(i, `the whole of ${source}`).toBe(tokens.length);
  return result;
}

/** The objects the template gives for these values, the certificate preamble skipped. */
function evaluateTemplate(template: string, scope: Scope): KubernetesObject[] {
  const body = template.slice(template.indexOf("\n---\n") + 1);
  const out: string[] = [];
  let skipping = false;
  for (const line of body.split("\n")) {
    const control = /^\{\{- (if (.*)|end) \}\}$/.exec(line);
    if (control) {
      skipping = control[1] === "end" ? false : !evaluate(control[2]!, scope);
      continue;
    }
    if (skipping) continue;
    out.push(line.replace(/\{\{ (.*?) \}\}/g, (_, expr: string) => String(evaluate(expr, scope))));
  }
  return loadAll(out.join("\n")).filter((o) => o !== null) as KubernetesObject[];
}

const template = () => chartFiles().get("templates/install.yaml")!;

describe("the chart's objects are install's objects", () => {
  it("with the default values: equal to installObjects() with install's defaults, but for the certificate's expiry on its Secret", () => {
    expect(withoutNotAfter(renderChart(defaults, tls))).toEqual(installed());
    expect(withoutNotAfter(evaluateTemplate(template(), { values: defaults, tls }))).toEqual(installed());
  });

  it("the defaults are install's: its image, its replicas, resources and namespaceSelector; no pull policy or log level", () => {
    const { deployment, container } = manager(installed());
    const webhook = find<V1MutatingWebhookConfiguration>(installed(), "MutatingWebhookConfiguration").webhooks![0]!;
    expect(defaults).toEqual({
      image: DEFAULT_IMAGE,
      sidecarImage: "",
      imagePullPolicy: "",
      replicas: deployment.spec!.replicas,
      resources: container.resources,
      logLevel: "",
      namespaceSelector: webhook.namespaceSelector,
    });
    expect(webhook.namespaceSelector).toEqual({ matchLabels: { "multicluster-service-account": "enabled" } });
    expect(loadYaml(chartFiles().get("values.yaml")!)).toEqual(defaults);
  });

  it("the CRD is in crds/, as crd() makes it, and not among the templates", () => {
    const files = chartFiles();
    const file = loadYaml(files.get(`crds/${crd().metadata!.name}.yaml`)!) as object;
    expect(file).toEqual(wireForm(crd()));
    // The API's names, not client-node's (which it renames when it sends an object).
    expect(JSON.stringify(file)).toContain('"x-kubernetes-list-type":"map"');
    expect(JSON.stringify(file)).not.toContain("x_kubernetes");
    expect(template()).not.toMatch(/kind: CustomResourceDefinition/);
  });
});

describe("each value reaches the field install's matching flag sets", () => {
  const cases: { name: string; values: Partial<ChartValues>; install: Partial<Parameters<typeof installObjects>[0]> }[] = [
    { name: "image (--image; the sidecar follows it)", values: { image: "registry.example/mcsa:v9" }, install: { image: "registry.example/mcsa:v9", sidecarImage: "registry.example/mcsa:v9" } },
    { name: "sidecarImage (--sidecar-image)", values: { sidecarImage: "registry.example/sidecar:v9" }, install: { sidecarImage: "registry.example/sidecar:v9" } },
    { name: "imagePullPolicy (--image-pull-policy)", values: { imagePullPolicy: "Never" }, install: { imagePullPolicy: "Never" } },
    { name: "logLevel (--log-level)", values: { logLevel: "debug" }, install: { logLevel: "debug" } },
    {
      name: "all of them",
      values: { image: "a/b:1", sidecarImage: "c/d:2", imagePullPolicy: "Always", logLevel: "warn" },
      install: { image: "a/b:1", sidecarImage: "c/d:2", imagePullPolicy: "Always", logLevel: "warn" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const values = withValues(c.values);
      expect(withoutNotAfter(renderChart(values, tls))).toEqual(installed(c.install));
      expect(withoutNotAfter(evaluateTemplate(template(), { values, tls }))).toEqual(installed(c.install));
    });
  }

  it("replicas, resources and namespaceSelector: the Deployment's and the webhook's fields", () => {
    const values = withValues({
      replicas: 3,
      resources: { requests: { cpu: "1", memory: "1Gi" } },
      namespaceSelector: { matchExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }] },
    });
    for (const objects of [renderChart(values, tls), evaluateTemplate(template(), { values, tls })]) {
      const { deployment, container } = manager(objects);
      expect(deployment.spec!.replicas).toBe(3);
      expect(container.resources).toEqual({ requests: { cpu: "1", memory: "1Gi" } });
      expect(find<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration").webhooks![0]!.namespaceSelector).toEqual(values.namespaceSelector);
      // Nothing else moved.
      const expected = installed();
      manager(expected).deployment.spec!.replicas = 3;
      manager(expected).container.resources = values.resources;
      find<V1MutatingWebhookConfiguration>(expected, "MutatingWebhookConfiguration").webhooks![0]!.namespaceSelector = values.namespaceSelector;
      expect(withoutNotAfter(objects)).toEqual(expected);
    }
  });

  it("the certificate: the Secret holds the pair and the CA, the webhook trusts the CA", () => {
    const objects = evaluateTemplate(template(), { values: defaults, tls });
    const secret = find<V1Secret>(objects, "Secret");
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    expect(secret.metadata).toMatchObject({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE, annotations: { [SERVING_NOT_AFTER_ANNOTATION]: tls.notAfter } });
    expect(secret.data).toEqual({ "tls.crt": b64(tls.cert), "tls.key": b64(tls.key), "ca.crt": b64(tls.caBundle), "ca.key": b64(tls.caKey) });
    expect(find<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration").webhooks![0]!.clientConfig.caBundle).toBe(b64(tls.caBundle));
  });

  it("the template looks an existing Secret up, keeps it, re-issues an expiring serving certificate from its CA, and generates a pair only without one", () => {
    const t = template();
    expect(t).toContain(`lookup "v1" "Secret" "${SYSTEM_NAMESPACE}" "${WEBHOOK_SECRET}"`);
    expect(t).toMatch(/buildCustomCert \(index \$data "ca.crt"\) \(index \$data "ca.key"\)/);
    expect(t).toMatch(/genCAWithKey "mcsa-webhook-ca" 3650 \(genPrivateKey "ecdsa"\)/);
    expect(t).toMatch(/genSignedCertWithKey "mcsa-webhook\.multicluster-service-account\.svc" nil \(list "mcsa-webhook\.multicluster-service-account\.svc" "mcsa-webhook\.multicluster-service-account\.svc\.cluster\.local"\) 1825 (\$ca|\(buildCustomCert [^)]*\) [^)]*\)) \(genPrivateKey "ecdsa"\)/);
    expect(t).not.toMatch(/MCSAMARK|MCSAHOLE/);
  });
});

describe("what install gains is in the chart by itself", () => {
  afterAll(() => {
    extra.objects = [];
  });

  it("a new object, with install's options in it, and a literal {{ kept literal", () => {
    extra.objects = [
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "mcsa-manager", namespace: SYSTEM_NAMESPACE, annotations: { note: "runs $IMAGE", literal: "{{ not an action }}" } },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      } as KubernetesObject,
    ];
    const values = withValues({ image: "registry.example/mcsa:v9" });
    const expected = {
      ...extra.objects[0]!,
      metadata: { ...extra.objects[0]!.metadata, annotations: { note: "runs registry.example/mcsa:v9", literal: "{{ not an action }}" } },
    };
    const t = template();
    expect(t).toContain("kind: NetworkPolicy");
    expect(t).toContain(`literal: '{{ "{{" }} not an action }}'`);
    expect(renderChart(values, tls).at(-1)).toEqual(expected);
    // The evaluator knows no {{ "{{" }}: helm's rendering of it is in the e2e test.
    expect(evaluateTemplate(t.replaceAll('{{ "{{" }}', "LBRACES"), { values, tls }).at(-1)).toEqual({
      ...expected,
      metadata: { ...expected.metadata, annotations: { ...expected.metadata!.annotations, literal: "LBRACES not an action }}" } },
    });
  });
});

describe("npm run chart -- --out DIR", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcsa-chart-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the chart, replaces a previous one, and refuses a directory that holds something else", () => {
    const out = join(dir, "chart");
    const files = writeChart(out);
    expect(files.map((f) => f.slice(out.length + 1)).sort()).toEqual(
      [".helmignore", "Chart.yaml", "values.yaml", "values.schema.json", `crds/${crd().metadata!.name}.yaml`, "templates/install.yaml", "templates/NOTES.txt"].sort(),
    );
    writeFileSync(join(out, "stale.yaml"), "x");
    writeChart(out);
    expect(() => readFileSync(join(out, "stale.yaml"))).toThrow();
    const other = join(dir, "other");
    mkdirSync(other);
    writeFileSync(join(other, "keep.txt"), "mine");
    expect(() => writeChart(other)).toThrow(/is not empty and holds no chart: give --out a new or empty directory/);
    expect(readFileSync(join(other, "keep.txt"), "utf8")).toBe("mine");
  });

  it("docs/install.md's values table lists every value with its default", () => {
    const docs = readFileSync(join(import.meta.dirname, "../../../docs/install.md"), "utf8").split("## With Helm")[1]!;
    const rows = [...docs.matchAll(/^\| `(\w+)` \| `([^`]*)` \|/gm)].map((m) => [m[1]!, JSON.parse(m[2]!) as unknown]);
    expect(Object.fromEntries(rows)).toEqual(defaults);
  });

  it("values.schema.json names every value and allows only install's choices", () => {
    const schema = JSON.parse(chartFiles().get("values.schema.json")!) as { properties: Record<string, { enum?: string[] }> };
    expect(Object.keys(schema.properties).filter((k) => k !== "global").sort()).toEqual(Object.keys(defaults).sort());
    expect(schema.properties.logLevel!.enum).toEqual(["", "debug", "info", "warn", "error"]);
    expect(schema.properties.imagePullPolicy!.enum).toEqual(["", "Always", "IfNotPresent", "Never"]);
  });

  it("the release's chart archive (npm run package) lays the same files out as helm package does, the same bytes each time", () => {
    const archive = chartArchive("1.2.3");
    expect(archive.name).toBe("kubectl-mcsa-1.2.3.tgz");
    const file = join(dir, archive.name);
    writeFileSync(file, archive.data);
    const names = execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).trim().split("\n").sort();
    expect(names).toEqual([...chartFiles().keys()].map((p) => `kubectl-mcsa/${p}`).sort());
    expect(execFileSync("tar", ["-xzOf", file, "kubectl-mcsa/templates/install.yaml"], { encoding: "utf8" })).toBe(template());
    expect(chartArchive("1.2.3").data.equals(archive.data)).toBe(true);
  });
});
