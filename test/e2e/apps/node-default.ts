// A Node app as anyone writes it: client-node's loadFromDefault() (KUBECONFIG, as the webhook
// sets it), the current context's namespace, one KubeConfig for the process's whole life.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { serve } from "./protocol.ts";

const kc = new KubeConfig();
kc.loadFromDefault();
const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
const core = kc.makeApiClient(CoreV1Api);
await serve(async (fieldSelector) => (await core.listNamespacedPod({ namespace, fieldSelector })).items.map((p) => p.metadata?.name ?? ""));
