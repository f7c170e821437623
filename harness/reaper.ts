// Stops a test run's clusters when the process that started them dies without tearing down
// (killed, crashed): started detached, it polls its owner and removes the clusters' directory.
import { existsSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { down } from "./clusters.ts";

const [ownerArg, dir] = process.argv.slice(2);
const owner = Number(ownerArg);
if (!owner || !dir) {
  console.error("usage: reaper.ts OWNER_PID DIR");
  process.exit(2);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

while (existsSync(dir)) {
  if (!alive(owner)) {
    await down(dir);
    break;
  }
  await delay(500);
}
