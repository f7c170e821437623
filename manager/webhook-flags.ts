// The webhook's flags of the in-cluster process (manager/main.ts), parsed into a config, and
// what turns that config into a running server: serving certificate (given, or generated and its
// CA written out), cluster look-ups, native-sidecar decision from the server version.
import { readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { KubeConfig, V1ResourceRequirements } from "@kubernetes/client-node";
import { SIDECAR_PROXY_PORT_BASE, SYSTEM_NAMESPACE } from "../common/api.ts";
import { UserError, apiMessage } from "../common/kube.ts";
import type { ImportCache } from "../common/import-client.ts";
import type { Logger } from "../common/log.ts";
import { DEFAULT_IMAGE, WEBHOOK_SERVICE, serviceAccountUser } from "../common/manifests.ts";
import { createCA, issue } from "../common/pki.ts";
import { serverVersion } from "../common/version.ts";
import { ClusterLookup, supportsNativeSidecars } from "../webhook/lookup.ts";
import type { MutateOptions } from "../webhook/mutate.ts";
import { DEFAULT_WEBHOOK_PATH, WebhookServer } from "../webhook/server.ts";

export const WEBHOOK_USAGE = `  --webhook-listen ADDR:PORT     serve the admission webhook (e.g. :8443 in a pod, 127.0.0.1:0 out of cluster)
  --webhook-cert FILE            PEM serving certificate (re-read when it changes)
  --webhook-key FILE             PEM private key of --webhook-cert
  --webhook-ca-out FILE          without --webhook-cert: write the CA of the generated certificate here
  --webhook-path PATH            where AdmissionReviews are posted (default ${DEFAULT_WEBHOOK_PATH})
  --webhook-as NAME              make the webhook's API calls as this identity (impersonated): a service account
                                 of ${SYSTEM_NAMESPACE} (e.g. mcsa-webhook, read-only) or a full username
  --webhook-client-ca FILE       PEM CA of the API server's client certificate: AdmissionReviews only from it
  --sidecar-image IMAGE          image of the injected sidecar (default ${DEFAULT_IMAGE})
  --sidecar-pull-policy POLICY   Always, IfNotPresent or Never (default: as the API server would default it)
  --sidecar-proxy-port-base N    loopback port of the first import's proxy (default ${SIDECAR_PROXY_PORT_BASE})
  --sidecar-requests LIST        sidecar resource requests, e.g. cpu=10m,memory=64Mi
  --sidecar-limits LIST          sidecar resource limits, e.g. memory=128Mi
  --native-sidecar MODE          auto (from the server version: 1.29 and later), true or false (default auto)`;

export const WEBHOOK_FLAGS = {
  "webhook-listen": { type: "string" },
  "webhook-cert": { type: "string" },
  "webhook-key": { type: "string" },
  "webhook-ca-out": { type: "string" },
  "webhook-path": { type: "string", default: DEFAULT_WEBHOOK_PATH },
  "webhook-as": { type: "string" },
  "webhook-client-ca": { type: "string" },
  "sidecar-image": { type: "string", default: DEFAULT_IMAGE },
  "sidecar-pull-policy": { type: "string" },
  "sidecar-proxy-port-base": { type: "string", default: String(SIDECAR_PROXY_PORT_BASE) },
  "sidecar-requests": { type: "string" },
  "sidecar-limits": { type: "string" },
  "native-sidecar": { type: "string", default: "auto" },
} as const;

type FlagValues = { [K in keyof typeof WEBHOOK_FLAGS]?: string };

export interface WebhookConfig {
  host: string;
  port: number;
  path: string;
  certFile?: string;
  keyFile?: string;
  caOut?: string;
  /** The username the webhook's API calls impersonate; undefined: the process's own identity. */
  as?: string;
  /** PEM CA file of the client certificates allowed to post AdmissionReviews. */
  clientCaFile?: string;
  native: "auto" | boolean;
  sidecar: Omit<MutateOptions, "nativeSidecar">;
}

/** "127.0.0.1:0", ":8443", "[::1]:8443" → host and port; "" host means every interface. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) throw new UserError(`--webhook-listen must be ADDR:PORT (e.g. :8443 or 127.0.0.1:0), not "${value}"`);
  return { host: m[1] ?? m[2] ?? "", port };
}

/** "cpu=10m,memory=64Mi" → {cpu: "10m", memory: "64Mi"}. */
export function parseResourceList(flag: string, value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^([a-z0-9.\-/]+)=([0-9.]+[a-zA-Z]*)$/.exec(part);
    if (m === null) throw new UserError(`${flag}: expected NAME=QUANTITY[,NAME=QUANTITY…] (e.g. cpu=10m,memory=64Mi), not "${part}"`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** The webhook's config from the process flags, or undefined when --webhook-listen is absent. */
export function webhookConfig(values: FlagValues): WebhookConfig | undefined {
  const listen = values["webhook-listen"];
  if (listen === undefined) {
    const stray = (["webhook-cert", "webhook-key", "webhook-ca-out", "webhook-as", "webhook-client-ca"] as const).find((f) => values[f] !== undefined);
    if (stray) throw new UserError(`--${stray} needs --webhook-listen`);
    return undefined;
  }
  const { host, port } = parseListen(listen);
  const certFile = values["webhook-cert"];
  const keyFile = values["webhook-key"];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UserError("--webhook-cert and --webhook-key go together");
  if (certFile !== undefined && values["webhook-ca-out"] !== undefined) {
    throw new UserError("--webhook-ca-out is for the generated certificate: it cannot be used with --webhook-cert");
  }
  const path = values["webhook-path"] ?? DEFAULT_WEBHOOK_PATH;
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(path)) throw new UserError(`--webhook-path must be an absolute URL path, not "${path}"`);
  const policy = values["sidecar-pull-policy"];
  if (policy !== undefined && !["Always", "IfNotPresent", "Never"].includes(policy)) {
    throw new UserError(`--sidecar-pull-policy must be Always, IfNotPresent or Never, not "${policy}"`);
  }
  const base = Number(values["sidecar-proxy-port-base"] ?? SIDECAR_PROXY_PORT_BASE);
  if (!Number.isInteger(base) || base < 1024 || base > 65535) {
    throw new UserError(`--sidecar-proxy-port-base must be a port from 1024 to 65535, not "${values["sidecar-proxy-port-base"]}"`);
  }
  const as = values["webhook-as"];
  if (as !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(as) && !/^[^\s:]+(:[^\s:]+)+$/.test(as)) {
    throw new UserError(`--webhook-as must be a service account name (e.g. mcsa-webhook) or a username, not "${as}"`);
  }
  const nativeFlag = values["native-sidecar"] ?? "auto";
  if (!["auto", "true", "false"].includes(nativeFlag)) throw new UserError(`--native-sidecar must be auto, true or false, not "${nativeFlag}"`);
  const image = values["sidecar-image"] ?? DEFAULT_IMAGE;
  if (image.trim() === "" || /\s/.test(image)) throw new UserError(`--sidecar-image must be an image reference, not "${image}"`);
  let resources: V1ResourceRequirements | undefined;
  if (values["sidecar-requests"] !== undefined || values["sidecar-limits"] !== undefined) {
    resources = {};
    if (values["sidecar-requests"] !== undefined) resources.requests = parseResourceList("--sidecar-requests", values["sidecar-requests"]);
    if (values["sidecar-limits"] !== undefined) resources.limits = parseResourceList("--sidecar-limits", values["sidecar-limits"]);
  }
  return {
    host,
    port,
    path,
    certFile,
    keyFile,
    caOut: values["webhook-ca-out"],
    ...(as !== undefined ? { as: as.includes(":") ? as : serviceAccountUser(as) } : {}),
    ...(values["webhook-client-ca"] !== undefined ? { clientCaFile: values["webhook-client-ca"] } : {}),
    native: nativeFlag === "auto" ? "auto" : nativeFlag === "true",
    sidecar: {
      image,
      ...(policy !== undefined ? { imagePullPolicy: policy as MutateOptions["imagePullPolicy"] } : {}),
      proxyPortBase: base,
      ...(resources !== undefined ? { resources } : {}),
    },
  };
}

/** A serving certificate for a webhook run out of cluster: loopback names, and the Service's. */
async function generateServing(host: string): Promise<{ cert: string; key: string; ca: string }> {
  const ca = await createCA("mcsa-webhook-ca", 365);
  const ips = new Set(["127.0.0.1", "::1"]);
  if (isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::") ips.add(host);
  const serving = await issue(ca, {
    commonName: `${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc`,
    usage: "server",
    ipAddresses: [...ips],
    dnsNames: ["localhost", `${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc`, `${WEBHOOK_SERVICE}.${SYSTEM_NAMESPACE}.svc.cluster.local`],
  });
  return { cert: serving.cert, key: serving.key, ca: ca.cert };
}

const CERT_POLL_MS = 30_000;

/**
 * The same cluster and credentials, every request impersonating `user` (Impersonate-User). A view
 * of `kc`, not a copy: its authenticators (the in-cluster token file, read again when the kubelet
 * rotates it) and its connection pool are the same; only the current user carries the header.
 */
export function impersonating(kc: KubeConfig, user: string): KubeConfig {
  const out = Object.create(kc) as KubeConfig & { users: unknown[] };
  const current = kc.getCurrentUser()?.name;
  out.users = kc.getUsers().map((u) => (u.name === current ? { ...u, impersonateUser: user } : u));
  return out;
}

/** The identity the webhook's API calls use: the process's own, or the one --webhook-as names. */
export function webhookKubeConfig(kc: KubeConfig, config: WebhookConfig): KubeConfig {
  return config.as === undefined ? kc : impersonating(kc, config.as);
}

/**
 * Starts the webhook: resolves once it listens, with its URL and a stop function. kc: the
 * webhook's own identity (webhookKubeConfig); imports: the process's shared cache.
 */
export async function startWebhook(kc: KubeConfig, log: Logger, config: WebhookConfig, imports: ImportCache): Promise<{ url: string; stop(): Promise<void> }> {
  let cert: string;
  let key: string;
  let clientCa: string | undefined;
  if (config.clientCaFile !== undefined) {
    try {
      clientCa = await readFile(config.clientCaFile, "utf8");
    } catch (error) {
      throw new UserError(`reading --webhook-client-ca: ${(error as Error).message}`);
    }
    if (!clientCa.includes("-----BEGIN CERTIFICATE-----")) throw new UserError(`--webhook-client-ca ${config.clientCaFile} holds no PEM certificate`);
  }
  if (config.certFile !== undefined && config.keyFile !== undefined) {
    try {
      [cert, key] = await Promise.all([readFile(config.certFile, "utf8"), readFile(config.keyFile, "utf8")]);
    } catch (error) {
      throw new UserError(`reading the webhook's serving certificate: ${(error as Error).message}`);
    }
  } else {
    const generated = await generateServing(config.host);
    cert = generated.cert;
    key = generated.key;
    if (config.caOut !== undefined) {
      await writeFile(config.caOut, generated.ca, { mode: 0o644 });
      log.info("generated a self-signed serving certificate", { caFile: config.caOut });
    } else {
      log.warn("generated a self-signed serving certificate whose CA is not written anywhere: pass --webhook-ca-out FILE to give it to kubectl mcsa install --webhook-ca-file");
    }
  }

  let native: boolean;
  if (config.native === "auto") {
    let version: string | undefined;
    for (let attempt = 1; version === undefined; attempt++) {
      try {
        version = await serverVersion(kc);
      } catch (error) {
        if (attempt >= 10) throw new Error(`reading the API server's version to decide on native sidecars: ${apiMessage(error)}`, { cause: error });
        log.warn("cannot read the API server's version yet; retrying", { error: apiMessage(error) });
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5_000)));
      }
    }
    native = supportsNativeSidecars(version);
    log.info(native ? "injecting native sidecars" : "injecting plain sidecar containers (server older than 1.29)", { serverVersion: version });
  } else {
    native = config.native;
  }

  const lookup = new ClusterLookup(kc, log, imports);
  await lookup.start();
  const server = new WebhookServer({
    host: config.host,
    port: config.port,
    path: config.path,
    cert,
    key,
    ...(clientCa !== undefined ? { clientCa } : {}),
    lookup,
    mutate: { ...config.sidecar, nativeSidecar: native },
    log: log.with({ component: "mcsa-webhook" }),
  });
  const url = await server.listen();
  log.info("webhook listening", { url, sidecarImage: config.sidecar.image, as: config.as, clientCa: config.clientCaFile });

  let poll: NodeJS.Timeout | undefined;
  if (config.certFile !== undefined && config.keyFile !== undefined) {
    const [certFile, keyFile] = [config.certFile, config.keyFile];
    poll = setInterval(() => {
      Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")])
        .then(([c, k]) => {
          if (c === cert && k === key) return;
          server.setCertificate(c, k);
          [cert, key] = [c, k];
          log.info("serving certificate reloaded", { certFile });
        })
        .catch((error: Error) => log.warn("cannot reload the serving certificate; keeping the current one", { error: error.message }));
    }, CERT_POLL_MS);
    poll.unref();
  }
  return {
    url,
    async stop() {
      clearInterval(poll);
      await server.close();
      await lookup.stop();
    },
  };
}
