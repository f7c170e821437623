// The local proxy's rules, as pure functions: which Host headers it accepts, which request and
// response headers it passes on, where a request goes, and the Kubernetes Status it answers with.

/** `kubectl proxy --accept-hosts`' default, port stripped: localhost, 127.0.0.1 and [::1]. */
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

export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(localhost|127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?$/i.exec(host.trim());
  if (!m) return false;
  return m[2] === undefined || Number(m[2]) <= 65535;
}

// Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own business. Transfer-Encoding is kept
// on requests: Node re-chunks a body whose request names it, and drops its own framing otherwise.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding"]);
/** Credentials an app must not pass: the proxy's token is the only identity. */
const CREDENTIALS = new Set(["authorization", "proxy-authorization", "proxy-authenticate"]);

function isImpersonation(lower: string): boolean {
  // Impersonate-User, -Group, -Uid and every Impersonate-Extra-*.
  return lower.startsWith("impersonate-");
}

/** Header names the Connection header lists: also hop-by-hop. */
function connectionTokens(raw: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== "connection") continue;
    for (const t of (raw[i + 1] as string).split(",")) if (t.trim() !== "") out.add(t.trim().toLowerCase());
  }
  return out;
}

/**
 * The app's request headers minus credentials (Authorization, Proxy-Authorization), every
 * Impersonate-* header, Host (set to the remote's) and hop-by-hop headers; `raw` and the result
 * are flat name/value lists like IncomingMessage.rawHeaders, so repeated headers stay repeated.
 * With `upgrade`, the Upgrade header is kept and `Connection: Upgrade` added.
 */
export function filterRequestHeaders(raw: readonly string[], options: { upgrade?: boolean } = {}): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (CREDENTIALS.has(lower) || isImpersonation(lower) || lower === "host") continue;
    if (options.upgrade && lower === "upgrade") {
      out.push(name, raw[i + 1] as string);
      continue;
    }
    if (lower === "sec-websocket-protocol") {
      // The WebSocket way to send a bearer token: the app's credentials never go through.
      const protocols = (raw[i + 1] as string)
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p !== "" && !p.toLowerCase().startsWith("base64url.bearer.authorization.k8s.io."));
      if (protocols.length > 0) out.push(name, protocols.join(", "));
      continue;
    }
    if (lower === "transfer-encoding" && !options.upgrade) {
      out.push(name, raw[i + 1] as string);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || (listed.has(lower) && lower !== "upgrade")) continue;
    out.push(name, raw[i + 1] as string);
  }
  if (options.upgrade) out.push("Connection", "Upgrade");
  return out;
}

/** The remote's response headers minus hop-by-hop ones (Node frames the response itself). */
export function filterResponseHeaders(raw: readonly string[], options: { upgrade?: boolean } = {}): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (options.upgrade && (lower === "upgrade" || lower === "connection")) {
      out.push(name, raw[i + 1] as string);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || lower === "proxy-authenticate") continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/**
 * The remote path for a request: the server URL's own path (a remote behind a path-routing
 * gateway) joined with the request's path and query. Undefined if the target is not a path.
 */
export function targetPath(serverPath: string, requestUrl: string | undefined): string | undefined {
  if (requestUrl === undefined || !requestUrl.startsWith("/") || requestUrl.startsWith("//")) return undefined;
  // A dot segment could climb out of the server URL's own path on a normalising gateway, and
  // carry this import's token to another route: refuse it (the API never needs one).
  const pathPart = requestUrl.split("?")[0]!;
  const segments = pathPart.split("/").map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  });
  if (segments.some((segment) => segment === "." || segment === "..")) return undefined;
  const base = serverPath.replace(/\/+$/, "");
  return base + requestUrl;
}

export interface StatusReply {
  code: number;
  reason: string;
  message: string;
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

/** A whole HTTP/1.1 response with a Status body, for a raw socket (a refused upgrade). */
export function rawStatusResponse(reply: StatusReply, statusText: string): string {
  const body = statusBody(reply);
  return (
    `HTTP/1.1 ${reply.code} ${statusText}\r\n` +
    `Content-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
