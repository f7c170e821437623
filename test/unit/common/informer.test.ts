import { afterEach, describe, expect, it, vi } from "vitest";
import type { Informer, KubernetesObject, ObjectCache } from "@kubernetes/client-node";
import { type MakeInformer, SharedInformer } from "../../../common/informer.ts";
import { createLogger } from "../../../common/log.ts";

/**
 * A client-node informer stand-in: records starts, lets a test fire its events. Each start fires
 * `connect` (as client-node does at every attempt) and lists, succeeding while `listing` says so.
 */
function fakeInformer(objects: KubernetesObject[]) {
  const handlers = new Map<string, ((x?: unknown) => void)[]>();
  let starts = 0;
  let listing = true;
  let list: () => Promise<unknown> = async () => undefined;
  const fire = (verb: string, x?: unknown) => (handlers.get(verb) ?? []).forEach((cb) => cb(x));
  const informer = {
    on: (verb: string, cb: (x?: unknown) => void) => handlers.set(verb, [...(handlers.get(verb) ?? []), cb]),
    off: () => undefined,
    start: async () => {
      starts++;
      fire("connect");
      await list().catch((error: unknown) => fire("error", error));
    },
    stop: async () => undefined,
    get: (name: string) => objects.find((o) => o.metadata?.name === name),
    list: () => objects,
  };
  const make: MakeInformer = (track) => {
    list = track(async () => {
      if (!listing) throw new Error("connect ECONNREFUSED");
      return { items: objects };
    });
    return informer as unknown as Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  };
  return {
    informer: make,
    fire,
    starts: () => starts,
    setListing: (ok: boolean) => (listing = ok),
  };
}

const quiet = createLogger("test", { level: "error" });
const obj = (name: string): KubernetesObject => ({ metadata: { name, namespace: "default" } });

afterEach(() => vi.useRealTimers());

describe("SharedInformer", () => {
  it("starts once however many parts ask", async () => {
    const fake = fakeInformer([]);
    const shared = new SharedInformer<KubernetesObject>(fake.informer, "things", quiet);
    await Promise.all([shared.start(), shared.start()]);
    await shared.start();
    expect(fake.starts()).toBe(1);
  });

  it("replays what it holds to an add handler registered after the start", async () => {
    const fake = fakeInformer([obj("a"), obj("b")]);
    const shared = new SharedInformer<KubernetesObject>(fake.informer, "things", quiet);
    const early: string[] = [];
    shared.on("add", (o) => early.push(o.metadata!.name!));
    await shared.start();
    const late: string[] = [];
    shared.on("add", (o) => late.push(o.metadata!.name!));
    expect(early).toEqual([]);
    expect(late).toEqual(["a", "b"]);
  });

  it("restarts the watch with backoff after an error, and not once stopped", async () => {
    vi.useFakeTimers();
    const fake = fakeInformer([]);
    const shared = new SharedInformer<KubernetesObject>(fake.informer, "things", quiet);
    await shared.start();
    fake.fire("error", new Error("watch closed"));
    await vi.advanceTimersByTimeAsync(600);
    expect(fake.starts()).toBe(2);
    fake.fire("error", new Error("watch closed"));
    await shared.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.starts()).toBe(2);
  });

  it("backs off exponentially while the server is down (connect resets nothing), up to a cap; a successful list resets it", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0);
    const fake = fakeInformer([]);
    const shared = new SharedInformer<KubernetesObject>(fake.informer, "things", quiet);
    await shared.start();
    fake.setListing(false);
    fake.fire("error", new Error("watch closed"));
    // Retries at 0.5, 1, 2, 4, 8, 16, 30, 30 s: the starts seen at each moment.
    const startsAt: number[] = [];
    for (const ms of [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
      await vi.advanceTimersByTimeAsync(ms - 1);
      startsAt.push(fake.starts());
      await vi.advanceTimersByTimeAsync(1);
    }
    expect(startsAt).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(fake.starts()).toBe(9);
    // The server is back: the next retry lists, and the next failure starts over at 0.5 s.
    fake.setListing(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(fake.starts()).toBe(10);
    fake.fire("error", new Error("watch closed"));
    await vi.advanceTimersByTimeAsync(500);
    expect(fake.starts()).toBe(11);
    await shared.stop();
    vi.restoreAllMocks();
  });
});
