# A Python app as anyone writes it, with Debian's python3-kubernetes: load_kube_config() once
# (KUBECONFIG, as the webhook sets it), the current context's namespace, one client for the
# process's whole life. Same line protocol as protocol.ts.
import json
import sys

from kubernetes import client, config

config.load_kube_config()
_, current = config.list_kube_config_contexts()
namespace = current["context"].get("namespace", "default")
core = client.CoreV1Api()

for line in sys.stdin:
    marker = line.strip()
    if not marker:
        continue
    try:
        pods = core.list_namespaced_pod(namespace, field_selector="metadata.name!=" + marker)
        reply = {"marker": marker, "ok": True, "names": [p.metadata.name for p in pods.items]}
    except Exception as error:  # noqa: BLE001 - the test reads the reason
        reply = {"marker": marker, "ok": False, "error": str(error).splitlines()[0] if str(error) else repr(error)}
    print(json.dumps(reply), flush=True)
