// The local proxy's rules, as pure functions and tables of named rules (in the style of pepr's
// named filters): which requests it refuses and why, which request and response headers it passes
// on, how it frames a request body, where a request goes, and the Kubernetes Status it answers with.
// Each rule has its own cases in test/unit/sidecar/proxy-rules.test.ts.

import { PROXY_ALLOW_ANNOTATION, type ProxyStream } from "../common/api.ts";

export interface StatusReply {
  code: number;
  reason: string;
  message: string;
}

/** What the request rules see of a request: what Node's HTTP parser made of it, nothing more. */
export interface RequestHead {
  method: string;
  /** The request target, as sent. */
  url: string;
  httpVersion: string;
  /** Flat name/value list, as IncomingMessage.rawHeaders. */
  rawHeaders: readonly string[];
  /** Whether Node handed the request over as an upgrade (Connection: upgrade plus Upgrade). */
  upgrade: boolean;
}

export interface RequestPolicy {
  /** Streaming subresources this proxy passes (the pod's `proxy-allow` annotation). */
  allow: ReadonlySet<ProxyStream>;
}

export interface RequestRule {
  name: string;
  /** Why the rule exists, in one line. */
  why: string;
  /** A refusal, or undefined when the rule lets the request through. */
  check(head: RequestHead, policy: RequestPolicy): StatusReply | undefined;
}

const forbidden = (message: string): StatusReply => ({ code: 403, reason: "Forbidden", message });
const badRequest = (message: string): StatusReply => ({ code: 400, reason: "BadRequest", message });

function values(raw: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lowerName) out.push(raw[i + 1] as string);
  return out;
}

/** `kubectl proxy --accept-hosts`' default, port stripped: localhost, 127.0.0.1 and [::1]. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(localhost|127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?$/i.exec(host.trim());
  if (!m) return false;
  return m[2] === undefined || Number(m[2]) <= 65535;
}

/**
 * Whether a browser sent this request from a page of another site: the Host check stops DNS
 * rebinding, not a page that talks to ws://127.0.0.1:<port> directly (exec, attach). Client
 * libraries send neither header; a browser sends Origin on WebSocket handshakes and Sec-Fetch-Site
 * on every request.
 */
export function isCrossSite(origin: string | undefined, fetchSite: string | undefined): boolean {
  if (fetchSite !== undefined && fetchSite.trim().toLowerCase() === "cross-site") return true;
  const value = origin?.trim();
  if (!value) return false;
  // Sandboxed frames and file: pages send "null".
  if (value === "null") return true;
  try {
    const url = new URL(value);
    return !isLoopbackHost(url.host);
  } catch {
    return true;
  }
}

/** How the proxy frames the body it sends upstream: never how the app said, always what Node's parser delivers. */
export type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/**
 * The body the app sent, as Node's parser delimits it, or why it is ambiguous. Node already
 * refuses Content-Length with Transfer-Encoding, repeated or non-numeric lengths and a final
 * coding other than chunked; this says so again (the proxy must not depend on a parser option),
 * and also refuses codings before chunked (`gzip, chunked`), which the API server does not take.
 */
export function requestFraming(raw: readonly string[]): Framing | { problem: string } {
  const lengths = values(raw, "content-length");
  const encodings = values(raw, "transfer-encoding");
  if (lengths.length > 0 && encodings.length > 0) return { problem: "a request must not have both Content-Length and Transfer-Encoding" };
  if (encodings.length > 0) {
    if (encodings.length > 1 || encodings[0]?.trim().toLowerCase() !== "chunked") {
      return { problem: `Transfer-Encoding ${JSON.stringify(encodings.join(", "))} is not accepted: only "chunked"` };
    }
    return { kind: "chunked" };
  }
  if (lengths.length > 1) return { problem: "a request must have at most one Content-Length" };
  if (lengths.length === 1) {
    const value = (lengths[0] as string).trim();
    if (!/^\d{1,15}$/.test(value)) return { problem: `Content-Length ${JSON.stringify(value)} is not a number of bytes` };
    const length = Number(value);
    return length === 0 ? { kind: "none" } : { kind: "length", length };
  }
  return { kind: "none" };
}

/** Methods of the Kubernetes API. TRACE would echo the import's token back to the app. */
export const METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** The upgrades the Kubernetes API speaks (exec, attach, port-forward, watch). */
const UPGRADE_PROTOCOLS = new Set(["spdy/3.1", "websocket"]);

/**
 * The path's segments, percent-decoded once, or why the path is not a plain one. A gateway or
 * server that normalises differently from the API server could route an encoded dot segment,
 * slash, backslash or `;` parameter elsewhere than it reads, carrying this import's token there;
 * the Kubernetes API never needs them.
 */
export function pathSegments(url: string): string[] | { problem: string } {
  const path = url.split("?")[0] as string;
  const raw = path.slice(1).split("/");
  const out: string[] = [];
  for (const [i, segment] of raw.entries()) {
    if (segment === "" && i < raw.length - 1) return { problem: "the path has an empty segment (//)" };
    if (segment.includes(";")) return { problem: "the path has a ; in a segment" };
    if (segment.includes("\\")) return { problem: "the path has a backslash" };
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return { problem: "the path has an invalid percent-encoding" };
    }
    if (decoded === "." || decoded === "..") return { problem: "the path has a . or .. segment" };
    if (/[/\\;]/.test(decoded)) return { problem: "the path has an encoded /, \\ or ;" };
    if (/%[0-9a-f]{2}/i.test(decoded)) return { problem: "the path is percent-encoded twice" };
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(decoded)) return { problem: "the path has an encoded control character" };
    out.push(decoded);
  }
  return out;
}

/** Which streaming subresource a path asks for: the API's pod subresources, and the kubelet's own behind nodes/proxy. */
export function streamOf(segments: readonly string[]): ProxyStream | undefined {
  const s = segments.map((x) => x.toLowerCase());
  if (s[0] === "api" && s[1] === "v1" && s[2] === "namespaces" && s[4] === "pods" && s[6] !== undefined && s.length >= 7) {
    const sub = s[6];
    if (sub === "exec" || sub === "attach" || sub === "portforward") return sub;
  }
  if (s[0] === "api" && s[1] === "v1" && s[2] === "nodes" && s[4] === "proxy" && s[5] !== undefined) {
    const sub = s[5];
    if (sub === "exec" || sub === "run" || sub === "cri") return "exec";
    if (sub === "attach" || sub === "portforward") return sub;
  }
  return undefined;
}

/** The request rules, in the order the proxy applies them; the first refusal is the answer. */
export const REQUEST_RULES: readonly RequestRule[] = [
  {
    name: "http-1",
    why: "only HTTP/1.0 and 1.1 have the framing rules the proxy enforces",
    check: (head) => (head.httpVersion === "1.1" || head.httpVersion === "1.0" ? undefined : badRequest(`HTTP/${head.httpVersion} is not accepted: use HTTP/1.1`)),
  },
  {
    name: "loopback-host",
    why: "stops DNS rebinding: a page served by another name must not reach the proxy",
    check: (head) => {
      const hosts = values(head.rawHeaders, "host");
      if (hosts.length === 1 && isLoopbackHost(hosts[0])) return undefined;
      if (hosts.length > 1) return badRequest(`a request must have one Host header, not ${hosts.length}`);
      return forbidden(
        `host ${JSON.stringify(hosts[0] ?? "")} is not accepted: the mcsa proxy serves only localhost, 127.0.0.1 and [::1] (DNS rebinding protection)`,
      );
    },
  },
  {
    name: "same-site",
    why: "a browser page of another site must not open exec or read the API through the proxy",
    check: (head) => {
      const origin = values(head.rawHeaders, "origin")[0];
      if (!isCrossSite(origin, values(head.rawHeaders, "sec-fetch-site")[0])) return undefined;
      return forbidden(`requests from a web page of another site (Origin ${JSON.stringify(origin ?? "")}) are not accepted by the mcsa proxy`);
    },
  },
  {
    name: "api-method",
    why: "the API's methods only: TRACE would echo the token, CONNECT would tunnel anywhere",
    check: (head) =>
      METHODS.has(head.method)
        ? undefined
        : { code: 405, reason: "MethodNotAllowed", message: `method ${head.method} is not accepted by the mcsa proxy: use ${[...METHODS].join(", ")}` },
  },
  {
    name: "origin-form",
    why: "the proxy is not a forward proxy: the target is a path, never a URL, an authority or *",
    check: (head) =>
      head.url.startsWith("/") && !head.url.startsWith("//") && !head.url.includes("#")
        ? undefined
        : badRequest(`the request target ${JSON.stringify(head.url.slice(0, 80))} is not accepted: it must be a path such as /api/v1/pods`),
  },
  {
    name: "plain-path",
    why: "a path that normalises differently elsewhere could carry the token to another route",
    check: (head) => {
      const segments = pathSegments(head.url);
      return "problem" in segments ? badRequest(`the request path is not accepted: ${segments.problem}`) : undefined;
    },
  },
  {
    name: "streams-opt-in",
    why: "exec, attach and port-forward run code or open ports in the remote cluster: off unless the pod allows them",
    check: (head, policy) => {
      const segments = pathSegments(head.url);
      const stream = "problem" in segments ? undefined : streamOf(segments);
      if (stream === undefined || policy.allow.has(stream)) return undefined;
      return forbidden(`${stream} through the mcsa proxy is off: allow it with the pod annotation ${PROXY_ALLOW_ANNOTATION}: ${stream} (sidecar flag --proxy-allow)`);
    },
  },
  {
    name: "upgrade-protocol",
    why: "only the upgrades the API speaks (SPDY/3.1, WebSocket) are tunnelled",
    check: (head) => {
      if (!head.upgrade) return undefined;
      const protocols = values(head.rawHeaders, "upgrade").flatMap((v) => v.split(",").map((p) => p.trim().toLowerCase()));
      if (protocols.length === 1 && UPGRADE_PROTOCOLS.has(protocols[0] as string)) return undefined;
      return badRequest(`Upgrade ${JSON.stringify(protocols.join(", "))} is not accepted: only SPDY/3.1 and websocket`);
    },
  },
  {
    name: "unambiguous-framing",
    why: "a body the proxy and the remote could delimit differently is how requests get smuggled",
    check: (head) => {
      const framing = requestFraming(head.rawHeaders);
      return "problem" in framing ? badRequest(framing.problem) : undefined;
    },
  },
];

/** The first rule's refusal, or undefined when every rule lets the request through. */
export function refusal(head: RequestHead, policy: RequestPolicy, rules: readonly RequestRule[] = REQUEST_RULES): StatusReply | undefined {
  for (const rule of rules) {
    const reply = rule.check(head, policy);
    if (reply !== undefined) return reply;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Header rules: for each header the app sent, the first rule with an opinion decides.

/** Keep the header, drop it, or pass it with another value. */
export type HeaderVerdict = "keep" | "drop" | { value: string };

export interface HeaderContext {
  upgrade: boolean;
  /** Header names (lower case) the message's Connection header lists. */
  listed: ReadonlySet<string>;
}

export interface HeaderRule {
  name: string;
  why: string;
  /** A verdict on one header (name in lower case), or undefined for no opinion. */
  verdict(name: string, value: string, context: HeaderContext): HeaderVerdict | undefined;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding"]);
const WEBSOCKET_BEARER = "base64url.bearer.authorization.k8s.io.";

/** Both ways. On requests, framing (and an upgrade's Upgrade) was decided by earlier rules. */
const HOP_BY_HOP_RULE: HeaderRule = {
  name: "hop-by-hop",
  why: "RFC 9110 7.6.1: Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding concern one hop",
  verdict: (name) => (HOP_BY_HOP.has(name) ? "drop" : undefined),
};
const CONNECTION_LISTED_RULE: HeaderRule = {
  name: "connection-listed",
  why: "a header the Connection header names is hop-by-hop too",
  verdict: (name, _value, context) => (context.listed.has(name) ? "drop" : undefined),
};

export const REQUEST_HEADER_RULES: readonly HeaderRule[] = [
  {
    name: "app-credentials",
    why: "the import's token is the only identity: the app's own never goes through",
    verdict: (name) => (name === "authorization" || name === "proxy-authorization" || name === "cookie" ? "drop" : undefined),
  },
  {
    name: "impersonation",
    why: "Impersonate-User, -Group, -Uid and -Extra-* would act as someone else",
    verdict: (name) => (name.startsWith("impersonate-") ? "drop" : undefined),
  },
  {
    name: "front-proxy-identity",
    why: "X-Remote-User, -Group and -Extra-* are identities an authenticating front proxy asserts",
    verdict: (name) => (name.startsWith("x-remote-") ? "drop" : undefined),
  },
  {
    name: "forwarding",
    why: "X-Forwarded-* and Forwarded would tell the remote a client address or scheme the app made up",
    verdict: (name) => (name.startsWith("x-forwarded-") || name === "forwarded" ? "drop" : undefined),
  },
  {
    name: "host",
    why: "the proxy sends the remote's host",
    verdict: (name) => (name === "host" ? "drop" : undefined),
  },
  {
    name: "framing",
    why: "the proxy frames the body itself (Content-Length or chunked, from what it parsed)",
    verdict: (name) => (name === "content-length" || name === "transfer-encoding" ? "drop" : undefined),
  },
  {
    name: "upgrade",
    why: "kept for an upgrade the proxy tunnels, hop-by-hop otherwise",
    verdict: (name, _value, context) => (name === "upgrade" ? (context.upgrade ? "keep" : "drop") : undefined),
  },
  {
    name: "expectation",
    why: "the proxy answered 100-continue itself and sends the body whole",
    verdict: (name) => (name === "expect" ? "drop" : undefined),
  },
  HOP_BY_HOP_RULE,
  CONNECTION_LISTED_RULE,
  {
    name: "websocket-bearer",
    why: "a WebSocket client's bearer token travels as a Sec-WebSocket-Protocol entry: drop that entry",
    verdict: (name, value) => {
      if (name !== "sec-websocket-protocol") return undefined;
      const kept = value
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p !== "" && !p.toLowerCase().startsWith(WEBSOCKET_BEARER));
      return kept.length > 0 ? { value: kept.join(", ") } : "drop";
    },
  },
];

export const RESPONSE_HEADER_RULES: readonly HeaderRule[] = [
  {
    name: "upgrade-handshake",
    why: "a 101's Upgrade and Connection are the handshake the app waits for",
    verdict: (name, _value, context) => (context.upgrade && (name === "upgrade" || name === "connection") ? "keep" : undefined),
  },
  HOP_BY_HOP_RULE,
  CONNECTION_LISTED_RULE,
  {
    name: "proxy-authenticate",
    why: "the remote's challenge to a proxy is not the app's business",
    verdict: (name) => (name === "proxy-authenticate" ? "drop" : undefined),
  },
];

/** Header names the Connection header lists: also hop-by-hop. */
function connectionTokens(raw: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const value of values(raw, "connection")) for (const t of value.split(",")) if (t.trim() !== "") out.add(t.trim().toLowerCase());
  return out;
}

/** Applies header rules to a flat name/value list (repeated headers stay repeated). */
export function applyHeaderRules(raw: readonly string[], rules: readonly HeaderRule[], options: { upgrade?: boolean } = {}): string[] {
  const context: HeaderContext = { upgrade: options.upgrade ?? false, listed: connectionTokens(raw) };
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    let verdict: HeaderVerdict = "keep";
    for (const rule of rules) {
      const v = rule.verdict(lower, value, context);
      if (v !== undefined) {
        verdict = v;
        break;
      }
    }
    if (verdict === "keep") out.push(name, value);
    else if (verdict !== "drop") out.push(name, verdict.value);
  }
  return out;
}

/**
 * The headers the proxy sends upstream: the app's, filtered by REQUEST_HEADER_RULES, then the
 * remote's Host, the import's token, and framing the proxy computed (an upgrade has no body: what
 * follows its headers is tunnel data, sent only after the remote's 101).
 */
export function upstreamRequestHeaders(raw: readonly string[], add: { host: string; token: string; framing: Framing; upgrade: boolean }): string[] {
  const out = applyHeaderRules(raw, REQUEST_HEADER_RULES, { upgrade: add.upgrade });
  out.push("Host", add.host, "Authorization", `Bearer ${add.token}`);
  if (add.upgrade) out.push("Connection", "Upgrade");
  else if (add.framing.kind === "length") out.push("Content-Length", String(add.framing.length));
  else if (add.framing.kind === "chunked") out.push("Transfer-Encoding", "chunked");
  return out;
}

/** The remote's response headers minus hop-by-hop ones (Node frames the response itself). */
export function filterResponseHeaders(raw: readonly string[], options: { upgrade?: boolean } = {}): string[] {
  return applyHeaderRules(raw, RESPONSE_HEADER_RULES, options);
}

/**
 * The remote path for a request: the server URL's own path (a remote behind a path-routing
 * gateway) joined with the request's path and query. Undefined if the target is not a plain path
 * (the request rules refuse those first).
 */
export function targetPath(serverPath: string, requestUrl: string | undefined): string | undefined {
  if (requestUrl === undefined || !requestUrl.startsWith("/") || requestUrl.startsWith("//")) return undefined;
  if ("problem" in pathSegments(requestUrl)) return undefined;
  const base = serverPath.replace(/\/+$/, "");
  return base + requestUrl;
}

/** A Kubernetes Status object (what kubectl and client libraries parse and print). */
export function statusBody(reply: StatusReply): string {
  return JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: reply.message,
    reason: reply.reason,
    code: reply.code,
  });
}

export const STATUS_HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

/** A whole HTTP/1.1 response with a Status body, for a raw socket (a refused upgrade, a parse error). */
export function rawStatusResponse(reply: StatusReply): string {
  const body = statusBody(reply);
  return (
    `HTTP/1.1 ${reply.code} ${STATUS_TEXT[reply.code] ?? "Error"}\r\n` +
    `Content-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
