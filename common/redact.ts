// Scrubs credentials from text bound for logs, events and error messages.

// A JWT: base64url header starting `{"` (eyJ), payload, optional signature.
const JWT_RE = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
// RFC 6750 b64token after the Bearer scheme, whatever the case; "bearer token" in prose (as in
// the API server's "invalid bearer token") stays readable.
const BEARER_RE = /\b(bearer)(\s+)(?!tokens?\b)[A-Za-z0-9\-._~+/]+=*/gi;

/** `text` with JWTs and Bearer credentials replaced by [REDACTED]. */
export function redactTokens(text: string): string {
  return text.replace(JWT_RE, "[REDACTED]").replace(BEARER_RE, "$1$2[REDACTED]");
}
