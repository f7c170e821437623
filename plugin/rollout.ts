// Whether the in-cluster process's Deployment has rolled out, and if not, why, in words a user can
// act on: what install waits for before it switches the webhook on. Pure: the caller reads the
// Deployment and its pods. The checks follow `kubectl rollout status`; the reasons come from the
// pods, where the kubelet and the scheduler say what is wrong.
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";

export type Rollout =
  | { state: "ready" }
  /** Still moving, or stuck in a way that may clear (a pull retried, a crash looping): reported at the timeout. */
  | { state: "waiting"; why: string; hint: string }
  /** Cannot get better by waiting: install stops at once. */
  | { state: "failed"; why: string; hint: string };

const RETRY = "then run install again";

/** Waiting reasons of a container that no amount of waiting fixes. */
const HOPELESS: Record<string, (image: string) => string> = {
  ErrImageNeverPull: (image) =>
    `load image "${image}" into the node's container runtime (or pass an --image the node has, or an --image-pull-policy that may pull it), ${RETRY}`,
  InvalidImageName: (image) => `"${image}" is not a valid image reference: pass a valid --image, ${RETRY}`,
  CreateContainerConfigError: () => `fix what the message names (a missing Secret or ConfigMap, a user the image cannot run as), ${RETRY}`,
};

const PULLING = new Set(["ErrImagePull", "ImagePullBackOff", "RegistryUnavailable"]);

/** The worst thing one pod says about itself, or undefined when it is ready. */
function podProblem(pod: V1Pod, logsHint: string): { why: string; hint: string; hopeless: boolean } | undefined {
  const name = `pod ${pod.metadata?.name ?? "?"}`;
  const status = pod.status ?? {};
  const conditions = status.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False") {
    return {
      why: `${name} is not scheduled: ${scheduled.message ?? scheduled.reason ?? "no node fits"}`,
      hint: `add a node that can run it (or free resources on one), ${RETRY}`,
      hopeless: false,
    };
  }
  for (const c of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    const reason = waiting?.reason;
    if (reason && reason !== "ContainerCreating" && reason !== "PodInitializing") {
      const image = c.image ?? "";
      const message = waiting.message ? `: ${waiting.message}` : "";
      const hopeless = HOPELESS[reason];
      if (hopeless) return { why: `${name}: ${reason}${message}`, hint: hopeless(image), hopeless: true };
      if (PULLING.has(reason)) {
        return {
          why: `${name}: ${reason}${message}`,
          hint: `check --image "${image}" and that the node can pull it (or load it there and pass --image-pull-policy Never), ${RETRY}`,
          hopeless: false,
        };
      }
      const last = c.lastState?.terminated;
      const exited = last ? ` (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ""})` : "";
      return { why: `${name}: container ${c.name} ${reason}${exited}`, hint: `see why in ${logsHint}, ${RETRY}`, hopeless: false };
    }
  }
  if (status.phase === "Pending" && scheduled === undefined && !pod.spec?.nodeName) {
    return { why: `${name} is not scheduled yet`, hint: `is a scheduler running, and a node Ready? ${RETRY}`, hopeless: false };
  }
  if (status.phase === "Pending") return { why: `${name} is starting (${status.phase})`, hint: RETRY, hopeless: false };
  const ready = conditions.find((c) => c.type === "Ready");
  if (ready?.status !== "True") {
    // Between two crashes a container runs for a moment: say that it keeps restarting.
    const restarted = (status.containerStatuses ?? []).find((c) => c.restartCount > 0 && c.lastState?.terminated);
    if (restarted) {
      const last = restarted.lastState!.terminated!;
      return {
        why: `${name}: container ${restarted.name} restarted ${restarted.restartCount} times (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ""})`,
        hint: `see why in ${logsHint} --previous, ${RETRY}`,
        hopeless: false,
      };
    }
    return { why: `${name} runs but is not ready (its readiness probe fails)`, hint: `see why in ${logsHint}, ${RETRY}`, hopeless: false };
  }
  return undefined;
}

/**
 * deployment: the live object; pods: those its selector matches (old and new). The Deployment is
 * ready when its controller has seen the current spec and every replica is updated and available.
 */
export function rolloutState(deployment: V1Deployment, pods: V1Pod[]): Rollout {
  const name = deployment.metadata?.name ?? "?";
  const namespace = deployment.metadata?.namespace ?? "default";
  const logsHint = `kubectl -n ${namespace} logs deployment/${name}`;
  const spec = deployment.spec;
  const status = deployment.status ?? {};
  const wanted = spec?.replicas ?? 1;
  const observed = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  if (observed) {
    const updated = status.updatedReplicas ?? 0;
    const available = status.availableReplicas ?? 0;
    const total = status.replicas ?? 0;
    if (updated >= wanted && total <= updated && available >= updated) return { state: "ready" };
  }
  // The newest pod's trouble is the current one; an older pod belongs to a revision being replaced
  // (an earlier install's bad image stays until the new pod is available, maxUnavailable 0).
  const newestFirst = [...pods]
    .filter((p) => !p.metadata?.deletionTimestamp)
    .sort((a, b) => String(b.metadata?.creationTimestamp ?? "").localeCompare(String(a.metadata?.creationTimestamp ?? "")));
  const first = newestFirst[0] && podProblem(newestFirst[0], logsHint);
  if (first?.hopeless) return { state: "failed", why: first.why, hint: first.hint };
  const progressing = status.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    return { state: "failed", why: first?.why ?? progressing.message ?? "progress deadline exceeded", hint: first?.hint ?? RETRY };
  }
  if (first) return { state: "waiting", why: first.why, hint: first.hint };
  if (!observed && pods.length > 0) {
    return { state: "waiting", why: "the Deployment's new spec is not yet seen by its controller", hint: `is the cluster's controller-manager running? ${RETRY}` };
  }
  if (pods.length === 0) {
    const failure = status.conditions?.find((c) => c.type === "ReplicaFailure" && c.status === "True");
    if (failure) return { state: "waiting", why: `no pod: ${failure.message ?? failure.reason}`, hint: `fix what the message names, ${RETRY}` };
    return {
      state: "waiting",
      why: "no pod created yet",
      hint: `is the cluster's controller-manager running (it turns Deployments into pods)? ${RETRY}`,
    };
  }
  return {
    state: "waiting",
    why: `${status.updatedReplicas ?? 0} of ${wanted} updated replicas available, ${status.replicas ?? 0} in all`,
    hint: RETRY,
  };
}
