// Every command without a cluster: its validation and one-line errors, its output, through the
// whole command line (yargs included) with injected streams and fake sessions.
import { describe, expect, it } from "vitest";
import { parseImportSecret } from "../../../common/import-secret.ts";
import { buildImportSecretData } from "../../../common/import-secret.ts";
import { type FakeCluster, expectOneLineError, pod, registration, run, sai } from "./fake.ts";

const cluster1 = (extra: Partial<FakeCluster> = {}): FakeCluster => ({ context: "cluster1", registrations: [registration("cluster2")], ...extra });
const cluster2 = (extra: Partial<FakeCluster> = {}): FakeCluster => ({
  context: "cluster2",
  caPem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----",
  serviceAccounts: [{ metadata: { name: "pod-lister", namespace: "default" } }],
  ...extra,
});
const IMPORT = ["import", "cluster2-default-pod-lister", "--cluster", "cluster2", "--remote-namespace", "default", "--service-account", "pod-lister"];

describe("argument errors: one whole line that names the flag and what it accepts, exit 1, nothing on stdout", () => {
  it.each([
    [["delete", "x"], /^error: unknown command "delete" for "kubectl mcsa": did you mean "remove"\?$/],
    [["lst"], /did you mean "list"\?/],
    [["frobnicate"], /unknown command "frobnicate".*kubectl mcsa --help lists the commands/],
    [[], /name a command/],
    [["get", "--bogus"], /^error: unknown flag --bogus \(see --help/],
    [["get", "-o", "bogus"], /output format "bogus".*allowed formats are: custom-columns,json,jsonpath,name,wide,yaml \(flag -o\/--output\)/],
    [["get", "-o", "jsonpath="], /-o jsonpath= needs a template/],
    [["get", "-o", "jsonpath={range .items[*]}"], /error parsing jsonpath.*\{range\} without \{end\}/],
    [["get", "-o", "custom-columns=NAME"], /custom-columns format "NAME" is not HEADER:JSONPATH/],
    [["get", "x", "-A"], /cannot be retrieved by name across all namespaces/],
    [["get", "x", "-l", "a=b"], /a name and -l\/--selector cannot go together/],
    [["install", "--dry-run=bogus"], /^error: invalid value "bogus" for --dry-run: allowed values are none, client/],
    [["install", "--dry-run=server"], /--dry-run=server is not supported.*--dry-run=client/],
    [["install", "-o", "yaml"], /-o\/--output goes with --dry-run=client/],
    [["install", "--dry-run=client", "-o", "wide"], /invalid value "wide" for -o\/--output: allowed values are yaml, json/],
    [["install", "--image-pull-policy", "Sometimes"], /^error: invalid value "Sometimes" for --image-pull-policy: allowed values are Always, IfNotPresent, Never$/],
    [["install", "--webhook-url", "http://x"], /--webhook-url must be an https URL/],
    [["import"], /^error: not enough arguments: got 0, expected 1 \(usage: kubectl mcsa import <name>\)$/],
    [["describe"], /^error: not enough arguments: got 0, expected 1 \(usage: kubectl mcsa describe <name>\)$/],
    [["get", "a", "b"], /^error: unexpected argument "b" \(usage: kubectl mcsa get \[name\]\)$/],
    [["version", "x", "--bogus"], /^error: unexpected argument "x" \(usage: kubectl mcsa version\)$/],
    [["import", "x"], /^error: missing required arguments --cluster, --remote-namespace, --service-account \(see --help\)$/],
    [[...IMPORT.slice(0, 1), "Bad_Name", ...IMPORT.slice(2)], /invalid name "Bad_Name"/],
    [[...IMPORT, "--ttl", "1m"], /--ttl must be at least 10m/],
    [[...IMPORT, "--ttl", "1d"], /invalid value "1d" for --ttl: unknown unit "d"/],
    [[...IMPORT, "--ttl", "169h"], /--ttl must be at most 168h \(7 days/],
    [[...IMPORT, "--max-expiration", "1m"], /--max-expiration must be from 10m to 168h, not 1m/],
    [[...IMPORT, "--ttl", "2h", "--max-expiration", "1h"], /--max-expiration 1h is shorter than the token lifetime the import asks \(2h\): raise it, or lower --ttl/],
    [[...IMPORT, "--audience", "a,b"], /invalid --audience "a,b": .*repeat --audience/],
    [[...IMPORT, "--timeout", "10s"], /--timeout only makes sense with --wait/],
    [[...IMPORT, "--dry-run=client", "--wait"], /--wait cannot go with --dry-run=client/],
    [["bootstrap", "--from", "a", "--to", "a"], /--from and --to name the same context/],
    [["bootstrap", "--from", "a", "--to", "b", "--name", "Not_A_Label"], /invalid --name "Not_A_Label"/],
    [["bootstrap", "--from", "a", "--to", "b", "--server", "http://x"], /--server must be an https URL/],
    [["bootstrap", "--from", "a"], /missing required argument --to/],
    [["unbootstrap", "--from", "a", "--to", "a"], /--from and --to name the same context/],
    [["rotate", "x", "--timeout", "soon"], /invalid value "soon" for --timeout/],
    [["remove", "x", "--timeout=-1s"], /invalid value "-1s" for --timeout: must be positive/],
    [["export", "Bad_SA"], /invalid service account name "Bad_SA"/],
    [["export", "sa", "--ttl", "5m"], /--ttl must be at least 10m/],
    [["export", "sa", "-o", "name"], /invalid value "name" for -o\/--output: allowed values are yaml, json/],
    [["uninstall", "--timeout", "x"], /invalid value "x" for --timeout/],
  ])("%j", async (argv, pattern) => {
    const result = await run(argv, [cluster1()]);
    expect(expectOneLineError(result)).toMatch(pattern);
  });

  it("a bare --dry-run acts as kubectl's: client, with kubectl's deprecation warning", async () => {
    const result = await run(["install", "--dry-run"]);
    expect(result.code).toBe(0);
    expect(result.err).toBe("warning: --dry-run is deprecated and can be replaced with --dry-run=client.\n");
    expect(result.out).toMatch(/^apiVersion: v1\nkind: Namespace\n/);
  });
});

describe("get", () => {
  const imports = [sai("a"), sai("b", { namespace: "other" }), sai("c", { ready: false })];

  it("prints the namespace's imports as a table, and says so when there are none", async () => {
    const result = await run(["get"], [cluster1({ imports })]);
    expect(result.out.split("\n")[0]).toMatch(/^NAME\s+CLUSTER\s+REMOTE-NAMESPACE\s+SERVICE-ACCOUNT\s+READY\s+EXPIRES-IN\s+AGE$/);
    expect(result.out.trim().split("\n").map((l) => l.split(/\s+/)[0])).toEqual(["NAME", "a", "c"]);
    const none = await run(["get", "-n", "empty"], [cluster1({ imports })]);
    expect(none).toMatchObject({ code: 0, out: "", err: "No resources found in empty namespace.\n" });
  });

  it.each([["-o", "wide"], ["-owide"], ["-o=wide"], ["--output=wide"], ["--output", "wide"]])("takes -o in every form kubectl does: %j", async (...flag) => {
    const result = await run(["get", ...flag], [cluster1({ imports })]);
    expect(result.code, result.err).toBe(0);
    expect(result.out.split("\n")[0]).toMatch(/READY\s+REASON\s+SECRET\s+EXPIRES-IN/);
  });

  it("--no-headers, -A and -l", async () => {
    const result = await run(["get", "-A", "--no-headers", "-l", "team=a"], [cluster1({ imports })]);
    expect(result.out.trim().split("\n").map((l) => l.split(/\s+/).slice(0, 2).join("/"))).toEqual(["default/a", "other/b", "default/c"]);
    expect(result.sessions.get("cluster1")!.calls).toContainEqual(["listImports", true, "team=a"]);
  });

  it("-o yaml of a list is kubectl's List; of one name, the object: keys sorted, no managedFields, RFC 3339 times", async () => {
    const list = await run(["get", "-oyaml"], [cluster1({ imports })]);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(/^apiVersion: v1\nitems:\n {2}- apiVersion: multicluster.admiralty.io\/v1alpha1\n/);
    expect(list.out).toMatch(/\nkind: List\nmetadata:\n {2}resourceVersion: ''\n$/);
    const one = await run(["get", "a", "-o", "yaml"], [cluster1({ imports })]);
    expect(one.out).toMatch(/^apiVersion: multicluster.admiralty.io\/v1alpha1\nkind: ServiceAccountImport\nmetadata:\n {2}creationTimestamp: '2026-01-01T00:00:00Z'\n/);
    expect(one.out).not.toContain("managedFields");
    expect(one.out).not.toContain(".000Z");
    const json = await run(["get", "-o", "json"], [cluster1({ imports })]);
    expect(JSON.parse(json.out)).toMatchObject({ apiVersion: "v1", kind: "List", items: [{ metadata: { name: "a" } }, { metadata: { name: "c" } }] });
    expect(json.out).toContain('\n    "items": [');
  });

  it("-o name, -o jsonpath and -o custom-columns", async () => {
    expect((await run(["get", "-o", "name"], [cluster1({ imports })])).out).toBe(
      "serviceaccountimport.multicluster.admiralty.io/a\nserviceaccountimport.multicluster.admiralty.io/c\n",
    );
    expect((await run(["get", "-o", "jsonpath={.items[*].metadata.name}"], [cluster1({ imports })])).out).toBe("a c");
    expect((await run(["get", "a", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}'], [cluster1({ imports })])).out).toBe("TokenIssued");
    const columns = await run(["get", "-o", 'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status'], [cluster1({ imports })]);
    expect(columns.out).toBe("NAME   READY\na      True\nc      <none>\n");
  });

  it("says which context lacks the API", async () => {
    expect(expectOneLineError(await run(["get"], [cluster1({ crdMissing: true })]))).toBe(
      'error: the ServiceAccountImport API is not installed in context "cluster1": run kubectl mcsa install --context cluster1',
    );
    expect(expectOneLineError(await run(["get", "zz"], [cluster1({ imports })]))).toBe('error: serviceaccountimport "zz" not found in namespace "default" (context "cluster1")');
  });
});

describe("import", () => {
  it("--dry-run=client -o yaml: only YAML on stdout, each cluster's objects under a comment naming it, nothing created", async () => {
    const result = await run([...IMPORT, "--dry-run=client", "-o", "yaml"], [cluster1(), cluster2()]);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toBe("");
    const [local, remote] = result.out.split("\n---\n# ");
    expect(local).toMatch(/^# cluster of context "cluster1": kubectl apply --context cluster1 -f -\napiVersion: multicluster.admiralty.io\/v1alpha1\nkind: ServiceAccountImport\n/);
    expect(remote).toMatch(/^cluster "cluster2" \(the remote\)/);
    expect(remote).toContain("kind: Role\n");
    expect(remote).toContain("kind: RoleBinding\n");
    expect(result.sessions.get("cluster1")!.calls.filter((c) => c[0] !== "listImports")).toEqual([]);
  });

  it("--dry-run=client -o json: one List per cluster", async () => {
    const result = await run([...IMPORT, "--dry-run=client", "-ojson"], [cluster1(), cluster2()]);
    const lists = result.out.trim().split(/\n(?=\{)/).map((t) => JSON.parse(t) as { kind: string; items: { kind: string }[] });
    expect(lists.map((l) => l.items.map((i) => i.kind))).toEqual([["ServiceAccountImport"], ["Secret", "Role", "RoleBinding"]]);
  });

  it("without --remote-context: the grant alone on stdout (to pipe to kubectl apply), status lines on stderr", async () => {
    const result = await run(IMPORT, [cluster1(), cluster2()]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/^apiVersion: v1\nkind: Secret\n/);
    expect(result.out).not.toContain("created");
    expect(result.err).toMatch(/^serviceaccountimport.multicluster.admiralty.io\/cluster2-default-pod-lister created in namespace "default"\n# no --remote-context/);
  });

  it("the grant records what it allows: the requested audiences, and a day or the --ttl if longer, or --max-expiration", async () => {
    const annotations = async (...extra: string[]) => {
      const result = await run([...IMPORT, "--dry-run=client", "-ojson", ...extra], [cluster1(), cluster2()]);
      const lists = result.out.trim().split(/\n(?=\{)/).map((t) => JSON.parse(t) as { items: { metadata: { annotations?: Record<string, string> } }[] });
      return lists[1]!.items[0]!.metadata.annotations;
    };
    expect(await annotations()).toMatchObject({
      "multicluster.admiralty.io/grant-service-account": "pod-lister",
      "multicluster.admiralty.io/grant-audiences": "",
      "multicluster.admiralty.io/grant-max-expiration-seconds": "86400",
    });
    expect(await annotations("--ttl", "48h", "--audience", "vault", "--audience", "x")).toMatchObject({
      "multicluster.admiralty.io/grant-audiences": "vault,x",
      "multicluster.admiralty.io/grant-max-expiration-seconds": "172800",
    });
    expect(await annotations("--max-expiration", "2h")).toMatchObject({ "multicluster.admiralty.io/grant-max-expiration-seconds": "7200" });
  });

  it("with --remote-context: grants, then creates; a missing remote service account creates nothing", async () => {
    const ok = await run([...IMPORT, "--remote-context", "cluster2"], [cluster1(), cluster2()]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toBe('serviceaccountimport.multicluster.admiralty.io/cluster2-default-pod-lister created in namespace "default"\n');
    expect(ok.sessions.get("cluster2")!.calls.map((c) => c[0])).toEqual(["applyGrant"]);
    const missing = await run([...IMPORT.slice(0, -1), "nobody", "--remote-context", "cluster2"], [cluster1(), cluster2()]);
    expect(expectOneLineError(missing)).toMatch(/service account "nobody" not found in namespace "default" of context "cluster2"/);
    expect(missing.sessions.get("cluster1")!.calls).toEqual([]);
  });

  it("names the bootstrap to run for an unregistered cluster", async () => {
    const result = await run([...IMPORT.slice(0, 2), "--cluster", "cluster9", ...IMPORT.slice(4)], [cluster1()]);
    expect(expectOneLineError(result)).toMatch(/cluster "cluster9" is not registered in context "cluster1": run kubectl mcsa bootstrap --from <context of cluster9> --to cluster1 --name cluster9/);
  });
});

describe("bootstrap --dry-run=client", () => {
  it("prints each cluster's objects (the grant policy too), the registration without a token", async () => {
    const result = await run(["bootstrap", "--from", "cluster2", "--to", "cluster1", "--dry-run=client", "-o", "yaml"], [cluster1({ uid: "uid-1" }), cluster2()]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/^# context "cluster2" \(the remote\)/);
    expect(result.out).toContain('\n---\n# context "cluster1": the registration of cluster "cluster2"');
    expect(result.out).toContain("kind: ServiceAccount\n");
    expect(result.out).toContain("kind: ValidatingAdmissionPolicy\n");
    expect(result.out).toContain("kind: ValidatingAdmissionPolicyBinding\n");
    expect(result.out).not.toContain("token: ");
    expect([...result.sessions.values()].flatMap((s) => s.calls)).toEqual([]);
  });

  it("refuses when the importing cluster's identity cannot be established, unless --local-name names it", async () => {
    const refused = await run(["bootstrap", "--from", "cluster2", "--to", "cluster1", "--dry-run=client"], [cluster1(), cluster2()]);
    expect(expectOneLineError(refused)).toMatch(/cannot establish the identity of context "cluster1": the uid of its kube-system namespace cannot be read .*pass --local-name/);
    const named = await run(["bootstrap", "--from", "cluster2", "--to", "cluster1", "--local-name", "east", "--dry-run=client"], [cluster1(), cluster2()]);
    expect(named.code, named.err).toBe(0);
    expect(named.out).toContain("name: mcsa-importer-east\n");
    const nameless = await run(["bootstrap", "--from", "cluster2", "--to", "cluster1", "--dry-run=client"], [cluster1({ uid: "u", clusterName: "--" }), cluster2()]);
    expect(expectOneLineError(nameless)).toMatch(/cannot derive a name for context "cluster1" from its kubeconfig cluster name "--": pass --local-name/);
  });
});

describe("remove and unbootstrap: no silent harm", () => {
  const users = [pod("app-1", "cluster2-default-pod-lister"), pod("app-2", "other, cluster2-default-pod-lister"), pod("elsewhere", "cluster2-default-pod-lister", "other")];

  it("remove refuses while pods use the import, naming them; --force removes and says who lost access", async () => {
    const clusters = () => [cluster1({ imports: [sai("cluster2-default-pod-lister")], pods: users })];
    const refused = await run(["remove", "cluster2-default-pod-lister"], clusters());
    expect(expectOneLineError(refused)).toBe(
      'error: serviceaccountimport "cluster2-default-pod-lister" is used by 2 pod(s) in namespace "default" (app-1, app-2): removing it revokes their remote access; pass --force to remove it anyway',
    );
    expect(refused.sessions.get("cluster1")!.calls).toEqual([]);
    const forced = await run(["remove", "cluster2-default-pod-lister", "--force"], clusters());
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toMatch(/removed: .* \(2 pod\(s\) that used it lost their remote access: app-1, app-2\)/);
  });

  it("remove waits for the controller, bounded by --timeout", async () => {
    const result = await run(["remove", "cluster2-default-pod-lister"], [cluster1({ imports: [sai("cluster2-default-pod-lister")] })]);
    expect(result).toMatchObject({ code: 0, out: 'serviceaccountimport "cluster2-default-pod-lister" removed: its tokens are revoked and its Secret deleted\n' });
  });

  it("unbootstrap refuses while imports, their pods, or another registration depend on the identity", async () => {
    const shared = [registration("cluster2"), registration("cluster2-again")];
    const refused = await run(["unbootstrap", "--from", "cluster2", "--to", "cluster1"], [
      cluster1({ registrations: shared, imports: [sai("cluster2-default-pod-lister")], pods: users }),
      cluster2({ server: "https://cluster2.test:6443" }),
    ]);
    expect(expectOneLineError(refused)).toBe(
      'error: cluster "cluster2" is still needed in context "cluster1": registration(s) cluster2-again use the same identity multicluster-service-account/mcsa-importer-cluster1 ' +
        "(unbootstrap them with --name first); 1 import(s) use it (default/cluster2-default-pod-lister; kubectl mcsa remove them first); " +
        "2 pod(s) use those imports (default/app-1, default/app-2); pass --force to unbootstrap anyway",
    );
  });
});

describe("clusters", () => {
  it("lists registrations with what depends on each; never a token", async () => {
    const state = cluster1({
      registrations: [registration("cluster2"), registration("cluster3", "mcsa-importer-cluster1", "https://cluster3.test:6443")],
      imports: [sai("a"), sai("b", { cluster: "cluster3" })],
      pods: [pod("p", "a")],
    });
    const table = await run(["clusters"], [state]);
    expect(table.out.split("\n")).toEqual([
      expect.stringMatching(/^NAME\s+SERVER\s+IDENTITY\s+IMPORTS\s+PODS$/),
      expect.stringMatching(/^cluster2\s+https:\/\/cluster2.test:6443\s+multicluster-service-account\/mcsa-importer-cluster1\s+1\s+1$/),
      expect.stringMatching(/^cluster3\s+https:\/\/cluster3.test:6443\s+multicluster-service-account\/mcsa-importer-cluster1\s+1\s+0$/),
      "",
    ]);
    const yaml = await run(["clusters", "-o", "yaml"], [state]);
    expect(yaml.out).toContain("kind: List");
    expect(yaml.out).not.toContain("identity-token");
    const none = await run(["clusters"], [cluster1({ registrations: [] })]);
    expect(none.err).toMatch(/No clusters registered in context "cluster1": kubectl mcsa bootstrap/);
  });
});

describe("describe, rotate, check, kubeconfig, export, version", () => {
  const data = buildImportSecretData({ importName: "a", token: "secret-token", caPem: "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n", namespace: "default", server: "https://cluster2.test:6443" });
  const secret = { metadata: { name: "a-token-abcde", namespace: "default" }, data };

  it("describe lists the pods that use the import", async () => {
    const result = await run(["describe", "a"], [cluster1({ imports: [sai("a")], pods: [pod("p1", "a"), pod("p2", "b")] })]);
    expect(result.out).toMatch(/^Name: {14}a$/m);
    expect(result.out).toMatch(/^Used By Pods: {6}p1$/m);
    expect(result.out).toMatch(/^Token Expires: {5}2026-01-01T01:00:00Z \(in 50m\)$/m);
  });

  it("rotate asks for a new token and, with --no-wait, returns at once; waiting is bounded", async () => {
    const result = await run(["rotate", "a", "--no-wait"], [cluster1({ imports: [sai("a")] })]);
    expect(result.out).toBe('serviceaccountimport "a": rotation requested\n');
    expect(result.sessions.get("cluster1")!.calls[0]).toEqual(["patchImportMetadata", "default", "a", { annotations: { "multicluster.admiralty.io/rotate-requested-at": "2026-01-01T00:10:00.000Z" } }]);
    const slow = await run(["rotate", "a", "--timeout", "2s"], [cluster1({ imports: [sai("a")] })]);
    expect(expectOneLineError(slow)).toMatch(/serviceaccountimport "a" not rotated after 2s: TokenIssued: ok/);
  });

  it("check prints who the remote says the token is", async () => {
    const review = { user: { username: "system:serviceaccount:default:pod-lister", groups: ["system:serviceaccounts"] }, rules: { incomplete: false, nonResourceRules: [], resourceRules: [{ verbs: ["list"], resources: ["pods"] }] } };
    const result = await run(["check", "a"], [cluster1({ imports: [sai("a")], secrets: [secret], review })]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toContain('authenticates "a" as system:serviceaccount:default:pod-lister');
    expect(result.out).toMatch(/^pods\s+\*\s+list$/m);
    expect(result.out).not.toContain("secret-token");
  });

  it("kubeconfig prints the import's kubeconfig (the one output with a token, asked for)", async () => {
    const result = await run(["kubeconfig", "a"], [cluster1({ imports: [sai("a")], secrets: [secret] })]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe(parseImportSecret(secret.data, { encoding: "base64" }).config.replace(/\n?$/, "\n"));
    const noToken = await run(["kubeconfig", "a"], [cluster1({ imports: [sai("a", { ready: false })] })]);
    expect(expectOneLineError(noToken)).toMatch(/has no token yet \(is the controller running\?\)/);
  });

  it("export prints a Secret as YAML or JSON, and names a missing service account", async () => {
    const state = () => cluster2({ serviceAccounts: [{ metadata: { name: "sa", namespace: "default" } }] });
    const yaml = await run(["export", "sa", "--context", "cluster2"], [state()]);
    expect(yaml.code, yaml.err).toBe(0);
    expect(yaml.out).toMatch(/^apiVersion: v1\ndata:\n/);
    const json = await run(["export", "sa", "--context", "cluster2", "-ojson"], [state()]);
    expect(JSON.parse(json.out)).toMatchObject({ kind: "Secret", metadata: { name: "cluster2-default-sa" } });
    const missing = await run(["export", "nobody", "--context", "cluster2"], [state()]);
    expect(expectOneLineError(missing)).toBe('error: service account "nobody" not found in namespace "default" (context "cluster2")');
  });

  it("version", async () => {
    expect((await run(["version"])).out).toMatch(/^kubectl-mcsa v\d+\.\d+\.\d+\n$/);
  });
});
