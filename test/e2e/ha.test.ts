// High availability end to end (docs/install.md, High availability): managers run out of cluster
// as the install's service account, each with --leader-elect and its own identity, as the
// Deployment's replicas do. Exactly one leads (the Lease's holder; only it reconciles and mints);
// every one serves the webhook and is ready; the leader killed -9, another leads within 30 s and
// the import keeps renewing; the leader stopped (SIGTERM, a rolling update), it releases the Lease
// and another leads at once. All along, the Lease is sampled and the managers' logs read back: at
// no time do two lead.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, PLURAL, SYSTEM_NAMESPACE, type ServiceAccountImport, VERSION, readyCondition } from "../../common/api.ts";
import { parseImportSecret } from "../../common/import-secret.ts";
import { LEADER_LEASE, WEBHOOK_SERVICE_ACCOUNT } from "../../common/manifests.ts";
import { controllerKubeconfig, installController } from "../../harness/install.ts";
import { adminConfig, createPodReader } from "../../harness/kube.ts";
import { Background, type RunResult, eventually, runNode } from "../../harness/run.ts";

const state = inject("clusters");
const admin1 = adminConfig(state, "cluster1");
const leases = admin1.makeApiClient(CoordinationV1Api);
const core1 = admin1.makeApiClient(CoreV1Api);
const custom1 = admin1.makeApiClient(CustomObjectsApi);
const NAME = "ha-pod-lister";
const SA = "ha-pod-lister";
/** Leadership must move within this after the leader dies (the bound). */
const TAKEOVER_BOUND_MS = 30_000;
/** ...and within this after the leader releases the Lease (a retry period, jittered, and a round trip). */
const HANDOVER_BOUND_MS = 5_000;
const tmp = mkdtempSync(join(tmpdir(), "mcsa-ha-"));

interface Replica {
  id: string;
  process: Background;
  webhookUrl: string;
  caFile: string;
  /** When the test killed it (-9): the end of its term, if it led. */
  killedAt?: number;
}
const replicas: Replica[] = [];
const outputs: RunResult[] = [];
/** The Lease as sampled every 100 ms: when, and who held it. */
const samples: { at: number; holder: string; transitions: number }[] = [];
let sampling = true;
let sampler: Promise<void> | undefined;
const figures: string[] = [];

async function mcsa(...args: string[]): Promise<RunResult> {
  const result = await runNode("plugin/main.ts", ["--kubeconfig", state.kubeconfig, ...args]);
  outputs.push(result);
  return result;
}

async function startReplica(id: string): Promise<Replica> {
  const caFile = join(tmp, `${id}-ca.pem`);
  const proc = new Background("manager/main.ts", [
    "--kubeconfig", await controllerKubeconfig(state, "cluster1"),
    "--cluster-check-interval", "2s",
    "--leader-elect", "--leader-elect-id", id,
    "--webhook-listen", "127.0.0.1:0", "--webhook-ca-out", caFile, "--webhook-as", WEBHOOK_SERVICE_ACCOUNT,
  ]); // prettier-ignore
  await proc.waitFor(/"msg":"webhook listening"/);
  const webhookUrl = /"msg":"webhook listening"[^\n]*"url":"([^"]+)"/.exec(proc.text)![1]!;
  const replica = { id, process: proc, webhookUrl, caFile };
  replicas.push(replica);
  return replica;
}

/** The manager's log lines, parsed. */
function lines(replica: Replica): { time: number; msg: string; [k: string]: unknown }[] {
  return replica.process.text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { time: string; msg: string })
    .map((l) => ({ ...l, time: Date.parse(l.time) }));
}

async function holder(): Promise<string | undefined> {
  try {
    return (await leases.readNamespacedLease({ name: LEADER_LEASE, namespace: SYSTEM_NAMESPACE })).spec?.holderIdentity ?? "";
  } catch {
    return undefined;
  }
}

/** Who leads, by the Lease and by its own log (its controller started): the replica, once both agree. */
function leaderNow(among: Replica[], timeoutMs: number): Promise<Replica> {
  return eventually(
    `one of ${among.map((r) => r.id).join(", ")} to lead`,
    async () => {
      const id = await holder();
      const replica = among.find((r) => r.id === id);
      return replica && lines(replica).some((l) => l.msg === "import controller started") ? replica : undefined;
    },
    timeoutMs,
    100,
  );
}

/** GET path of the replica's webhook, trusting its own CA. */
function webhookGet(replica: Replica, path: string): Promise<number> {
  const url = new URL(path, replica.webhookUrl);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", ca: readFileSync(replica.caFile), timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

async function secretToken(): Promise<string> {
  const sai = (await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: "default", name: NAME })) as ServiceAccountImport;
  const secret = await core1.readNamespacedSecret({ name: sai.status!.secrets![0]!.name, namespace: "default" });
  return parseImportSecret(secret.data, { encoding: "base64" }).token;
}

/** Rotates the import and measures how long until its Secret holds another token. */
async function rotateWithin(boundMs: number): Promise<number> {
  const before = await secretToken();
  const started = Date.now();
  const rotated = await mcsa("rotate", NAME, "--context", "cluster1", "-n", "default", "--timeout", `${boundMs / 1000}s`);
  expect(rotated.stderr).toBe("");
  expect(rotated.code).toBe(0);
  await eventually("the import's Secret to hold the new token", async () => ((await secretToken()) !== before ? true : undefined), boundMs);
  return Date.now() - started;
}

function kill9(replica: Replica): void {
  replica.killedAt = Date.now();
  (replica.process as unknown as { child: ChildProcess }).child.kill("SIGKILL");
}

/**
 * Each replica's terms as leader from its log: from "became the leader" to "import controller
 * stopped" (before it releases), or "lost leadership", or its kill -9. Sorted, none overlaps.
 */
function expectNoOverlap(): { id: string; from: number; to: number }[] {
  const terms: { id: string; from: number; to: number }[] = [];
  for (const r of replicas) {
    let from: number | undefined;
    for (const l of lines(r)) {
      if (l.msg === "became the leader") from = l.time;
      else if ((l.msg === "import controller stopped" || l.msg.startsWith("lost leadership")) && from !== undefined) {
        terms.push({ id: r.id, from, to: l.time });
        from = undefined;
      }
    }
    if (from !== undefined) terms.push({ id: r.id, from, to: r.killedAt ?? (r.process.running ? Infinity : Date.now()) });
    // Only a leader mints: every "token issued" of this replica lies in one of its terms.
    for (const l of lines(r).filter((x) => x.msg === "token issued")) {
      expect(terms.some((t) => t.id === r.id && t.from <= l.time && l.time <= t.to), `${r.id} issued a token at ${new Date(l.time).toISOString()} while not leading`).toBe(true);
    }
  }
  terms.sort((a, b) => a.from - b.from);
  for (let i = 1; i < terms.length; i++) {
    expect(terms[i]!.from, `${terms[i]!.id} started leading before ${terms[i - 1]!.id} stopped`).toBeGreaterThanOrEqual(terms[i - 1]!.to);
  }
  // The Lease as sampled never named anyone but a replica, or nobody (released).
  const ids = new Set(["", ...replicas.map((r) => r.id)]);
  expect(samples.filter((s) => !ids.has(s.holder))).toEqual([]);
  return terms;
}

beforeAll(async () => {
  await installController(state, "cluster1");
  // A Lease left by an earlier run would hold the first replica back for its duration.
  await leases.deleteNamespacedLease({ name: LEADER_LEASE, namespace: SYSTEM_NAMESPACE }).catch(() => undefined);
  sampler = (async () => {
    while (sampling) {
      try {
        const lease = await leases.readNamespacedLease({ name: LEADER_LEASE, namespace: SYSTEM_NAMESPACE });
        samples.push({ at: Date.now(), holder: lease.spec?.holderIdentity ?? "", transitions: lease.spec?.leaseTransitions ?? 0 });
      } catch {
        // Not created yet.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await Promise.all([startReplica("ha-a"), startReplica("ha-b")]);
  await createPodReader(state, "cluster2", "default", SA);
});

afterAll(async () => {
  // Removed while a leader runs, so that its tokens are revoked and its finalizer lifted.
  if (replicas.some((r) => r.process.running)) await mcsa("remove", NAME, "--context", "cluster1", "-n", "default", "--timeout", "30s");
  sampling = false;
  await sampler;
  // SIGTERM: each releases the Lease if it holds it, so that the next file's manager starts at once.
  await Promise.all(replicas.map((r) => r.process.stop()));
  rmSync(tmp, { recursive: true, force: true });
  if (figures.length > 0) console.error(`[ha] ${figures.join("; ")}`);
});

describe("high availability: one leader among the manager's replicas", () => {
  let leader: Replica;

  it("exactly one leads (the Lease's holder), the other waits; both serve the webhook and are ready", async () => {
    leader = await leaderNow(replicas, 30_000);
    const follower = replicas.find((r) => r !== leader)!;
    await follower.process.waitFor(/"msg":"another replica leads"/, 10_000);
    expect(follower.process.text).not.toMatch(/import controller started/);
    expect(lines(follower).find((l) => l.msg === "another replica leads")!.leader).toBe(leader.id);
    for (const r of replicas) {
      expect(await webhookGet(r, "/readyz"), `${r.id}'s /readyz`).toBe(200);
      expect(await webhookGet(r, "/healthz"), `${r.id}'s /healthz`).toBe(200);
    }
  });

  it("the leader alone imports: bootstrap, import Ready, the token minted by the leader only", async () => {
    const boot = await mcsa("bootstrap", "--from", "cluster2", "--to", "cluster1");
    expect(boot.code, boot.stderr).toBe(0);
    const result = await mcsa(
      "import", NAME, "--context", "cluster1", "-n", "default", "--cluster", "cluster2",
      "--remote-namespace", "default", "--service-account", SA, "--remote-context", "cluster2", "--wait", "--timeout", "30s",
    ); // prettier-ignore
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(lines(leader).filter((l) => l.msg === "token issued" && l.import === `default/${NAME}`)).toHaveLength(1);
    const follower = replicas.find((r) => r !== leader)!;
    expect(lines(follower).filter((l) => l.msg === "token issued" || l.msg === "import ready")).toEqual([]);
    expectNoOverlap();
  });

  it(`the leader killed -9: another leads within ${TAKEOVER_BOUND_MS / 1000}s, and the import keeps renewing`, async () => {
    const survivors = replicas.filter((r) => r !== leader && r.process.running);
    kill9(leader);
    const killedAt = leader.killedAt!;
    const next = await leaderNow(survivors, TAKEOVER_BOUND_MS + 5_000);
    const takeover = Date.now() - killedAt;
    figures.push(`takeover after kill -9: ${(takeover / 1000).toFixed(1)}s`);
    expect(takeover).toBeLessThan(TAKEOVER_BOUND_MS);
    // Not before the lease could expire: the dead leader's last renewal counts for 15 s.
    expect(takeover).toBeGreaterThan(10_000);
    leader = next;
    const rotated = await rotateWithin(20_000);
    figures.push(`rotation by the new leader: ${(rotated / 1000).toFixed(1)}s`);
    expect(lines(leader).filter((l) => l.msg === "token issued" && l.import === `default/${NAME}`).length).toBeGreaterThanOrEqual(1);
    expect(readyCondition((await custom1.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: "default", name: NAME })) as ServiceAccountImport)?.status).toBe("True");
    expectNoOverlap();
  }, 90_000);

  it(`the leader stopped (SIGTERM, as a rolling update does): it releases the Lease, another leads within ${HANDOVER_BOUND_MS / 1000}s`, async () => {
    // A new replica, as the Deployment's surge pod: a follower first.
    const fresh = await startReplica("ha-c");
    await fresh.process.waitFor(/"msg":"another replica leads"/, 10_000);
    const stopping = leader;
    const stoppedAt = Date.now();
    await stopping.process.stop();
    expect(stopping.process.text).toMatch(/"msg":"released the leadership"/);
    const next = await leaderNow([fresh], HANDOVER_BOUND_MS + 5_000);
    const handover = Date.now() - stoppedAt;
    figures.push(`handover after SIGTERM: ${(handover / 1000).toFixed(1)}s`);
    expect(handover).toBeLessThan(HANDOVER_BOUND_MS);
    leader = next;
    const rotated = await rotateWithin(20_000);
    figures.push(`rotation after the handover: ${(rotated / 1000).toFixed(1)}s`);
    const terms = expectNoOverlap();
    expect(terms.map((t) => t.id)).toHaveLength(3);
    // The Lease went from one holder to the next: a released record ("") between the last two.
    const holders = samples.map((s) => s.holder).filter((h, i, all) => i === 0 || h !== all[i - 1]);
    figures.push(`lease holders sampled: ${holders.map((h) => h || "(released)").join(" → ")}`);
    expect(holders.at(-1)).toBe(fresh.id);
    expect(samples.at(-1)!.transitions).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
