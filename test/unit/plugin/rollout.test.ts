// install's wait for the in-cluster process: when it is ready, and what it tells the user when not.
import type { V1ContainerStatus, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { rolloutState } from "../../../plugin/rollout.ts";

const IMAGE = "localhost/kubectl-mcsa:dev";

function deployment(status: V1Deployment["status"], generation = 1): V1Deployment {
  return {
    metadata: { name: "mcsa-manager", namespace: "multicluster-service-account", generation },
    spec: { replicas: 1, selector: { matchLabels: { app: "m" } }, template: {} },
    status,
  };
}

const rolledOut = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 };
const creating = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, unavailableReplicas: 1 };

function pod(status: V1Pod["status"], name = "mcsa-manager-abc", created = "2026-01-01T00:00:00Z"): V1Pod {
  return { metadata: { name, creationTimestamp: created as unknown as Date }, status };
}

function waitingIn(reason: string, message?: string, extra: Partial<V1ContainerStatus> = {}): V1Pod {
  return pod({
    phase: "Pending",
    conditions: [{ type: "PodScheduled", status: "True" }],
    containerStatuses: [{ name: "manager", image: IMAGE, imageID: "", ready: false, restartCount: 0, state: { waiting: { reason, message } }, ...extra }],
  });
}

describe("rolloutState", () => {
  const cases: { name: string; deployment: V1Deployment; pods: V1Pod[]; state: string; why?: RegExp; hint?: RegExp }[] = [
    { name: "every replica updated and available", deployment: deployment(rolledOut), pods: [], state: "ready" },
    {
      name: "the controller has not seen the new spec yet (an upgrade just applied)",
      deployment: deployment(rolledOut, 2),
      pods: [pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] })],
      state: "waiting",
      why: /new spec is not yet seen/,
    },
    {
      name: "an old replica still terminating",
      deployment: deployment({ ...rolledOut, replicas: 2 }),
      pods: [pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] })],
      state: "waiting",
      why: /2 in all/,
    },
    {
      name: "no pod at all: nothing turns the Deployment into pods",
      deployment: deployment({}),
      pods: [],
      state: "waiting",
      why: /^no pod created yet$/,
      hint: /controller-manager/,
    },
    {
      name: "the image is not on the node and may not be pulled: hopeless",
      deployment: deployment(creating),
      pods: [waitingIn("ErrImageNeverPull", `Container image "${IMAGE}" is not present with pull policy of Never`)],
      state: "failed",
      why: /pod mcsa-manager-abc: ErrImageNeverPull: Container image .* is not present/,
      hint: /load image "localhost\/kubectl-mcsa:dev" into the node's container runtime.*run install again/,
    },
    {
      name: "an invalid image reference: hopeless",
      deployment: deployment(creating),
      pods: [waitingIn("InvalidImageName", 'Failed to apply default image tag "UPPER": couldn\'t parse image name')],
      state: "failed",
      hint: /not a valid image reference: pass a valid --image/,
    },
    {
      name: "a pull that keeps failing may still succeed: waiting, with what to check",
      deployment: deployment(creating),
      pods: [waitingIn("ImagePullBackOff", 'Back-off pulling image "reg.example/x"')],
      state: "waiting",
      why: /ImagePullBackOff: Back-off pulling image/,
      hint: /check --image .* and that the node can pull it/,
    },
    {
      name: "a crash loop names the last exit code and where the logs are",
      deployment: deployment(creating),
      pods: [waitingIn("CrashLoopBackOff", "back-off 10s", { lastState: { terminated: { exitCode: 1, reason: "Error" } } })],
      state: "waiting",
      why: /container manager CrashLoopBackOff \(last exit code 1, Error\)/,
      hint: /kubectl -n multicluster-service-account logs deployment\/mcsa-manager/,
    },
    {
      name: "not scheduled: the scheduler's message",
      deployment: deployment(creating),
      pods: [pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes are available: 1 node(s) had untolerated taint." }] })],
      state: "waiting",
      why: /is not scheduled: 0\/1 nodes are available/,
      hint: /add a node/,
    },
    {
      name: "no scheduler has looked at it: asks whether one runs",
      deployment: deployment(creating),
      pods: [pod({ phase: "Pending" })],
      state: "waiting",
      why: /is not scheduled yet/,
      hint: /is a scheduler running, and a node Ready\?/,
    },
    {
      name: "running but its readiness probe fails",
      deployment: deployment(creating),
      pods: [pod({ phase: "Running", conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }] })],
      state: "waiting",
      why: /runs but is not ready/,
    },
    {
      name: "running for a moment between two crashes: says it keeps restarting",
      deployment: deployment(creating),
      pods: [
        pod({
          phase: "Running",
          conditions: [{ type: "Ready", status: "False" }],
          containerStatuses: [
            { name: "manager", image: IMAGE, imageID: "", ready: false, restartCount: 3, state: { running: {} }, lastState: { terminated: { exitCode: 1, reason: "Error" } } },
          ],
        }),
      ],
      state: "waiting",
      why: /container manager restarted 3 times \(last exit code 1, Error\)/,
      hint: /logs deployment\/mcsa-manager --previous/,
    },
    {
      name: "still creating its container: plain waiting",
      deployment: deployment(creating),
      pods: [waitingIn("ContainerCreating")],
      state: "waiting",
      why: /is starting/,
    },
    {
      name: "the progress deadline passed: give up with the pod's reason",
      deployment: deployment({ ...creating, conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "timed out" }] }),
      pods: [waitingIn("ImagePullBackOff", "Back-off")],
      state: "failed",
      why: /ImagePullBackOff/,
    },
    {
      name: "the newest pod's trouble wins over an old, terminating one",
      deployment: deployment(creating),
      pods: [
        pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }, "old", "2026-01-01T00:00:00Z"),
        { ...waitingIn("ErrImageNeverPull", "absent"), metadata: { name: "new", creationTimestamp: "2026-01-01T00:05:00Z" as unknown as Date } },
      ],
      state: "failed",
      why: /^pod new: ErrImageNeverPull/,
    },
    {
      name: "an older revision's hopeless pod does not fail the new one (a re-install after a bad image)",
      deployment: deployment(creating, 2),
      pods: [
        { ...waitingIn("ErrImageNeverPull", "absent"), metadata: { name: "old", creationTimestamp: "2026-01-01T00:00:00Z" as unknown as Date } },
        { ...waitingIn("ContainerCreating"), metadata: { name: "new", creationTimestamp: "2026-01-01T00:05:00Z" as unknown as Date } },
      ],
      state: "waiting",
      why: /^pod new is starting/,
    },
  ];
  it.each(cases)("$name", ({ deployment: d, pods, state, why, hint }) => {
    const result = rolloutState(d, pods);
    expect(result.state).toBe(state);
    if (result.state !== "ready") {
      if (why) expect(result.why).toMatch(why);
      if (hint) expect(result.hint).toMatch(hint);
      expect(`${result.why}; ${result.hint}`).not.toContain("\n");
    }
  });
});
