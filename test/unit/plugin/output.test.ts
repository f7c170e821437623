// kubectl's printers as pure functions: -o parsing, the object form kubectl prints, JSONPath and
// custom columns (the same expressions kubectl and the CRD's printer columns use).
import { describe, expect, it } from "vitest";
import { crd } from "../../../common/manifests.ts";
import { asPrinted, customColumns, parseOutput, renderJsonpath, table, toYaml, wireForm } from "../../../plugin/output.ts";

const object = {
  kind: "ServiceAccountImport",
  apiVersion: "multicluster.admiralty.io/v1alpha1",
  metadata: { name: "a", namespace: "default", managedFields: [{ manager: "x" }], creationTimestamp: new Date("2026-01-01T00:00:00.000Z"), labels: undefined },
  status: { conditions: [{ type: "Synced", status: "True" }, { type: "Ready", status: "False", reason: "Forbidden" }], secrets: [{ name: "s1" }, { name: "s2" }] },
};
const data = asPrinted([object, { ...object, metadata: { ...object.metadata, name: "b" } }], false);

describe("parseOutput", () => {
  it.each([
    [undefined, { kind: "table" }],
    ["wide", { kind: "wide" }],
    ["jsonpath={.items[*].metadata.name}", { kind: "jsonpath", template: "{.items[*].metadata.name}" }],
    ["custom-columns=NAME:.metadata.name", { kind: "custom-columns", template: "NAME:.metadata.name" }],
  ])("%s", (value, expected) => expect(parseOutput(value)).toEqual(expected));

  it("refuses what a command does not print, naming the flag and the allowed formats", () => {
    expect(() => parseOutput("wide", ["yaml", "json"])).toThrow('unable to match a printer suitable for the output format "wide", allowed formats are: yaml,json (flag -o/--output)');
    expect(() => parseOutput("jsonpath")).toThrow(/write -o jsonpath=TEMPLATE/);
    expect(() => parseOutput("jsonpath={.a[?(@.x=~/y/)]}")).toThrow(/error parsing jsonpath/);
  });
});

describe("the object form kubectl prints", () => {
  it("hides managedFields, drops undefined, sorts keys, prints times in RFC 3339", () => {
    expect(wireForm(object)).toEqual({
      apiVersion: "multicluster.admiralty.io/v1alpha1",
      kind: "ServiceAccountImport",
      metadata: { creationTimestamp: "2026-01-01T00:00:00Z", name: "a", namespace: "default" },
      status: object.status,
    });
    expect(Object.keys(wireForm(object) as object)).toEqual(["apiVersion", "kind", "metadata", "status"]);
    expect(toYaml(asPrinted([], false))).toBe("apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: ''");
  });

  it("spells the CRD schema's x-kubernetes-* keys as the API does, not as client-node's types (install --dry-run -o yaml is applied by others)", () => {
    const schema = toYaml(wireForm(crd()));
    expect(schema).toContain("x-kubernetes-");
    expect(schema).not.toContain("x_kubernetes_");
  });
});

describe("JSONPath as kubectl's", () => {
  it.each([
    ["{.items[*].metadata.name}", "a b"],
    ["{.items[0].metadata.name}", "a"],
    ["{.items[-1].metadata.name}", "b"],
    ["{.items[0:1].metadata.name}", "a"],
    ["{.items[0].status.conditions[?(@.type==\"Ready\")].reason}", "Forbidden"],
    ["{.items[0].status.conditions[?(@.reason)].type}", "Ready"],
    ["{.items[0].metadata['name']}", "a"],
    ["{..secrets[*].name}", "s1 s2 s1 s2"],
    ["{range .items[*]}{.metadata.name}{\"\\t\"}{.metadata.namespace}{\"\\n\"}{end}", "a\tdefault\nb\tdefault\n"],
    ["{.items[0].metadata.missing}", ""],
    ["name={.items[1].metadata.name}", "name=b"],
    [".kind", "List"],
    ["{.items[0].status.secrets[0]}", '{"name":"s1"}'],
  ])("%s", (template, expected) => expect(renderJsonpath(template, data)).toBe(expected));
});

describe("custom columns and tables", () => {
  it("one column per HEADER:PATH, several values joined by commas, none as <none>", () => {
    const objects = [wireForm(object)];
    expect(customColumns("NAME:.metadata.name,SECRETS:.status.secrets[*].name,MISSING:.spec.x", objects)).toBe("NAME   SECRETS   MISSING\na      s1,s2     <none>");
    expect(customColumns("NAME:metadata.name", objects, true)).toBe("a");
  });

  it("aligns like kubectl (3 spaces), and --no-headers drops the header", () => {
    expect(table([["NAME", "X"], ["long-name", "1"]])).toBe("NAME        X\nlong-name   1");
    expect(table([["NAME", "X"], ["long-name", "1"]], true)).toBe("long-name   1");
  });
});
