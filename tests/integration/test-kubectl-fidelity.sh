#!/bin/bash
# Fidelity of the test API server, judged by a real client nobody here wrote: Debian's kubectl
# 1.20 must list, cordon, uncordon and drain against it exactly as against a real cluster, with
# token and client-certificate kubeconfigs. If kubectl accepts the server, the daemon's tests
# against it mean something.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3

kubectl="$("$here/find-kubectl.sh")"
"$kubectl" version --client --short 2>/dev/null || "$kubectl" version --client

work="$(mktemp -d "${TMPDIR:-/tmp}/kubectl-fidelity.XXXXXX")"
server_pid=
cleanup() {
        if [[ -n "$server_pid" ]]; then
                kill "$server_pid" 2>/dev/null || true
                wait "$server_pid" 2>/dev/null || true
        fi
        if [[ "${KEEP_WORK:-}" != 1 ]]; then
                rm -rf "$work"
        fi
}
trap cleanup EXIT

fail() {
        echo "FAIL: $*" >&2
        echo "--- server log ---" >&2
        cat "$work/server.log" >&2 || true
        exit 1
}

cat >"$work/seed.json" <<'EOF'
[
 {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
  "spec": {}},
 {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}},
  "spec": {}},
 {"apiVersion": "apps/v1", "kind": "DaemonSet",
  "metadata": {"name": "agent", "namespace": "kube-system", "uid": "d5000000-0000-0000-0000-000000000001"},
  "spec": {"selector": {"matchLabels": {"app": "agent"}},
           "template": {"metadata": {"labels": {"app": "agent"}},
                        "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "agent-n1", "namespace": "kube-system", "labels": {"app": "agent"},
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                    "uid": "d5000000-0000-0000-0000-000000000001", "controller": true}]},
  "spec": {"nodeName": "n1", "containers": [{"name": "agent", "image": "agent:1"}]}},
 {"apiVersion": "apps/v1", "kind": "ReplicaSet",
  "metadata": {"name": "web-6d4f", "namespace": "default", "uid": "35000000-0000-0000-0000-000000000001"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
           "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"terminationGracePeriodSeconds": 30,
                                 "containers": [{"name": "web", "image": "web:1"}]}}}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web-6d4f-aaaaa", "namespace": "default", "labels": {"app": "web"},
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d4f",
                                    "uid": "35000000-0000-0000-0000-000000000001", "controller": true}]},
  "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30, "containers": [{"name": "web", "image": "web:1"}]}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web-6d4f-bbbbb", "namespace": "default", "labels": {"app": "web"},
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d4f",
                                    "uid": "35000000-0000-0000-0000-000000000001", "controller": true}]},
  "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30, "containers": [{"name": "web", "image": "web:1"}]}},
 {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
  "metadata": {"name": "web", "namespace": "default"},
  "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "kube-proxy-n1", "namespace": "kube-system",
               "annotations": {"kubernetes.io/config.mirror": "0123456789abcdef"},
               "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                                    "uid": "n1", "controller": true}]},
  "spec": {"nodeName": "n1", "containers": [{"name": "kube-proxy", "image": "kube-proxy:1"}]}},
 {"apiVersion": "apps/v1", "kind": "ReplicaSet",
  "metadata": {"name": "cache-77b9", "namespace": "default", "uid": "35000000-0000-0000-0000-000000000002"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cache"}},
           "template": {"metadata": {"labels": {"app": "cache"}},
                        "spec": {"terminationGracePeriodSeconds": 10,
                                 "containers": [{"name": "cache", "image": "cache:1"}],
                                 "volumes": [{"name": "scratch", "emptyDir": {}}]}}}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "cache-77b9-ccccc", "namespace": "default", "labels": {"app": "cache"},
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "cache-77b9",
                                    "uid": "35000000-0000-0000-0000-000000000002", "controller": true}]},
  "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10,
           "containers": [{"name": "cache", "image": "cache:1"}],
           "volumes": [{"name": "scratch", "emptyDir": {}}]}},
 {"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "bare", "namespace": "default"},
  "spec": {"nodeName": "n2", "containers": [{"name": "bare", "image": "bare:1"}]}},
 {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
  "metadata": {"name": "nodereboot-0", "namespace": "kube-system", "labels": {"nodereboot.io/lock": "nodereboot"}},
  "spec": {"holderIdentity": "", "leaseDurationSeconds": 3600}}
]
EOF

"$python" "$here/kube-apiserver.py" --state-dir "$work/state" --seed "$work/seed.json" \
        >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do
        [[ -f "$work/state/ready.json" ]] && break
        kill -0 "$server_pid" 2>/dev/null || fail "the server exited during start-up"
        sleep 0.05
done
[[ -f "$work/state/ready.json" ]] || fail "the server did not become ready in 10 s"
control="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_url"])' "$work/state/ready.json")"

# kubectl keeps a discovery cache under $HOME; a private one keeps runs independent.
export HOME="$work/home"
mkdir -p "$HOME"

kc() {
        echo "+ kubectl $*"
        local rc=0
        "$kubectl" --kubeconfig "$work/state/admin.kubeconfig" "$@" >"$work/out" 2>&1 || rc=$?
        cat "$work/out"
        return $rc
}

# The object as the server stores it, one field picked out with a Python expression on `o`.
field() {  # kind namespace name expression
        curl -sS --fail "$control/objects?kind=$1&namespace=$2&name=$3" |
                "$python" -c 'import json,sys; l=json.load(sys.stdin); o=l[0] if l else None; print('"$4"')'
}

pods_on() {  # node -> "namespace/name" lines, sorted
        curl -sS --fail "$control/objects?kind=Pod" | "$python" -c '
import json, sys
for p in json.load(sys.stdin):
    if p["spec"].get("nodeName") == sys.argv[1]:
        print(p["metadata"]["namespace"] + "/" + p["metadata"]["name"])' "$1" | sort
}

passed=0
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }

echo "== listing"
kc get nodes,pods,leases -A || fail "get nodes,pods,leases -A"
grep -q '^node/n1 *Ready' "$work/out" || fail "n1 not listed as Ready"
grep -q 'kube-system *pod/agent-n1 *1/1 *Running' "$work/out" || fail "agent-n1 not listed Running"
grep -q 'kube-system *lease.coordination.k8s.io/nodereboot-0' "$work/out" || fail "lease not listed"
ok "get nodes,pods,leases -A"

kc get lease -n kube-system || fail "get lease -n kube-system"
grep -q '^nodereboot-0 ' "$work/out" || fail "nodereboot-0 not in the lease list"
ok "get lease -n kube-system"

kc get pods -A -l 'app in (web,cache)' --field-selector spec.nodeName=n1 -o name || fail "selectors"
[[ "$(sort "$work/out" | tr '\n' ' ')" == "pod/cache-77b9-ccccc pod/web-6d4f-aaaaa pod/web-6d4f-bbbbb " ]] ||
        fail "label+field selector listed the wrong pods"
ok "get with label and field selectors"

kc get lease nodereboot-0 -n kube-system -o jsonpath='{.metadata.resourceVersion}' || fail "get -o jsonpath"
[[ "$(cat "$work/out")" =~ ^[0-9]+$ ]] || fail "resourceVersion is not a number string"
ok "get -o jsonpath"

echo "+ kubectl --kubeconfig admin-cert.kubeconfig get nodes"
"$kubectl" --kubeconfig "$work/state/admin-cert.kubeconfig" get nodes >"$work/out" 2>&1 ||
        { cat "$work/out"; fail "get nodes with a client certificate"; }
cat "$work/out"
grep -q '^n2 ' "$work/out" || fail "n2 missing in the client-certificate listing"
curl -sS --fail "$control/log" | "$python" -c '
import json, sys
log = json.load(sys.stdin)
assert any(e["user"] == "admin" and e["path"] == "/api/v1/nodes" and e["status"] == 200 for e in log), "no cert-authenticated list"' ||
        fail "the request log does not show the client-certificate request"
ok "client-certificate kubeconfig"

echo "== cordon and uncordon"
kc cordon n1 || fail "cordon n1"
[[ "$(field Node _ n1 'o["spec"].get("unschedulable")')" == True ]] || fail "n1 not unschedulable after cordon"
kc get node n1 || fail "get node n1"
grep -q 'Ready,SchedulingDisabled' "$work/out" || fail "cordoned n1 not shown as SchedulingDisabled"
ok "cordon sets spec.unschedulable"

kc uncordon n1 || fail "uncordon n1"
[[ "$(field Node _ n1 'o["spec"].get("unschedulable")')" == None ]] || fail "n1 still unschedulable after uncordon"
ok "uncordon clears spec.unschedulable"

curl -sS --fail "$control/timeline" | "$python" -c '
import json, sys
t = [(e["node"], e["unschedulable"]) for e in json.load(sys.stdin) if e["node"] == "n1"]
assert t == [("n1", False), ("n1", True), ("n1", False)], t' || fail "timeline of n1 is wrong"
ok "timeline records the initial state, the cordon and the uncordon"

echo "== drain"
kc drain n1 --ignore-daemonsets --delete-emptydir-data --timeout=60s || fail "drain n1"
grep -q 'evicting pod default/web-6d4f-' "$work/out" || fail "drain did not evict the web pods"
grep -Eq '^node/n1 (drained|evicted)$' "$work/out" || fail "drain did not finish"
echo "pods on n1 now:"
pods_on n1
[[ "$(pods_on n1 | tr '\n' ' ')" == "kube-system/agent-n1 kube-system/kube-proxy-n1 " ]] ||
        fail "after the drain n1 should keep only the DaemonSet and mirror pods"
[[ "$(field Node _ n1 'o["spec"].get("unschedulable")')" == True ]] || fail "drain did not cordon n1"
ok "drain leaves only the DaemonSet and mirror pods on n1"

echo "pods on n2 now:"
pods_on n2
[[ "$(pods_on n2 | grep -c '^default/web-6d4f-')" == 2 ]] || fail "the web ReplicaSet was not replaced on n2"
[[ "$(pods_on n2 | grep -c '^default/cache-77b9-')" == 1 ]] || fail "the cache ReplicaSet was not replaced on n2"
for _ in $(seq 50); do
        running=$(curl -sS --fail "$control/objects?kind=Pod&namespace=default" | "$python" -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin) if p["spec"].get("nodeName") == "n2" and p["status"].get("phase") == "Running"))')
        [[ "$running" == 4 ]] && break
        sleep 0.1
done
[[ "$running" == 4 ]] || fail "replacements on n2 did not become Running ($running of 4)"
ok "ReplicaSet pods were replaced on n2 and run"

curl -sS --fail "$control/log" | "$python" -c '
import json, sys
log = json.load(sys.stdin)
ev = [e for e in log if e.get("resource") == "pods/eviction"]
assert ev, "no evictions logged"
assert any(e["status"] == 429 for e in ev), "the PDB never refused an eviction: %r" % [e["status"] for e in ev]
assert all(e["status"] in (201, 429) for e in ev), [e["status"] for e in ev]
assert all(e["verb"] == "create" for e in ev)
print("evictions:", [(e["name"], e["status"]) for e in ev])' ||
        fail "the evictions were not honoured by the PDB"
ok "drain went through the eviction API, and the PDB (maxUnavailable 1) made it wait"

echo "== drain refuses unmanaged pods"
if kc drain n2 --ignore-daemonsets --delete-emptydir-data --timeout=10s; then
        fail "drain n2 succeeded although it runs a pod without a controller"
fi
grep -q 'default/bare' "$work/out" || fail "drain did not name the unmanaged pod"
[[ "$(pods_on n2 | grep -c "^default/")" == 4 ]] || fail "the refused drain evicted pods"
kc uncordon n2 || fail "uncordon n2"
ok "drain without --force refuses a pod without a controller and evicts nothing"

echo "$passed passed, 0 failed"
