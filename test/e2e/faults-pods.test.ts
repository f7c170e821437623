// Faults in a real pod on the harness's node (cluster1), issue 17 deliverable 7: SIGTERM under load.
// The manager runs as its Deployment (kubectl mcsa install), the webhook injects the sidecar into an
// app that keeps four requests in flight through the import's proxy, each a watch that cluster2
// ends after a few seconds. The sidecar's main process then gets SIGTERM from the node, as the
// runtime sends it when it stops a container, while the app goes on: the requests under way must
// complete (the drain is bounded by 10 s), new connections are refused, the sidecar exits 0, and the
// kubelet starts it again (a native sidecar restarts). "Nothing lost": every request the app sent
// was answered, or refused at connect; none was cut, reset or left hanging. The test prints
//   [fault] <what>: detected in -, recovered in Y s
// as test/e2e/faults.test.ts does. Run it with the node: flock /tmp/mcsa-node.lock npx vitest ...
import { CoreV1Api, type V1ContainerStatus, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SIDECAR_CONTAINER_NAME, SYSTEM_NAMESPACE } from "../../common/api.ts";
import { adminConfig, createPodReader, kubectl, statusOf, uniqueName } from "../../harness/kube.ts";
import { eventually, runNode } from "../../harness/run.ts";
import {
  MCSA_IMAGE,
  SHELL_IMAGE,
  clientPod,
  describePod,
  loadProjectImages,
  parseRequestLog,
  serverForPods,
  signalContainer,
  uptimeSeconds,
  waitForPod,
  watchLoadScript,
} from "../../scripts/pods.ts";

const state = inject("clusters");
const withNode = state.clusters.some((c) => c.node);
const core1 = adminConfig(state, "cluster1").makeApiClient(CoreV1Api);
const namespace = uniqueName("faults-pods");
const remoteSA = uniqueName("watcher");
const registration = uniqueName("c2");
const IMPORT = `${registration}-${remoteSA}`.slice(0, 63);
const APP = "loader";
/** The sidecar's drain bound (sidecar/sidecar.ts DRAIN_MS), plus the kubelet's and our clocks' slack. */
const DRAIN_BOUND_MS = 10_000 + 2_000;

const mcsa = (...args: string[]) => runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args], { timeoutMs: 180_000 });
const k1 = (...args: string[]) => kubectl(state, ["--kubeconfig", state.kubeconfig, "--context", "cluster1", "-n", namespace, ...args]);
const sidecarStatus = (pod: V1Pod): V1ContainerStatus | undefined => pod.status?.initContainerStatuses?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
const appLog = async () => {
  const logs = await k1("logs", APP, "-c", APP);
  expect(logs.code, logs.stderr).toBe(0);
  return parseRequestLog(logs.stdout);
};

describe.skipIf(!withNode)("faults in a real pod (cluster1's node)", () => {
  beforeAll(async () => {
    loadProjectImages(state);
    const install = await mcsa("install", "--context", "cluster1", "--image", MCSA_IMAGE, "--image-pull-policy", "Never", "--wait", "--timeout", "2m");
    expect(install.code, install.stderr).toBe(0);
    const bootstrap = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1", "--name", registration, "--server", serverForPods(state, "cluster2"));
    expect(bootstrap.code, bootstrap.stderr).toBe(0);
    await createPodReader(state, "cluster2", "default", remoteSA);
    await core1.createNamespace({ body: { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } } });
    const imported = await mcsa(
      "import", IMPORT, "--context", "cluster1", "-n", namespace, "--cluster", registration, "--remote-namespace", "default",
      "--service-account", remoteSA, "--remote-context", "cluster2", "--wait", "--timeout", "60s",
    );
    expect(imported.code, imported.stderr).toBe(0);
  }, 420_000);

  afterAll(async () => {
    await core1.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    const unbootstrap = await mcsa("unbootstrap", "--from", "cluster2", "--to", "cluster1", "--name", registration, "--force");
    const uninstall = await mcsa("uninstall", "--context", "cluster1", "--timeout", "60s");
    expect(unbootstrap.code, unbootstrap.stderr).toBe(0);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    // The next test file installs into the system namespace again: wait until it is gone.
    await eventually(`namespace ${SYSTEM_NAMESPACE} to be gone`, async () => ((await statusOf(core1.readNamespace({ name: SYSTEM_NAMESPACE }))) === 404 ? true : undefined), 90_000, 250);
    await eventually(`namespace ${namespace} to be gone`, async () => ((await statusOf(core1.readNamespace({ name: namespace }))) === 404 ? true : undefined), 90_000, 250);
  }, 240_000);

  it("SIGTERM to the sidecar under load: requests under way complete, new connections are refused, exit 0, nothing lost", async () => {
    await core1.createNamespacedPod({ namespace, body: clientPod({ name: APP, importName: IMPORT, image: SHELL_IMAGE, script: watchLoadScript(IMPORT) }) });
    await waitForPod(core1, namespace, APP, "its app running", (p) => (p.status?.containerStatuses?.[0]?.state?.running ? p : undefined), 120_000);
    // Load: every loop has answered at least once, so four requests are under way at all times.
    await eventually("every loop's first answered request", async () => {
      const done = (await appLog()).filter((r) => r.outcome === "ok");
      return new Set(done.map((r) => r.loop)).size === 4 ? true : undefined;
    }, 60_000, 500);
    const before = await core1.readNamespacedPod({ name: APP, namespace });
    const restarts = sidecarStatus(before)?.restartCount ?? 0;
    const logsBefore = (await appLog()).filter((r) => r.outcome !== undefined).length;

    const signalledAt = Date.now();
    const signalledUptime = uptimeSeconds();
    signalContainer(before, SIDECAR_CONTAINER_NAME, "SIGTERM");

    // The kubelet sees the sidecar exit, with its code, and starts it again (a native sidecar restarts).
    const after = await waitForPod(core1, namespace, APP, "the sidecar to exit and run again", (p) => {
      const s = sidecarStatus(p);
      return (s?.restartCount ?? 0) > restarts && s?.state?.running && s.ready ? p : undefined;
    }, 90_000);
    const terminated = sidecarStatus(after)!.lastState!.terminated!;
    expect(terminated.exitCode, describePod(after)).toBe(0);
    // finishedAt has whole seconds: a bound, not the figure.
    expect(new Date(terminated.finishedAt!).getTime() - signalledAt).toBeLessThan(DRAIN_BOUND_MS);
    const previous = await k1("logs", APP, "-c", SIDECAR_CONTAINER_NAME, "--previous");
    expect(previous.code, previous.stderr).toBe(0);
    const sidecarLines = previous.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, string>);
    const stopping = sidecarLines.find((l) => l.msg === "stopping");
    const stopped = sidecarLines.find((l) => l.msg === "stopped");
    expect(stopping?.signal, previous.stdout.slice(-2000)).toBe("SIGTERM");
    expect(stopped).toBeDefined();
    expect(sidecarLines.filter((l) => l.msg === "requests still running after the drain were cut")).toEqual([]);
    const drainedMs = new Date(stopped!.time!).getTime() - new Date(stopping!.time!).getTime();
    expect(drainedMs).toBeLessThan(DRAIN_BOUND_MS);

    // The app's calls go through again once the sidecar is back.
    const back = await eventually("a request started after the SIGTERM answered", async () =>
      (await appLog()).find((r) => r.started > signalledUptime && r.outcome === "ok"), 60_000, 500);
    const recoveredMs = Math.round((back.ended! - signalledUptime) * 1000);
    // Until every loop has been answered again (the longest watch lasts 6 s).
    await eventually("every loop to answer again", async () => {
      const later = (await appLog()).filter((r) => r.started > back.started && r.outcome === "ok");
      return new Set(later.map((r) => r.loop)).size === 4 ? true : undefined;
    }, 60_000, 500);

    const requests = await appLog();
    const last = new Map<number, number>();
    for (const r of requests) last.set(r.loop, Math.max(last.get(r.loop) ?? 0, r.n));
    // Nothing lost: every request sent ended (but each loop's last, which may be under way now)...
    const unanswered = requests.filter((r) => r.outcome === undefined && r.n !== last.get(r.loop));
    expect(unanswered).toEqual([]);
    const ended = requests.filter((r) => r.outcome !== undefined);
    // ... answered, or refused at connect once the SIGTERM came (the sidecar stopped accepting, then
    // restarted), or answered 503 by the restarted sidecar before it read its token: never cut,
    // reset, or failed any other way.
    const afterSignal = (r: (typeof ended)[number]) => r.ended! > signalledUptime;
    const refused = ended.filter((r) => r.outcome !== "ok" && /Connection refused/.test(r.outcome!) && afterSignal(r));
    const unavailable = ended.filter((r) => r.outcome !== "ok" && /\b503\b/.test(r.outcome!) && afterSignal(r));
    const broken = ended.filter((r) => r.outcome !== "ok" && !refused.includes(r) && !unavailable.includes(r));
    expect(broken).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);
    // The requests under way at the SIGTERM (connected well before it) completed: drained, not cut.
    const inFlight = ended.filter((r) => r.started < signalledUptime - 0.5 && r.ended! > signalledUptime);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.filter((r) => r.outcome !== "ok")).toEqual([]);

    const sent = requests.length;
    const answered = ended.filter((r) => r.outcome === "ok").length;
    console.log(
      `[fault] sidecar SIGTERM under load (${inFlight.length} requests under way drained in ${(drainedMs / 1000).toFixed(1)} s, exit 0; ` +
        `${sent} sent, ${answered} answered, ${refused.length} refused at connect, ${unavailable.length} answered 503, ${broken.length} broken, ${sent - ended.length} under way at the end; ${logsBefore} before the signal): ` +
        `detected in -, recovered in ${(recoveredMs / 1000).toFixed(1)} s`,
    );
  }, 300_000);
});
