// kubectl mcsa install: the ServiceAccountImport API, the in-cluster process (import controller
// and webhook) with its least-privilege identity, Service and serving certificate, and the
// MutatingWebhookConfiguration. With --webhook-url the webhook configuration points at a process
// run elsewhere (out of cluster: tests, demos, debugging) and no Deployment or Service is created.
// kubectl mcsa uninstall removes it all.
import { readFileSync } from "node:fs";
import { ApiextensionsV1Api, AppsV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, KubernetesObjectApi, VersionApi } from "@kubernetes/client-node";
import type { Argv } from "yargs";
import { CRD_NAME, FINALIZER, GROUP, PLURAL, SYSTEM_NAMESPACE, VERSION } from "../../common/api.ts";
import { formatDuration, parseDuration } from "../../common/duration.ts";
import { UserError, isNotFound } from "../../common/kube.ts";
import {
  CONTROLLER_SERVICE_ACCOUNT,
  DEFAULT_IMAGE,
  MANAGER_NAME,
  WEBHOOK_CONFIGURATION,
  WEBHOOK_SECRET,
  WEBHOOK_SERVICE,
  type WebhookTls,
  controllerRbac,
  crd,
  managerDeployment,
  mutatingWebhookConfiguration,
  systemNamespace,
  webhookDnsNames,
  webhookSecret,
  webhookService,
} from "../../common/manifests.ts";
import { type TlsPlan, planWebhookTls, splitPem, tlsFromSecretData } from "../../common/serving-cert.ts";
import { applyAll, remove } from "../apply.ts";
import { printManifests } from "../output.ts";
import { rolloutState } from "../rollout.ts";
import { type GlobalArgs, Session } from "../session.ts";

interface Args extends GlobalArgs {
  "dry-run"?: string;
  output?: string;
  image: string;
  "sidecar-image"?: string;
  "image-pull-policy"?: "Always" | "IfNotPresent" | "Never";
  "webhook-url"?: string;
  "webhook-ca-file"?: string;
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
  matchConditions: boolean;
}

/** The API and the controller's identity: what every mode installs. */
export function baseObjects(): KubernetesObject[] {
  const rbac = controllerRbac();
  return [systemNamespace(), crd(), rbac.serviceAccount, rbac.clusterRole, rbac.clusterRoleBinding, rbac.role, rbac.roleBinding];
}

/** Everything install applies, in order: the webhook configuration last, once what it calls exists. */
export function installObjects(options: InstallOptions): KubernetesObject[] {
  if (options.webhook !== undefined) {
    const { url, caBundle } = options.webhook;
    return [...baseObjects(), mutatingWebhookConfiguration({ client: { url }, caBundle, matchConditions: options.matchConditions })];
  }
  if (options.tls === undefined) throw new Error("installObjects: in-cluster mode needs the serving certificate");
  return [
    ...baseObjects(),
    webhookSecret(options.tls),
    managerDeployment({
      image: options.image,
      sidecarImage: options.sidecarImage,
      imagePullPolicy: options.imagePullPolicy,
      logLevel: options.logLevel,
    }),
    webhookService(),
    mutatingWebhookConfiguration({ client: { service: true }, caBundle: options.tls.caBundle, matchConditions: options.matchConditions }),
  ];
}

/** Every object any mode creates, in the order uninstall removes them (the CRD is handled apart). */
function uninstallOrder(): KubernetesObject[] {
  const rbac = controllerRbac();
  const ref = (apiVersion: string, kind: string, name: string, namespace?: string): KubernetesObject => ({
    apiVersion,
    kind,
    metadata: namespace ? { name, namespace } : { name },
  });
  return [
    ref("apps/v1", "Deployment", MANAGER_NAME, SYSTEM_NAMESPACE),
    ref("v1", "Service", WEBHOOK_SERVICE, SYSTEM_NAMESPACE),
    ref("v1", "Secret", WEBHOOK_SECRET, SYSTEM_NAMESPACE),
    rbac.roleBinding,
    rbac.role,
    rbac.clusterRoleBinding,
    rbac.clusterRole,
    rbac.serviceAccount,
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
    .option("log-level", { type: "string", choices: ["debug", "info", "warn", "error"], describe: "log level of the in-cluster process" })
    .option("wait", {
      type: "boolean",
      default: true,
      describe: "wait until the in-cluster process is ready before switching its webhook on (--wait=false: apply and return)",
    })
    .option("timeout", { type: "string", default: "2m", describe: "with --wait: how long to wait for the in-cluster process to be ready" })
    .option("dry-run", { type: "string", choices: ["client", "none"], describe: "client: print the objects instead of applying them" })
    .option("output", { alias: "o", type: "string", choices: ["yaml", "json"], describe: "output format with --dry-run" })
    .example("$0 install --context cluster1", "install in the cluster of context cluster1")
    .example("$0 install --dry-run=client -o yaml > mcsa.yaml", "the same objects as YAML, for GitOps")
    .example(
      "$0 install --webhook-url https://127.0.0.1:8443/mutate-pods --webhook-ca-file ca.pem",
      "use a webhook run out of cluster (npm run manager -- --webhook-listen 127.0.0.1:8443 --webhook-ca-out ca.pem)",
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
  let caBundle: string;
  try {
    caBundle = readFileSync(caFile, "utf8");
  } catch (error) {
    throw new UserError(`reading --webhook-ca-file: ${(error as Error).message}`);
  }
  if (splitPem(caBundle).length === 0) throw new UserError(`--webhook-ca-file ${caFile} holds no PEM certificate`);
  return { url, caBundle };
}

/** matchConditions are on by default from Kubernetes 1.28 (GA in 1.30). */
async function supportsMatchConditions(kc: KubeConfig): Promise<boolean> {
  const info = await kc.makeApiClient(VersionApi).getCode();
  const m = /^v?(\d+)\.(\d+)/.exec(info.gitVersion);
  return m !== null && (Number(m[1]) > 1 || Number(m[2]) >= 28);
}

async function existingTls(session: Session): Promise<WebhookTls | undefined> {
  try {
    const secret = await session.core.readNamespacedSecret({ name: WEBHOOK_SECRET, namespace: SYSTEM_NAMESPACE });
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

export async function handler(args: Args): Promise<void> {
  const webhook = outOfCluster(args);
  const timeoutSeconds = parseDuration(args.timeout);
  const common = {
    image: args.image,
    sidecarImage: args["sidecar-image"] ?? args.image,
    imagePullPolicy: args["image-pull-policy"],
    logLevel: args["log-level"],
  };
  if (args["dry-run"] === "client") {
    // No cluster to ask: a fresh certificate, and matchConditions (every supported Kubernetes has them).
    const tls = webhook === undefined ? (await planWebhookTls(undefined, webhookDnsNames())).tls : undefined;
    return printManifests(installObjects({ ...common, webhook, tls, matchConditions: true }), args.output === "json" ? "json" : "yaml");
  }
  if (args.output) throw new UserError("-o is only for --dry-run=client");
  const session = Session.open(args);
  const api = KubernetesObjectApi.makeApiClient(session.kc);
  let plan: TlsPlan | undefined;
  const removed: KubernetesObject[] = [];
  let objects: KubernetesObject[];
  try {
    await waitTerminated(session);
    const matchConditions = await supportsMatchConditions(session.kc);
    if (webhook === undefined) plan = await planWebhookTls(await existingTls(session), webhookDnsNames());
    objects = installObjects({ ...common, webhook, tls: plan?.tls, matchConditions });
    // In cluster, the webhook (failurePolicy Fail) is switched on only once its server is ready.
    const waitFirst = webhook === undefined && args.wait;
    await applyAll(api, waitFirst ? objects.slice(0, -1) : objects);
    await waitEstablished(session.kc, 30_000);
    if (waitFirst) {
      await waitRolledOut(session, timeoutSeconds);
      await applyAll(api, objects.slice(-1));
    }
    if (webhook !== undefined) {
      // A webhook run elsewhere replaces the in-cluster process: two import controllers would compete.
      for (const o of uninstallOrder().slice(0, 2)) if (await remove(api, o)) removed.push(o);
    }
  } catch (error) {
    throw session.fail(error, "installing");
  }
  if (plan !== undefined) console.log(describeTls(plan));
  for (const o of objects) console.log(`${o.kind!.toLowerCase()}/${o.metadata!.name} applied`);
  for (const o of removed) console.log(`${o.kind!.toLowerCase()}/${o.metadata!.name} deleted (the webhook runs at ${webhook!.url})`);
}

/**
 * So that `kubectl mcsa import` right after install works: the CRD serves once Established, and
 * its storage answers "(re)initializing" for a moment after that.
 */
async function waitEstablished(kc: KubeConfig, timeoutMs: number): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) {
      const serving = await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 }).then(
        () => true,
        () => false,
      );
      if (serving) return;
    }
    if (Date.now() > deadline) throw new UserError(`the ServiceAccountImport API does not serve ${timeoutMs / 1000}s after install`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Until the Deployment is ready; a one-line UserError saying why not and what to do otherwise. */
async function waitRolledOut(session: Session, timeoutSeconds: number): Promise<void> {
  const apps = session.kc.makeApiClient(AppsV1Api);
  const deadline = Date.now() + timeoutSeconds * 1000;
  const tty = process.stderr.isTTY;
  let last = "";
  for (;;) {
    const deployment = await apps.readNamespacedDeployment({ name: MANAGER_NAME, namespace: SYSTEM_NAMESPACE });
    const selector = Object.entries(deployment.spec?.selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
    const pods = (await session.core.listNamespacedPod({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items;
    const rollout = rolloutState(deployment, pods);
    if (rollout.state === "ready") {
      if (tty && last) process.stderr.write("\n");
      return;
    }
    if (tty && rollout.why !== last) process.stderr.write(`\r\x1b[Kdeployment/${MANAGER_NAME}: ${rollout.why}`);
    last = rollout.why;
    const timedOut = Date.now() > deadline;
    if (rollout.state === "failed" || timedOut) {
      if (tty) process.stderr.write("\n");
      const when = rollout.state === "failed" ? "cannot become ready" : `is not ready after ${formatDuration(timeoutSeconds)}`;
      throw new UserError(`the in-cluster process (deployment/${MANAGER_NAME} in namespace ${SYSTEM_NAMESPACE}) ${when}: ${rollout.why}; ${rollout.hint}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** After an uninstall, the namespace and CRD take a moment to go: installing into them fails until then. */
async function waitTerminated(session: Session, timeoutMs = 60_000): Promise<void> {
  const ext = session.kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    const terminating = [
      await session.core.readNamespace({ name: SYSTEM_NAMESPACE }).then((o) => (o.metadata?.deletionTimestamp ? `namespace ${SYSTEM_NAMESPACE}` : undefined), () => undefined),
      await ext.readCustomResourceDefinition({ name: CRD_NAME }).then((o) => (o.metadata?.deletionTimestamp ? `CRD ${CRD_NAME}` : undefined), () => undefined),
    ].filter(Boolean);
    if (terminating.length === 0) return;
    if (Date.now() > deadline) throw new UserError(`${terminating.join(" and ")} still being deleted after ${timeoutMs / 1000}s: wait for the previous uninstall to finish`);
    if (!said) console.error(`waiting for ${terminating.join(" and ")} to finish being deleted (a previous uninstall)`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface UninstallArgs extends GlobalArgs {
  timeout: string;
}

async function waitGone(kc: KubeConfig, timeoutMs: number): Promise<boolean> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await ext.readCustomResourceDefinition({ name: CRD_NAME });
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export const uninstall = {
  builder(y: Argv<GlobalArgs>): Argv<UninstallArgs> {
    return y.option("timeout", {
      type: "string",
      default: "2m",
      describe: "how long to wait for the controller to revoke the imports' tokens and release them",
    }) as Argv<UninstallArgs>;
  },
  async handler(args: UninstallArgs): Promise<void> {
    const timeoutSeconds = parseDuration(args.timeout);
    const session = Session.open(args);
    const api = KubernetesObjectApi.makeApiClient(session.kc);
    const say = (o: KubernetesObject) => console.log(`${o.kind!.toLowerCase()}/${o.metadata!.name} deleted`);
    try {
      // Pods no longer wait on a webhook that is going away.
      if (await remove(api, webhookConfigurationRef)) say(webhookConfigurationRef);
      // Imports go with their CRD; the controller must still run to revoke their tokens and lift its finalizer.
      const crdRef = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: CRD_NAME } };
      if (await remove(api, crdRef)) {
        if (!(await waitGone(session.kc, timeoutSeconds * 1000))) {
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
      const others = (await session.core.listNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE }).catch(() => ({ items: [] }))).items
        .map((sa) => sa.metadata?.name ?? "")
        .filter((n) => n !== "default" && n !== CONTROLLER_SERVICE_ACCOUNT);
      if (others.length > 0) {
        console.log(
          `namespace/${SYSTEM_NAMESPACE} kept: it holds the identities of ${others.length} importing cluster(s) (${others.join(", ")}); kubectl mcsa unbootstrap removes them`,
        );
      } else if (await remove(api, systemNamespace())) {
        say(systemNamespace());
      }
    } catch (error) {
      throw session.fail(error, "uninstalling");
    }
  },
};
