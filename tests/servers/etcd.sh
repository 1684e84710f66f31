# tests/servers/etcd.sh — start/stop real etcd servers (Debian etcd-server) on
# loopback for relais tests.  Source it (bash), from any directory:
#
#   . tests/servers/etcd.sh
#   etcd_start DIR              # one member; data under DIR
#   etcd_cluster_start DIR 3    # N members (1..9); data under DIR/mI
#   etcd_member_kill I          # SIGKILL member I (1-based)
#   etcd_member_stop I          # SIGTERM member I, wait for it to exit
#   etcd_member_restart I       # start member I again on its old data and ports
#   etcd_stop                   # stop every member started by this shell
#
# Exports after a start:
#   ETCD_ENDPOINT        http://127.0.0.1:PORT of member 1 (JSON gateway: /v3/)
#   ETCD_ENDPOINTS       comma-separated client URLs of all members
#   ETCD_CLIENT_PORTS    space-separated client ports, in member order
#   ETCD_PIDS            space-separated PIDs, in member order (0 = not running)
#   ETCD_DIR             the DIR given to the start function
#   ETCDCTL_API=3
# Logs: DIR/mI/etcd.log.  Ports: rt_pick_port (tests/servers/common.sh).
# Returns non-zero (and prints the log tail) if a member does not answer
# /health within ETCD_START_TIMEOUT seconds (default 30).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # rt_pick_port

_etcd_launch() {
    # Start member $1 in the background with the recorded config.
    local i=$1 d="${ETCD_DIR}/m$1" st=new
    [ -d "$d/data/member" ] && st=existing
    mkdir -p "$d"
    etcd --name "m$i" --data-dir "$d/data" \
        --listen-client-urls "http://127.0.0.1:${_ETCD_CPORT[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${_ETCD_CPORT[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${_ETCD_PPORT[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${_ETCD_PPORT[$i]}" \
        --initial-cluster "${_ETCD_ICLUSTER}" \
        --initial-cluster-token relais-test \
        --initial-cluster-state "$st" \
        --heartbeat-interval 50 --election-timeout 500 \
        --log-level warn --logger zap \
        </dev/null >>"$d/etcd.log" 2>&1 &
    _ETCD_PID[$i]=$!
    echo "${_ETCD_PID[$i]}" >"$d/etcd.pid"
    _etcd_export
}

_etcd_export() {
    local i pids="" ports="" eps=""
    for i in $(seq 1 "${_ETCD_N}"); do
        pids="$pids ${_ETCD_PID[$i]:-0}"
        ports="$ports ${_ETCD_CPORT[$i]}"
        eps="$eps,http://127.0.0.1:${_ETCD_CPORT[$i]}"
    done
    export ETCD_PIDS="${pids# }" ETCD_CLIENT_PORTS="${ports# }"
    export ETCD_ENDPOINTS="${eps#,}"
    export ETCD_ENDPOINT="http://127.0.0.1:${_ETCD_CPORT[1]}"
    export ETCD_DIR ETCDCTL_API=3
}

_etcd_wait() {
    # Wait until member $1 reports {"health":"true"}.
    local i=$1 t=$(( ${ETCD_START_TIMEOUT:-30} * 10 )) n=0 out
    while [ "$n" -lt "$t" ]; do
        out=$(curl -s --max-time 1 "http://127.0.0.1:${_ETCD_CPORT[$i]}/health" 2>/dev/null) || out=""
        case "$out" in *'"health":"true"'*) return 0 ;; esac
        if ! kill -0 "${_ETCD_PID[$i]}" 2>/dev/null; then
            echo "etcd.sh: member m$i exited:" >&2
            tail -20 "${ETCD_DIR}/m$i/etcd.log" >&2
            return 1
        fi
        sleep 0.1
        n=$((n + 1))
    done
    echo "etcd.sh: member m$i not healthy after ${ETCD_START_TIMEOUT:-30}s:" >&2
    tail -20 "${ETCD_DIR}/m$i/etcd.log" >&2
    return 1
}

etcd_cluster_start() {
    # etcd_cluster_start DIR N: start N fresh members, data under DIR.
    local dir=$1 n=${2:-3} i
    if [ -z "$dir" ] || [ "$n" -lt 1 ] || [ "$n" -gt 9 ]; then
        echo "usage: etcd_cluster_start DIR N(1..9)" >&2; return 2
    fi
    command -v etcd >/dev/null || { echo "etcd.sh: etcd not installed (apt-get install etcd-server)" >&2; return 1; }
    [ -n "${_ETCD_N:-}" ] && [ "${_ETCD_N}" -gt 0 ] && etcd_stop
    mkdir -p "$dir" || return 1
    ETCD_DIR=$(cd "$dir" && pwd)
    rm -rf "${ETCD_DIR}"/m[1-9]
    _ETCD_N=$n; _ETCD_CPORT=(); _ETCD_PPORT=(); _ETCD_PID=(); _ETCD_ICLUSTER=""
    for i in $(seq 1 "$n"); do
        rt_pick_port "_ETCD_CPORT[$i]" || return 1
        rt_pick_port "_ETCD_PPORT[$i]" || return 1
        _ETCD_ICLUSTER="${_ETCD_ICLUSTER},m$i=http://127.0.0.1:${_ETCD_PPORT[$i]}"
    done
    _ETCD_ICLUSTER=${_ETCD_ICLUSTER#,}
    for i in $(seq 1 "$n"); do _etcd_launch "$i"; done
    for i in $(seq 1 "$n"); do _etcd_wait "$i" || { etcd_stop; return 1; }; done
    return 0
}

etcd_start() {
    # etcd_start DIR: a single fresh member.
    etcd_cluster_start "$1" 1
}

etcd_member_kill() {
    # etcd_member_kill I: SIGKILL member I (crash); its data stays.
    local i=$1 pid=${_ETCD_PID[$1]:-0}
    [ "$pid" -gt 0 ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _ETCD_PID[$i]=0; _etcd_export
}

etcd_member_stop() {
    # etcd_member_stop I: SIGTERM member I and wait (max 10 s, then SIGKILL).
    local i=$1 pid=${_ETCD_PID[$1]:-0} n=0
    [ "$pid" -gt 0 ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _ETCD_PID[$i]=0; _etcd_export
}

etcd_member_restart() {
    # etcd_member_restart I: (stop if running, then) start member I on its
    # old data and ports; waits until it is healthy (needs a quorum).
    local i=$1
    [ -n "${_ETCD_CPORT[$i]:-}" ] || { echo "etcd.sh: no member $i" >&2; return 2; }
    etcd_member_stop "$i"
    _etcd_launch "$i"
    _etcd_wait "$i"
}

etcd_stop() {
    # Stop every member started by this shell; keeps DIR for inspection.
    local i
    for i in $(seq 1 "${_ETCD_N:-0}"); do etcd_member_stop "$i"; done
    _ETCD_N=0
    unset ETCD_ENDPOINT ETCD_ENDPOINTS ETCD_PIDS ETCD_CLIENT_PORTS
}
