// Durations as users type them (Go's time.ParseDuration syntax, as kubectl flags take them) and
// ages as kubectl prints them.

const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  "µs": 1e-6,
  "μs": 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

const PART_RE = /(\d+(?:\.\d*)?|\.\d+)([^\d.]+)/gy;

/**
 * Seconds in a Go-style duration ("1h", "90m", "1h30m", "3600s", "1.5h").
 * Token lifetimes are whole seconds and must be positive, so anything else is refused.
 */
export function parseDuration(s: string): number {
  const fail = (why: string): never => {
    throw new Error(`invalid duration ${JSON.stringify(s)}: ${why}`);
  };
  const text = s.trim();
  if (text === "") fail("empty");
  if (text.startsWith("-")) fail("must be positive");
  const body = text.startsWith("+") ? text.slice(1) : text;
  if (/^\d+(\.\d*)?$/.test(body)) fail(`missing unit (e.g. "${body}s", "1h", "90m")`);

  let total = 0;
  PART_RE.lastIndex = 0;
  let end = 0;
  for (let m = PART_RE.exec(body); m !== null; m = PART_RE.exec(body)) {
    const [, num = "", unit = ""] = m;
    const factor = UNIT_SECONDS[unit];
    if (factor === undefined) {
      fail(unit === "d" ? 'unknown unit "d" (use hours, e.g. "24h")' : `unknown unit ${JSON.stringify(unit)}`);
    }
    total += Number(num) * (factor as number);
    end = PART_RE.lastIndex;
  }
  if (end === 0 || end !== body.length) fail('expected a number followed by a unit, e.g. "1h", "90m", "1h30m"');

  // Sub-second units add float noise ("1500ms"); round to the nanosecond before judging.
  const seconds = Math.round(total * 1e9) / 1e9;
  if (seconds === 0) fail("must be positive");
  if (!Number.isInteger(seconds)) fail("must be a whole number of seconds");
  if (!Number.isSafeInteger(seconds)) fail("too large");
  return seconds;
}

/** The shortest Go-style spelling of whole seconds: 5400 → "1h30m", 600 → "10m", 0 → "0s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`cannot format duration of ${seconds} seconds`);
  const total = Math.floor(seconds);
  if (total === 0) return "0s";
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 ? `${s}s` : ""}`;
}

/**
 * Elapsed time from `from` to `now` the way kubectl's AGE column prints it
 * (k8s.io/apimachinery/pkg/util/duration.HumanDuration): precise when recent, coarser with age.
 */
export function formatAge(from: Date, now: Date): string {
  const ms = now.getTime() - from.getTime();
  if (Number.isNaN(ms)) return "<invalid>";
  const seconds = Math.trunc(ms / 1000);
  // Up to a second in the future is clock skew, not an error.
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}
