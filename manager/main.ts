// The in-cluster process (`npm run manager`): the import controller (and, with the webhook
// flags, the admission webhook). In a pod it uses the pod's service account; out of cluster,
// --kubeconfig and --context, as kubectl does.
import { parseArgs } from "node:util";
import { parseDuration } from "../common/duration.ts";
import { ImportClient } from "../common/import-client.ts";
import { UserError, loadKubeConfig } from "../common/kube.ts";
import { createLogger, parseLevel } from "../common/log.ts";
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
  const kc = loadKubeConfig({ kubeconfig: values.kubeconfig, context: values.context });
  // The webhook's API calls go out as its own identity (--webhook-as: read-only in a real install).
  const webhookKc = webhook === undefined ? undefined : webhookKubeConfig(kc, webhook);
  // One cache of imports for the whole process: the controller and the webhook read the same
  // (listed as the webhook when it runs alone).
  const imports = new ImportClient(runController || webhookKc === undefined ? kc : webhookKc).cache(log);
  const parts: { stop(): Promise<void> }[] = [];
  const shutdown = (signal: string) => {
    log.info("shutting down", { signal });
    Promise.allSettled(parts.map((p) => p.stop())).finally(() => process.exit(0));
  };
  if (runController) {
    const controller = new ImportController(kc, log, imports, {
      concurrency,
      clusterCheckIntervalMs: parseDuration(values["cluster-check-interval"]!) * 1000,
      revokeTimeoutMs: parseDuration(values["revoke-timeout"]!) * 1000,
      tokenCheckIntervalMs: parseDuration(values["token-check-interval"]!) * 1000,
    });
    await controller.start();
    parts.push(controller);
    log.info("import controller started", { server: kc.getCurrentCluster()?.server });
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
