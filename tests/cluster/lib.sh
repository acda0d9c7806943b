# Shared settings for up, down and component (sourced). Everything a running control plane owns
# lives in one state folder: pids, ports, command lines, certificates, kubeconfig, logs and
# etcd's data. `down` removes it.
cluster_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ATHENS_TEST_CACHE="${ATHENS_TEST_CACHE:-$HOME/.cache/athens-operator-tests}"
state="${ATHENS_CLUSTER_STATE:-${TMPDIR:-/tmp}/athens-operator-cluster-$(id -u)}"
kubeconfig="$state/kubeconfig"
path_dir="$state/bin"
# The ports a started cluster listens on (etcd_port, etcd_peer_port, apiserver_port,
# controller_manager_port, scheduler_port), chosen by `up` and recorded here.
ports_file="$state/ports"
# shellcheck source=/dev/null
[[ -f "$ports_file" ]] && . "$ports_file"

# A pid from the pids file is ours only if the process still runs our binary: pids get reused.
# Lines of the pids file: pid binary component-name.
pid_is_ours() { # pid binary
  [[ -r "/proc/$1/cmdline" ]] && [[ "$(tr '\0' '\n' < "/proc/$1/cmdline" | head -n1)" == "$2" ]]
}
all_running() {
  local pid bin
  while read -r pid bin _; do pid_is_ours "$pid" "$bin" || return 1; done < "$state/pids"
}

# Starts a component from the command line `up` recorded in cmd/<name> (NUL-separated), in the
# background, detached from the caller (its own session, no shared stdout, so `eval "$(up)"`
# returns; not holding the lock on fd 9, so the next up can check on it), and records its pid.
# The process writes its own pid before it execs the component: setsid forks when its caller
# leads a process group (a shell with job control), so $! would be a pid that exits at once.
start_component() { # name
  local name="$1" argv pidfile="$state/cmd/$1.pid"
  mapfile -d '' argv < "$state/cmd/$name"
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner shell
  setsid bash -c 'echo "$$" > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "${argv[@]}" \
    </dev/null >>"$state/logs/$name.log" 2>&1 8>&- 9>&- &
  for _ in $(seq 200); do [[ -s "$pidfile" ]] && break; sleep 0.05; done
  echo "$(cat "$pidfile") ${argv[0]} $name" >> "$state/pids"
}

# Stops one component (SIGTERM, then SIGKILL after 10 s) and drops it from the pids file.
# With a third argument KILL it is killed at once, as a crash would.
stop_component() { # name [KILL]
  local name="$1" signal="${2:-TERM}" pid bin n others=()
  while read -r pid bin n; do
    if [[ "$n" != "$name" ]]; then others+=("$pid $bin $n"); continue; fi
    pid_is_ours "$pid" "$bin" || continue
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do pid_is_ours "$pid" "$bin" || break; sleep 0.1; done
    if pid_is_ours "$pid" "$bin"; then kill -KILL "$pid" 2>/dev/null || true; fi
    while pid_is_ours "$pid" "$bin"; do sleep 0.05; done
  done < "$state/pids"
  printf '%s\n' "${others[@]+"${others[@]}"}" | sed '/^$/d' > "$state/pids.new"
  mv "$state/pids.new" "$state/pids"
}
