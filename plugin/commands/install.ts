// kubectl mcsa install: the ServiceAccountImport API, the in-cluster process (import controller
// and webhook) with its least-privilege identity, Service and serving certificate, and the
// MutatingWebhookConfiguration. With --webhook-url the webhook configuration points at a process
// run elsewhere (out of cluster: tests, demos, debugging) and no Deployment or Service is created.
// kubectl mcsa uninstall removes it all.
import { readFileSync } from "node:fs";
import { ApiextensionsV1Api, AppsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { examplesText } from "../help.ts";
import { CRD_NAME, FINALIZER, SYSTEM_NAMESPACE } from "../../common/api.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import {
  CONTROLLER_SERVICE_ACCOUNT,
  DEFAULT_IMAGE,
  MANAGER_NAME,
  WEBHOOK_CLIENT_CA,
  WEBHOOK_CONFIGURATION,
  WEBHOOK_NETWORK_POLICY,
  WEBHOOK_SECRET,
  WEBHOOK_SERVICE,
  WEBHOOK_SERVICE_ACCOUNT,
  type WebhookTls,
  baseObjects,
  controllerRbac,
  managerDeployment,
  managerSecretsPolicy,
  mutatingWebhookConfiguration,
  systemNamespace,
  webhookClientCa,
  webhookDnsNames,
  webhookNetworkPolicy,
  webhookRbac,
  webhookSecret,
  webhookService,
} from "../../common/manifests.ts";
import { type TlsPlan, planWebhookTls, splitPem, tlsFromSecretData } from "../../common/serving-cert.ts";
import { serverVersion, versionAtLeast } from "../../common/version.ts";
import { ImportClient } from "../../common/import-client.ts";
import { poll } from "../../common/poll.ts";
import { formatDuration } from "../../common/duration.ts";
import { applyAll, remove } from "../apply.ts";
import { type CommandEnv, println } from "../env.ts";
import { dryRunFlag, durationFlag, manifestFormat } from "../flags.ts";
import { manifests } from "../output.ts";
import { rolloutState } from "../rollout.ts";
import type { GlobalArgs, Session } from "../session.ts";
import { waitGone } from "../wait.ts";

interface Args extends GlobalArgs {
  "dry-run"?: string;
  output?: string;
  image: string;
  "sidecar-image"?: string;
  "image-pull-policy"?: "Always" | "IfNotPresent" | "Never";
  "webhook-url"?: string;
  "webhook-ca-file"?: string;
  "webhook-client-ca-file"?: string;
  "log-level"?: string;
  wait: boolean;
  timeout: string;
}

export interface InstallOptions {
  image: string;
  sidecarImage: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  logLevel?: string;
  /** Out-of-cluster mode: the webhook's URL and the PEM CA that signed its certificate. */
  webhook?: { url: string; caBundle: string };
  /** In-cluster mode: the Secret's content (reused or new). */
  tls?: WebhookTls;
  /** In-cluster mode: PEM CA of the API server's client certificate, which the webhook then requires. */
  clientCaPem?: string;
  matchConditions: boolean;
  /** ValidatingAdmissionPolicy is served (Kubernetes 1.30 and later): confine the manager's Secret writes. */
  admissionPolicy?: boolean;
}

/** Everything install applies, in order: the webhook configuration last, once what it calls exists. */
export function installObjects(options: InstallOptions): KubernetesObject[] {
  if (options.webhook !== undefined) {
    const { url, caBundle } = options.webhook;
    return [...baseObjects(options.admissionPolicy), mutatingWebhookConfiguration({ client: { url }, caBundle, matchConditions: options.matchConditions })];
  }
  if (options.tls === undefined) throw new Error("installObjects: in-cluster mode needs the serving certificate");
  return [
    ...baseObjects(options.admissionPolicy),
    webhookSecret(options.tls),
    ...(options.clientCaPem !== undefined ? [webhookClientCa(options.clientCaPem)] : []),
    managerDeployment({
      image: options.image,
      sidecarImage: options.sidecarImage,
      imagePullPolicy: options.imagePullPolicy,
      logLevel: options.logLevel,
      clientCa: options.clientCaPem !== undefined,
    }),
    webhookService(),
    webhookNetworkPolicy(),
    mutatingWebhookConfiguration({ client: { service: true }, caBundle: options.tls.caBundle, matchConditions: options.matchConditions }),
  ];
}

/** Every object any mode creates, in the order uninstall removes them (the CRD is handled apart). */
function uninstallOrder(): KubernetesObject[] {
  const rbac = controllerRbac();
  const webhook = webhookRbac();
  const policy = managerSecretsPolicy();
  const ref = (apiVersion: string, kind: string, name: string, namespace?: string): KubernetesObject => ({
    apiVersion,
    kind,
    metadata: namespace ? { name, namespace } : { name },
  });
  return [
    ref("apps/v1", "Deployment", MANAGER_NAME, SYSTEM_NAMESPACE),
    ref("v1", "Service", WEBHOOK_SERVICE, SYSTEM_NAMESPACE),
    ref("networking.k8s.io/v1", "NetworkPolicy", WEBHOOK_NETWORK_POLICY, SYSTEM_NAMESPACE),
    ref("v1", "ConfigMap", WEBHOOK_CLIENT_CA, SYSTEM_NAMESPACE),
    ref("v1", "Secret", WEBHOOK_SECRET, SYSTEM_NAMESPACE),
    webhook.clusterRoleBinding,
    webhook.clusterRole,
    webhook.serviceAccount,
    rbac.roleBinding,
    rbac.role,
    rbac.clusterRoleBinding,
    rbac.clusterRole,
    rbac.serviceAccount,
    policy.binding,
    policy.policy,
  ];
}

const webhookConfigurationRef: KubernetesObject = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
  metadata: { name: WEBHOOK_CONFIGURATION },
};

export function builder(y: Argv<GlobalArgs>): Argv<Args> {
  return y
    .option("image", { type: "string", default: DEFAULT_IMAGE, describe: "image of the in-cluster process (controller and webhook)" })
    .option("sidecar-image", { type: "string", describe: "image of the sidecar the webhook injects (default: --image)" })
    .option("image-pull-policy", { type: "string", choices: ["Always", "IfNotPresent", "Never"], describe: "pull policy of the in-cluster process" })
    .option("webhook-url", {
      type: "string",
      describe: "call the webhook at this https URL (a process run out of cluster) instead of in-cluster: no Deployment or Service",
    })
    .option("webhook-ca-file", { type: "string", describe: "with --webhook-url: PEM CA that signed the webhook's serving certificate" })
    .option("webhook-client-ca-file", {
      type: "string",
      describe:
        "PEM CA of the client certificate the API server presents to webhooks (its --admission-control-config-file): the webhook then serves AdmissionReviews only to that certificate",
    })
    .option("log-level", { type: "string", choices: ["debug", "info", "warn", "error"], describe: "log level of the in-cluster process" })
    .option("wait", {
      type: "boolean",
      default: false,
      describe: "wait until the in-cluster process is ready, and only then switch its webhook on (as helm install --wait); without it, apply and return",
    })
    .option("timeout", { type: "string", default: "2m", describe: "with --wait: how long to wait for the in-cluster process to be ready" })
    .option("dry-run", { type: "string", describe: "client: print the objects instead of applying them (none: apply)" })
    .option("output", { alias: "o", type: "string", describe: "with --dry-run=client: yaml or json" })
    .epilog(
      examplesText([
        ["install in the cluster of context cluster1", "kubectl mcsa install --context cluster1"],
        ["the same objects as YAML, for GitOps", "kubectl mcsa install --dry-run=client -o yaml > mcsa.yaml"],
        ["a webhook run out of cluster (npm run manager -- --webhook-listen ...)", "kubectl mcsa install --webhook-url https://127.0.0.1:8443/mutate-pods --webhook-ca-file ca.pem"],
      ]),
    ) as Argv<Args>;
}

function outOfCluster(args: Args): { url: string; caBundle: string } | undefined {
  const url = args["webhook-url"];
  const caFile = args["webhook-ca-file"];
  if (url === undefined) {
    if (caFile !== undefined) throw new UserError("--webhook-ca-file goes with --webhook-url");
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`--webhook-url "${url}" is not a URL`);
  }
  if (parsed.protocol !== "https:") throw new UserError(`--webhook-url must be an https URL (the API server calls webhooks over TLS), not "${url}"`);
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new UserError("--webhook-url must not hold user info, a query or a fragment");
  }
  if (caFile === undefined) throw new UserError("--webhook-url needs --webhook-ca-file: the CA the API server verifies the webhook with");
  if (args["webhook-client-ca-file"] !== undefined) {
    throw new UserError("--webhook-client-ca-file is for the in-cluster webhook: give a webhook run elsewhere its own --webhook-client-ca");
  }
  let caBundle: string;
  try {
    caBundle = readFileSync(caFile, "utf8");
  } catch (error) {
    throw new UserError(`reading --webhook-ca-file: ${(error as Error).message}`);
  }
  if (splitPem(caBundle).length === 0) throw new UserError(`--webhook-ca-file ${caFile} holds no PEM certificate`);
  return { url, caBundle };
}

/** The client CA file's PEM, or undefined; a one-line error when it holds no certificate. */
function clientCa(args: Args): string | undefined {
  const file = args["webhook-client-ca-file"];
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new UserError(`reading --webhook-client-ca-file: ${(error as Error).message}`);
  }
  if (splitPem(pem).length === 0) throw new UserError(`--webhook-client-ca-file ${file} holds no PEM certificate`);
  return pem;
}

/** matchConditions in webhook configurations are on by default since 1.28; ValidatingAdmissionPolicy is GA since 1.30. */
async function serverFeatures(kc: KubeConfig): Promise<{ matchConditions: boolean; admissionPolicy: boolean }> {
  const version = await serverVersion(kc);
  return { matchConditions: versionAtLeast(version, 1, 28), admissionPolicy: versionAtLeast(version, 1, 30) };
}

async function existingTls(session: Session): Promise<WebhookTls | undefined> {
  try {
    const secret = await session.kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE });
    return tlsFromSecretData(secret.data);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function describeTls(plan: TlsPlan): string {
  switch (plan.action) {
    case "created":
      return "generated a CA and serving certificate for the webhook";
    case "reused":
      return "kept the webhook's CA and serving certificate";
    case "renewed":
      return `renewed the webhook's serving certificate (${plan.reason})`;
    case "rotated-ca":
      return `replaced the webhook's CA (${plan.reason}); the old one stays trusted until it expires`;
  }
}

export async function handler(args: Args, env: CommandEnv): Promise<void> {
  const dryRun = dryRunFlag(args["dry-run"], env.err);
  const output = manifestFormat(args.output, dryRun);
  const webhook = outOfCluster(args);
  const clientCaPem = clientCa(args);
  const timeoutSeconds = durationFlag(args.timeout, "--timeout");
  const common = {
    image: args.image,
    sidecarImage: args["sidecar-image"] ?? args.image,
    imagePullPolicy: args["image-pull-policy"],
    logLevel: args["log-level"],
  };
  if (dryRun === "client") {
    // No cluster to ask: a fresh certificate, and matchConditions (every supported Kubernetes has them).
    const tls = webhook === undefined ? (await planWebhookTls(undefined, webhookDnsNames())).tls : undefined;
    println(env.out, manifests(installObjects({ ...common, webhook, tls, clientCaPem, matchConditions: true, admissionPolicy: true }), output ?? "yaml"));
    return;
  }
  const session = env.open(args);
  const api = KubernetesObjectApi.makeApiClient(session.kc);
  let plan: TlsPlan | undefined;
  const removed: KubernetesObject[] = [];
  let objects: KubernetesObject[];
  try {
    await waitTerminated(session, env);
    const features = await serverFeatures(session.kc);
    if (!features.admissionPolicy) {
      println(env.err, "warning: this API server has no ValidatingAdmissionPolicy (Kubernetes 1.30 and later): the manager's Secret writes are confined by RBAC only");
    }
    if (webhook === undefined) plan = await planWebhookTls(await existingTls(session), webhookDnsNames());
    objects = installObjects({ ...common, webhook, tls: plan?.tls, clientCaPem, ...features });
    // In cluster, the webhook (failurePolicy Fail) is switched on only once its server is ready.
    const waitFirst = webhook === undefined && args.wait;
    await applyAll(api, waitFirst ? objects.slice(0, -1) : objects);
    await waitEstablished(session.kc, 30_000);
    if (waitFirst) {
      await waitRolledOut(session.kc, env, timeoutSeconds);
      await applyAll(api, objects.slice(-1));
    }
    if (webhook !== undefined) {
      // A webhook run elsewhere replaces the in-cluster process: two import controllers would compete.
      for (const o of uninstallOrder().slice(0, 4)) if (await remove(api, o)) removed.push(o);
    }
  } catch (error) {
    throw session.fail(error, "installing");
  }
  if (plan !== undefined) println(env.out, describeTls(plan));
  for (const o of objects) println(env.out, `${o.kind!.toLowerCase()}/${o.metadata!.name} applied`);
  for (const o of removed) println(env.out, `${o.kind!.toLowerCase()}/${o.metadata!.name} deleted (the webhook runs at ${webhook!.url})`);
}

/**
 * So that `kubectl mcsa import` right after install works: the CRD serves once Established, and
 * its storage answers "(re)initializing" for a moment after that.
 */
async function waitEstablished(kc: KubeConfig, timeoutMs: number): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const imports = new ImportClient(kc);
  const serving = await poll(
    async () => {
      const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
      if (!crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return false;
      return imports.list(undefined, undefined, 1).then(
        () => true,
        () => false,
      );
    },
    { timeoutMs, intervalMs: 200 },
  );
  if (!serving.done) throw new UserError(`the ServiceAccountImport API does not serve ${timeoutMs / 1000}s after install`);
}

/** Until the Deployment is ready; a one-line UserError saying why not and what to do otherwise. */
async function waitRolledOut(kc: KubeConfig, env: CommandEnv, timeoutSeconds: number): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const tty = Boolean(env.err.isTTY);
  let last = "";
  let rollout: ReturnType<typeof rolloutState> | undefined;
  await poll(
    async () => {
      const deployment = await apps.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
      const selector = Object.entries(deployment.spec?.selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
      const pods = (await core.listNamespacedPod({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items;
      rollout = rolloutState(deployment, pods);
      if (rollout.state !== "ready" && tty && rollout.why !== last) env.err.write(`\r\x1b[Kdeployment/${MANAGER_NAME}: ${rollout.why}`);
      last = rollout.state === "ready" ? last : rollout.why;
      return rollout.state !== "waiting";
    },
    { timeoutMs: timeoutSeconds * 1000, intervalMs: 500, now: () => env.now().getTime(), sleep: (ms) => env.sleep(ms) },
  );
  if (tty && last) env.err.write("\n");
  if (rollout === undefined || rollout.state === "ready") return;
  const when = rollout.state === "failed" ? "cannot become ready" : `is not ready after ${formatDuration(timeoutSeconds)}`;
  throw new UserError(`the in-cluster process (deployment/${MANAGER_NAME} in namespace ${SYSTEM_NAMESPACE}) ${when}: ${rollout.why}; ${rollout.hint}`);
}

/** After an uninstall, the namespace and CRD take a moment to go: installing into them fails until then. */
async function waitTerminated(session: Session, env: CommandEnv, timeoutMs = 60_000): Promise<void> {
  const core = session.kc.makeApiClient(CoreV1Api);
  const ext = session.kc.makeApiClient(ApiextensionsV1Api);
  let terminating: string[] = [];
  let said = false;
  const gone = await poll(
    async () => {
      terminating = [
        await core.readNamespace({ name: SYSTEM_NAMESPACE }).then((o) => (o.metadata?.deletionTimestamp ? `namespace ${SYSTEM_NAMESPACE}` : undefined), () => undefined),
        await ext.readCustomResourceDefinition({ name: CRD_NAME }).then((o) => (o.metadata?.deletionTimestamp ? `CRD ${CRD_NAME}` : undefined), () => undefined),
      ].filter((t): t is string => t !== undefined);
      return terminating.length === 0;
    },
    {
      timeoutMs,
      intervalMs: 500,
      sleep: (ms) => {
        if (!said) println(env.err, `waiting for ${terminating.join(" and ")} to finish being deleted (a previous uninstall)`);
        said = true;
        return env.sleep(ms);
      },
    },
  );
  if (!gone.done) throw new UserError(`${terminating.join(" and ")} still being deleted after ${timeoutMs / 1000}s: wait for the previous uninstall to finish`);
}

interface UninstallArgs extends GlobalArgs {
  timeout: string;
}

export const uninstall = {
  builder(y: Argv<GlobalArgs>): Argv<UninstallArgs> {
    return y
      .option("timeout", {
        type: "string",
        default: "2m",
        describe: "how long to wait for the controller to revoke the imports' tokens and release them",
      })
      .epilog(examplesText([["remove it all from cluster1, the imports' tokens revoked first", "kubectl mcsa uninstall --context cluster1"]])) as Argv<UninstallArgs>;
  },
  async handler(args: UninstallArgs, env: CommandEnv): Promise<void> {
    const timeoutSeconds = durationFlag(args.timeout, "--timeout");
    const session = env.open(args);
    const api = KubernetesObjectApi.makeApiClient(session.kc);
    const say = (o: KubernetesObject) => println(env.out, `${o.kind!.toLowerCase()}/${o.metadata!.name} deleted`);
    try {
      // Pods no longer wait on a webhook that is going away.
      if (await remove(api, webhookConfigurationRef)) say(webhookConfigurationRef);
      // Imports go with their CRD; the controller must still run to revoke their tokens and lift its finalizer.
      const crdRef = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: CRD_NAME } };
      if (await remove(api, crdRef)) {
        const ext = session.kc.makeApiClient(ApiextensionsV1Api);
        if (!(await waitGone(env, () => ext.readCustomResourceDefinition({ name: CRD_NAME }), timeoutSeconds * 1000))) {
          throw new UserError(
            `the ServiceAccountImport API is still being deleted after ${args.timeout}: imports still hold the finalizer ${FINALIZER} ` +
              `until the controller revokes their tokens. Is the controller running (kubectl -n ${SYSTEM_NAMESPACE} get deploy ${MANAGER_NAME})? ` +
              "Run uninstall again, or remove the finalizer from the remaining imports to give up revoking",
          );
        }
        say(crdRef);
      }
      for (const o of uninstallOrder()) if (await remove(api, o)) say(o);
      // The namespace may also hold other clusters' identities (bootstrap --from this cluster): keep them.
      const others = (await session.kc.makeApiClient(CoreV1Api).listNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE }).catch(() => ({ items: [] }))).items
        .map((sa) => sa.metadata?.name ?? "")
        .filter((n) => n !== "default" && n !== CONTROLLER_SERVICE_ACCOUNT && n !== WEBHOOK_SERVICE_ACCOUNT);
      if (others.length > 0) {
        println(
          env.out,
          `namespace/${SYSTEM_NAMESPACE} kept: it holds the identities of ${others.length} importing cluster(s) (${others.join(", ")}); kubectl mcsa unbootstrap removes them`,
        );
      } else if (await remove(api, systemNamespace())) {
        // As kubectl delete waits: a namespace goes only once its pods have stopped on their nodes,
        // and an install meanwhile would be refused.
        const core = session.kc.makeApiClient(CoreV1Api);
        if (!(await waitGone(env, () => core.readNamespace({ name: SYSTEM_NAMESPACE }), timeoutSeconds * 1000))) {
          throw new UserError(
            `namespace/${SYSTEM_NAMESPACE} is still being deleted after ${args.timeout} (its pods have not stopped yet): ` +
              `see kubectl get pods -n ${SYSTEM_NAMESPACE}, and run uninstall again`,
          );
        }
        say(systemNamespace());
      }
    } catch (error) {
      throw session.fail(error, "uninstalling");
    }
  },
};
