// Bounding how long one awaited call may take: the caller names what it waited for, and the error
// says so in one line.

/** Resolves or rejects as work does, or rejects after ms with "<what>: no answer in <ms>ms". */
export function withTimeout<T>(work: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server in ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
