// The in-cluster process (`npm run manager`): the import controller (and, with the webhook
// flags, the admission webhook). In a pod it uses the pod's service account; out of cluster,
// --kubeconfig and --context, as kubectl does. With --leader-elect (as the Deployment runs it) the
// replicas elect a leader with a Lease: only the leader runs the import controller (and the
// renewal of the importer identities' tokens); every replica serves the webhook.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { SYSTEM_NAMESPACE } from "../common/api.ts";
import { parseDuration } from "../common/duration.ts";
import { ImportClient } from "../common/import-client.ts";
import { UserError, loadKubeConfig } from "../common/kube.ts";
import { LeaderElector, kubeLeaseStore } from "../common/leader-election.ts";
import { createLogger, parseLevel } from "../common/log.ts";
import { LEADER_LEASE } from "../common/manifests.ts";
import { WEBHOOK_FLAGS, WEBHOOK_USAGE, startWebhook, webhookConfig, webhookKubeConfig } from "./webhook-flags.ts";
import { ImportController } from "../controller/imports.ts";

const USAGE = `usage: mcsa-manager [flags]

  --kubeconfig FILE              kubeconfig (default: KUBECONFIG or ~/.kube/config as kubectl reads them, else in-cluster)
  --context NAME                 kubeconfig context
  --concurrency N                imports reconciled at once (default 8)
  --cluster-check-interval DUR   how often remote clusters' health is checked (default 30s)
  --revoke-timeout DUR           how long deletion tries to revoke remotely (default 5m)
  --token-check-interval DUR     how often each import's token is tried at its remote (default 15s)
  --disable-import-controller    run only the webhook (e.g. to test injection with hand-made imports)
  --leader-elect                 run the import controller only while holding the Lease ${SYSTEM_NAMESPACE}/${LEADER_LEASE}
                                 (several replicas: one leads, all serve the webhook)
  --leader-elect-id NAME         this replica's identity in the Lease (default: hostname_random, as client-go)
  --log-level LEVEL              debug, info, warn or error (default info)
  -h, --help                     show this help

Webhook (off unless --webhook-listen is given):
${WEBHOOK_USAGE}`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      context: { type: "string" },
      concurrency: { type: "string", default: "8" },
      "cluster-check-interval": { type: "string", default: "30s" },
      "revoke-timeout": { type: "string", default: "5m" },
      "token-check-interval": { type: "string", default: "15s" },
      "log-level": { type: "string", default: "info" },
      "disable-import-controller": { type: "boolean", default: false },
      "leader-elect": { type: "boolean", default: false },
      "leader-elect-id": { type: "string" },
      ...WEBHOOK_FLAGS,
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const log = createLogger("mcsa-manager", { level: parseLevel(values["log-level"]) });
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UserError(`--concurrency must be a positive integer, not "${values.concurrency}"`);
  const webhook = webhookConfig(values);
  const runController = !values["disable-import-controller"];
  if (!runController && webhook === undefined) throw new UserError("nothing to run: --disable-import-controller without --webhook-listen");
  const identity = values["leader-elect-id"] ?? `${hostname()}_${randomUUID()}`;
  if (values["leader-elect-id"] !== undefined && !values["leader-elect"]) throw new UserError("--leader-elect-id goes with --leader-elect");
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/.test(identity)) throw new UserError(`--leader-elect-id must be letters, digits, ".", "_", ":" or "-", not "${identity}"`);
  const kc = loadKubeConfig({ kubeconfig: values.kubeconfig, context: values.context });
  // The webhook's API calls go out as its own identity (--webhook-as: read-only in a real install).
  const webhookKc = webhook === undefined ? undefined : webhookKubeConfig(kc, webhook);
  // One cache of imports for the whole process: the controller and the webhook read the same
  // (listed as the webhook when it runs alone).
  const imports = new ImportClient(runController || webhookKc === undefined ? kc : webhookKc).cache(log);
  // Stopped in order on SIGTERM: the controller first, then the Lease released (the next leader
  // starts at once), then the webhook and the cache.
  const parts: { stop(): Promise<void> }[] = [];
  let elector: LeaderElector | undefined;
  let controllerRunning: ImportController | undefined;
  const shutdown = (signal: string) => {
    log.info("shutting down", { signal });
    (async () => {
      if (controllerRunning !== undefined) {
        await controllerRunning.stop().catch(() => undefined);
        log.info("import controller stopped", elector ? { identity } : {});
      }
      await elector?.stop();
      await Promise.allSettled(parts.filter((p) => p !== imports).map((p) => p.stop()));
      await imports.stop();
    })().finally(() => process.exit(0));
  };
  if (runController) {
    const controller = new ImportController(kc, log, imports, {
      concurrency,
      clusterCheckIntervalMs: parseDuration(values["cluster-check-interval"]!) * 1000,
      revokeTimeoutMs: parseDuration(values["revoke-timeout"]!) * 1000,
      tokenCheckIntervalMs: parseDuration(values["token-check-interval"]!) * 1000,
    });
    const startController = async () => {
      await controller.start();
      controllerRunning = controller;
      log.info("import controller started", { server: kc.getCurrentCluster()?.server, ...(elector ? { identity } : {}) });
    };
    if (values["leader-elect"]) {
      elector = new LeaderElector({ identity, store: kubeLeaseStore(kc, SYSTEM_NAMESPACE, LEADER_LEASE), log });
      log.info("waiting to lead the import controller", { identity, lease: `${SYSTEM_NAMESPACE}/${LEADER_LEASE}` });
      elector.start({
        onStartedLeading: () => {
          startController().catch((error: Error) => {
            log.error("the import controller could not start", { error: error.message });
            process.exit(1);
          });
        },
        // Exit rather than stop in place: in-flight reconciles (a mint, a Secret write) end with the
        // process at once, and nothing of this term's state survives into another; the kubelet
        // restarts the container, which rejoins as a candidate. The webhook meanwhile is served by
        // the other replicas.
        onStoppedLeading: (why) => {
          log.error("lost leadership: exiting so that only the new leader acts", { identity, why });
          process.exit(1);
        },
      });
    } else {
      await startController();
    }
  }
  if (webhook !== undefined && webhookKc !== undefined) parts.push(await startWebhook(webhookKc, log, webhook, imports));
  parts.push(imports);

  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((error: Error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  });
}
