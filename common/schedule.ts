// When to renew a token, and how long to wait after failures: pure, so tests pin them down.

/** Renew at ~80% of the token's real lifetime (the server may have shortened it), ±5% jitter. */
export function renewalDelayMs(issuedAt: Date, expiresAt: Date, now: Date, random: number = Math.random()): number {
  const lifetime = expiresAt.getTime() - issuedAt.getTime();
  const fraction = 0.8 + (random - 0.5) * 0.1;
  return Math.max(0, issuedAt.getTime() + lifetime * fraction - now.getTime());
}

/** Exponential backoff from baseMs doubling per failure up to maxMs, with up to 20% jitter down. */
export function backoffMs(failures: number, baseMs = 1000, maxMs = 60_000, random: number = Math.random()): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (1 - 0.2 * random));
}
