// What every e2e app does, whatever its client: read a marker per line on stdin, list the pods of
// its namespace once per marker with the field selector `metadata.name!=<marker>` (matches every
// pod; puts the marker in the request URI, where the remote API server's audit log shows it next
// to the credential used), and print one JSON line per marker. The app runs until stdin closes:
// one process across rotations, as a real app would.
import { createInterface } from "node:readline";

export interface Reply {
  marker: string;
  ok: boolean;
  names?: string[];
  error?: string;
}

export async function serve(list: (fieldSelector: string) => Promise<string[]>): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    const marker = line.trim();
    if (marker === "") continue;
    let reply: Reply;
    try {
      reply = { marker, ok: true, names: await list(`metadata.name!=${marker}`) };
    } catch (error) {
      const e = error as { code?: number; message?: string };
      reply = { marker, ok: false, error: `${e.code ?? ""} ${e.message ?? String(error)}`.trim().split("\n")[0] };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
}
