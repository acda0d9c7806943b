# Shared settings for up and down (sourced). Everything a running control plane owns lives in
# one state folder: pids, certificates, kubeconfig, logs and etcd's data. `down` removes it.
cluster_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ATHENS_TEST_CACHE="${ATHENS_TEST_CACHE:-$HOME/.cache/athens-operator-tests}"
state="${ATHENS_CLUSTER_STATE:-${TMPDIR:-/tmp}/athens-operator-cluster-$(id -u)}"
# Fixed loopback ports, all in one block so a clash is easy to avoid: set ATHENS_CLUSTER_PORT_BASE
# to run a second cluster (with its own ATHENS_CLUSTER_STATE) beside the first.
port_base="${ATHENS_CLUSTER_PORT_BASE:-36440}"
apiserver_port=$((port_base + 3))
etcd_port=$((port_base + 0))
etcd_peer_port=$((port_base + 1))
controller_manager_port=$((port_base + 4))
scheduler_port=$((port_base + 5))
kubeconfig="$state/kubeconfig"
path_dir="$state/bin"

# A pid from the pids file is ours only if the process still runs our binary: pids get reused.
pid_is_ours() { # pid binary
  [[ -r "/proc/$1/cmdline" ]] && [[ "$(tr '\0' '\n' < "/proc/$1/cmdline" | head -n1)" == "$2" ]]
}
