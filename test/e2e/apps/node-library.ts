// A Node app that uses the library: configAndNamespace() once, at start.
import { CoreV1Api } from "@kubernetes/client-node";
import { configAndNamespace } from "../../../client/src/index.ts";
import { serve } from "./protocol.ts";

const { config, namespace, source, name } = configAndNamespace();
process.stderr.write(`using ${source} ${name}, namespace ${namespace}, server ${config.getCurrentCluster()?.server}\n`);
const core = config.makeApiClient(CoreV1Api);
await serve(async (fieldSelector) => (await core.listNamespacedPod({ namespace, fieldSelector })).items.map((p) => p.metadata?.name ?? ""));
