import { afterEach, describe, expect, it, vi } from "vitest";
import type { Informer, KubernetesObject, ObjectCache } from "@kubernetes/client-node";
import { SharedInformer } from "../../../common/informer.ts";
import { createLogger } from "../../../common/log.ts";

/** A client-node informer stand-in: records starts, lets a test fire its events. */
function fakeInformer(objects: KubernetesObject[]) {
  const handlers = new Map<string, ((x?: unknown) => void)[]>();
  let starts = 0;
  const informer = {
    on: (verb: string, cb: (x?: unknown) => void) => handlers.set(verb, [...(handlers.get(verb) ?? []), cb]),
    off: () => undefined,
    start: async () => {
      starts++;
    },
    stop: async () => undefined,
    get: (name: string) => objects.find((o) => o.metadata?.name === name),
    list: () => objects,
  };
  return {
    informer: informer as unknown as Informer<KubernetesObject> & ObjectCache<KubernetesObject>,
    fire: (verb: string, x?: unknown) => (handlers.get(verb) ?? []).forEach((cb) => cb(x)),
    starts: () => starts,
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
});
