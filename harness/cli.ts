// npm run clusters -- up|down|status [--dir DIR] [--count N] [--restart]
import { parseArgs } from "node:util";
import { cacheDir, ensureBinaries } from "./binaries.ts";
import { ClustersAlreadyRunning, DEFAULT_DIR, allRunning, down, readState, up } from "./clusters.ts";

const USAGE = `usage: npm run clusters -- <command> [flags]

commands:
  build    build kube-apiserver, kubectl and etcd if they are not cached yet
  up       start N local clusters (etcd + kube-apiserver each) and write DIR/kubeconfig
  down     stop them and remove their data
  status   show whether they run

flags:
  --dir DIR     where clusters keep data, logs and kubeconfig (default ${DEFAULT_DIR})
  --count N     how many clusters up starts (default 2)
  --restart     with up: stop running clusters of DIR first
  -h, --help    show this help`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        dir: { type: "string" },
        count: { type: "string" },
        restart: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (positionals.length > 1) {
    console.error(`error: unexpected argument ${JSON.stringify(positionals[1])}\n\n${USAGE}`);
    return 2;
  }
  const dir = values.dir ?? DEFAULT_DIR;
  switch (command) {
    case "up": {
      const count = values.count === undefined ? 2 : Number(values.count);
      if (values.restart && (await down(dir))) console.error(`stopped the clusters in ${dir}`);
      const started = Date.now();
      try {
        const state = await up({ dir, count });
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        console.log(`started ${state.clusters.length} clusters in ${seconds}s:`);
        for (const c of state.clusters) console.log(`  ${c.name}  ${c.server}`);
        console.log(`kubeconfig: ${state.kubeconfig}  (contexts: ${state.clusters.map((c) => c.name).join(", ")})`);
        console.log(`kubectl:    ${state.kubectl}`);
        console.log(`try:        ${state.kubectl} --kubeconfig ${state.kubeconfig} --context cluster2 get namespaces`);
        console.log("stop with:  npm run clusters -- down" + (values.dir ? ` --dir ${values.dir}` : ""));
        return 0;
      } catch (error) {
        if (error instanceof ClustersAlreadyRunning) {
          console.error(`error: ${error.message}`);
          return 1;
        }
        throw error;
      }
    }
    case "build": {
      const started = Date.now();
      const binaries = await ensureBinaries();
      console.log(`kube-apiserver: ${binaries.kubeApiserver}`);
      console.log(`kubectl:        ${binaries.kubectl}`);
      console.log(`etcd:           ${binaries.etcd}`);
      console.log(`ready in ${((Date.now() - started) / 1000).toFixed(1)}s (cache: ${cacheDir()})`);
      return 0;
    }
    case "down": {
      if (values.count !== undefined || values.restart) {
        console.error("error: down takes only --dir");
        return 2;
      }
      const stopped = await down(dir);
      console.log(stopped ? `stopped the clusters and removed ${dir}` : `no clusters in ${dir}: nothing to stop`);
      return 0;
    }
    case "status": {
      const state = readState(dir);
      if (!state) {
        console.log(`no clusters in ${dir}`);
        return 1;
      }
      const running = allRunning(state);
      console.log(`${running ? "running" : "not (all) running"}: ${state.clusters.map((c) => `${c.name} ${c.server}`).join(", ")}`);
      console.log(`kubeconfig: ${state.kubeconfig}`);
      console.log(`kubectl:    ${state.kubectl}`);
      return running ? 0 : 1;
    }
    default:
      console.error(`error: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  },
);
