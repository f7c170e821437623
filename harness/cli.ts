// npm run clusters -- up|down|status|leftovers|build [--dir DIR] [--count N] [--restart] [--no-node]
import { parseArgs } from "node:util";
import { cacheDir, ensureBinaries } from "./binaries.ts";
import { ensureHelm } from "./helm.ts";
import { ClustersAlreadyRunning, DEFAULT_DIR, allRunning, down, leftovers, readState, up } from "./clusters.ts";
import { DEFAULT_SANDBOX_IMAGE, NodeUnavailable } from "./node.ts";

const USAGE = `usage: npm run clusters -- <command> [flags]

commands:
  build      build the Kubernetes binaries, etcd and helm if they are not cached yet
  up         start N local clusters (etcd + kube-apiserver + kube-controller-manager each; cluster1
             also gets a real node: containerd + kubelet + kube-scheduler) and write DIR/kubeconfig
  down       stop them and remove their data and everything the node left on the machine
  status     show whether they run
  leftovers  list what clusters of DIR or a node left on the machine (processes, mounts, cgroups,
             iptables chains, links, directories); exits 1 if anything is left

flags:
  --dir DIR              where clusters keep data, logs and kubeconfig (default ${DEFAULT_DIR})
  --count N              how many clusters up starts (default 2)
  --restart              with up: stop running clusters of DIR first
  --no-node              with up: API-only clusters, no kubelet (pods are stored, never run)
  --sandbox-image IMAGE  with up: the node's pod sandbox image (default ${DEFAULT_SANDBOX_IMAGE})
  -h, --help             show this help`;

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
        "no-node": { type: "boolean", default: false },
        "sandbox-image": { type: "string" },
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
        const node = values["no-node"] ? undefined : { sandboxImage: values["sandbox-image"] };
        const state = await up({ dir, count, node });
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        console.log(`started ${state.clusters.length} clusters in ${seconds}s:`);
        for (const c of state.clusters) {
          const node = c.node ? `  node ${c.node.name} Ready ${c.node.readySeconds.toFixed(1)}s after its kubelet started (logs: ${c.node.dir})` : "";
          console.log(`  ${c.name}  ${c.server}${node}`);
        }
        console.log(`kubeconfig: ${state.kubeconfig}  (contexts: ${state.clusters.map((c) => c.name).join(", ")})`);
        console.log(`kubectl:    ${state.kubectl}`);
        console.log(`try:        ${state.kubectl} --kubeconfig ${state.kubeconfig} --context cluster2 get namespaces`);
        console.log("stop with:  npm run clusters -- down" + (values.dir ? ` --dir ${values.dir}` : ""));
        return 0;
      } catch (error) {
        if (error instanceof ClustersAlreadyRunning || error instanceof NodeUnavailable) {
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
      // After Kubernetes: two cores are not enough for two Go builds at once.
      console.log(`helm:           ${(await ensureHelm()).helm}`);
      console.log(`ready in ${((Date.now() - started) / 1000).toFixed(1)}s (cache: ${cacheDir()})`);
      return 0;
    }
    case "down": {
      if (values.count !== undefined || values.restart || values["no-node"] || values["sandbox-image"] !== undefined) {
        console.error("error: down takes only --dir");
        return 2;
      }
      const stopped = await down(dir);
      console.log(stopped ? `stopped the clusters and removed ${dir}` : `no clusters in ${dir}: nothing to stop`);
      return 0;
    }
    case "leftovers": {
      const found = leftovers(dir);
      for (const line of found) console.log(line);
      console.log(found.length === 0 ? "nothing left" : `${found.length} leftovers: \`npm run clusters -- down\` removes them`);
      return found.length === 0 ? 0 : 1;
    }
    case "status": {
      const state = readState(dir);
      if (!state) {
        console.log(`no clusters in ${dir}`);
        return 1;
      }
      const running = allRunning(state);
      console.log(
        `${running ? "running" : "not (all) running"}: ${state.clusters.map((c) => `${c.name} ${c.server}${c.node ? ` (node ${c.node.name})` : ""}`).join(", ")}`,
      );
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
