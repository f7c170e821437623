// The pure parts of what the demo, the real-pod e2e test and bench:pods share (scripts/pods.ts).
import { describe, expect, it } from "vitest";
import { clientPod, listingScript, parseBuiltImages, parseCgroupMemory, pollingScript } from "../../../scripts/pods.ts";

describe("parseBuiltImages", () => {
  it("reads each archive of `npm run images -- build` and ignores other lines", () => {
    const output = [
      "localhost/kubectl-mcsa:dev  sha256:aaa  150.2 MiB  built  12.3s  /root/.cache/kubectl-mcsa/images/kubectl-mcsa-0123456789abcdef.tar",
      "localhost/pause:dev         sha256:bbb    1.4 MiB  reused 0.1s  /root/.cache/kubectl-mcsa/images/pause-fedcba9876543210.tar",
      "done in 12.5s",
      "",
    ].join("\n");
    expect(parseBuiltImages(output)).toEqual([
      { ref: "localhost/kubectl-mcsa:dev", tar: "/root/.cache/kubectl-mcsa/images/kubectl-mcsa-0123456789abcdef.tar" },
      { ref: "localhost/pause:dev", tar: "/root/.cache/kubectl-mcsa/images/pause-fedcba9876543210.tar" },
    ]);
  });
});

describe("parseCgroupMemory", () => {
  const cases = [
    {
      name: "working set is usage less inactive file pages (hierarchical totals)",
      stat: "cache 100\nrss 50\ntotal_cache 4096\ntotal_rss 30000000\ntotal_inactive_file 2000000\n",
      expected: { usage: 40000000, workingSet: 38000000, peak: 52000000, rss: 30000000 },
    },
    {
      name: "without totals, the container's own counters",
      stat: "rss 1000\ninactive_file 500\n",
      expected: { usage: 40000000, workingSet: 39999500, peak: 52000000, rss: 1000 },
    },
    {
      name: "never below zero",
      stat: "total_inactive_file 90000000\n",
      expected: { usage: 40000000, workingSet: 0, peak: 52000000, rss: 0 },
    },
  ];
  it.each(cases)("$name", ({ stat, expected }) => {
    expect(parseCgroupMemory("40000000\n", "52000000\n", stat)).toEqual(expected);
  });
});

describe("the story's pod", () => {
  it("is annotated, never restarts, does not pull, and runs its script with sh", () => {
    const pod = clientPod({ name: "multicluster-client", importName: "cluster2-default-pod-lister", image: "localhost/mcsa-kubectl:dev", script: "true" });
    expect(pod.metadata?.annotations).toEqual({ "multicluster.admiralty.io/service-account-import.name": "cluster2-default-pod-lister" });
    expect(pod.spec).toMatchObject({ restartPolicy: "Never", containers: [{ imagePullPolicy: "Never", command: ["sh", "-c", "true"] }] });
  });

  it("lists with the KUBECONFIG and then through the import's own proxy variable", () => {
    const script = listingScript("cluster2-default-pod-lister");
    expect(script.indexOf("kubectl get pods -n default")).toBeLessThan(script.indexOf('wget -qO- "$MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL/api/v1/namespaces/default/pods"'));
    expect(pollingScript("a.b")).toContain("$MCSA_A_B_URL/api/v1/namespaces/default/pods");
  });
});
