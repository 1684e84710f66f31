# tests/servers/etcd.sh — start/stop real etcd servers (Debian etcd-server) on
# loopback for relais tests.  Source it (bash), from any directory:
#
#   . tests/servers/etcd.sh
#   etcd_start DIR              # one member; data under DIR
#   etcd_cluster_start DIR 3    # N members (1..9); data under DIR/mI
#   etcd_member_kill I          # SIGKILL member I (1-based)
#   etcd_member_stop I          # SIGTERM member I, wait for it to exit
#   etcd_member_restart I       # start member I again on its old data and ports
#   etcd_stop                   # stop every member of the current cluster
#   etcd_curl ARGS...           # curl with the current cluster's TLS options
#
# TLS (client side; peers stay plain http on loopback): set, for the start
# call (e.g. `ETCD_TLS_DIR=$K etcd_start DIR`):
#   ETCD_TLS_DIR=DIR        holding ca.pem, server.pem, server-key.pem: the
#                           members serve https://127.0.0.1:PORT (--cert-file,
#                           --key-file; the certificate must cover IP
#                           127.0.0.1); restarts keep it
#   ETCD_TLS_CLIENT_AUTH=1  mutual TLS as well (--client-cert-auth
#                           --trusted-ca-file DIR/ca.pem); DIR must then
#                           also hold client.pem, client-key.pem (used by
#                           the readiness check, etcd_curl and etcdctl)
#
# Several clusters in one shell: each start stops the current cluster
# first, so give each its own name:
#   etcd_use east; etcd_start DIR1      # cluster "east" becomes current
#   etcd_use west; etcd_start DIR2      # "east" keeps running
#   etcd_use east; etcd_member_kill 1   # the functions act on the current one
#   etcd_stop_all                       # every cluster of this shell
# The cluster used before any etcd_use is named "default".
#
# Exports after a start (and after etcd_use), for the current cluster:
#   ETCD_ENDPOINT        http(s)://127.0.0.1:PORT of member 1 (JSON gateway: /v3/)
#   ETCD_ENDPOINTS       comma-separated client URLs of all members
#   ETCD_CLIENT_PORTS    space-separated client ports, in member order
#   ETCD_PIDS            space-separated PIDs, in member order (0 = not running)
#   ETCD_DIR             the DIR given to the start function
#   ETCDCTL_API=3
#   ETCDCTL_CACERT (TLS), ETCDCTL_CERT and ETCDCTL_KEY (mutual TLS): etcdctl
#                        reads them; unset for a plain cluster
# Logs: DIR/mI/etcd.log.  Ports: rt_pick_port (tests/servers/common.sh).
# Returns non-zero (and prints the log tail) if a member does not answer
# /health within ETCD_START_TIMEOUT seconds (default 30).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # rt_pick_port

_etcd_launch() {
    # Start member $1 in the background with the recorded config.
    local i=$1 d="${ETCD_DIR}/m$1" st=new sch=http tls=()
    [ -d "$d/data/member" ] && st=existing
    mkdir -p "$d"
    if [ -n "${_ETCD_TLS}" ]; then
        sch=https
        tls=(--cert-file "${_ETCD_TLS}/server.pem" --key-file "${_ETCD_TLS}/server-key.pem")
        [ "${_ETCD_MTLS}" = 1 ] && tls+=(--client-cert-auth --trusted-ca-file "${_ETCD_TLS}/ca.pem")
    fi
    etcd --name "m$i" --data-dir "$d/data" \
        --listen-client-urls "$sch://127.0.0.1:${_ETCD_CPORT[$i]}" \
        --advertise-client-urls "$sch://127.0.0.1:${_ETCD_CPORT[$i]}" \
        "${tls[@]}" \
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
    local i pids="" ports="" eps="" sch=http
    [ -n "${_ETCD_TLS}" ] && sch=https
    for i in $(seq 1 "${_ETCD_N}"); do
        pids="$pids ${_ETCD_PID[$i]:-0}"
        ports="$ports ${_ETCD_CPORT[$i]}"
        eps="$eps,$sch://127.0.0.1:${_ETCD_CPORT[$i]}"
    done
    export ETCD_PIDS="${pids# }" ETCD_CLIENT_PORTS="${ports# }"
    export ETCD_ENDPOINTS="${eps#,}"
    export ETCD_ENDPOINT="$sch://127.0.0.1:${_ETCD_CPORT[1]:-0}"
    export ETCD_DIR ETCDCTL_API=3
    unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
    if [ -n "${_ETCD_TLS}" ]; then
        export ETCDCTL_CACERT="${_ETCD_TLS}/ca.pem"
        if [ "${_ETCD_MTLS}" = 1 ]; then
            export ETCDCTL_CERT="${_ETCD_TLS}/client.pem" ETCDCTL_KEY="${_ETCD_TLS}/client-key.pem"
        fi
    fi
}

etcd_curl() {
    # etcd_curl ARGS...: curl with the TLS options of the current cluster
    # (--cacert, and --cert/--key with mutual TLS); plain curl otherwise.
    local tls=()
    if [ -n "${_ETCD_TLS}" ]; then
        tls=(--cacert "${_ETCD_TLS}/ca.pem")
        [ "${_ETCD_MTLS}" = 1 ] &&
            tls+=(--cert "${_ETCD_TLS}/client.pem" --key "${_ETCD_TLS}/client-key.pem")
    fi
    curl "${tls[@]}" "$@"
}

_etcd_wait() {
    # Wait until member $1 reports {"health":"true"}.
    local i=$1 t=$(( ${ETCD_START_TIMEOUT:-30} * 10 )) n=0 out sch=http
    [ -n "${_ETCD_TLS}" ] && sch=https
    while [ "$n" -lt "$t" ]; do
        out=$(etcd_curl -s --max-time 1 "$sch://127.0.0.1:${_ETCD_CPORT[$i]}/health" 2>/dev/null) || out=""
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
    [ "${_ETCD_N}" -gt 0 ] && etcd_stop
    if [ -n "${ETCD_TLS_DIR:-}" ]; then
        local f need="ca.pem server.pem server-key.pem"
        [ "${ETCD_TLS_CLIENT_AUTH:-0}" = 1 ] && need="$need client.pem client-key.pem"
        for f in $need; do
            [ -r "${ETCD_TLS_DIR}/$f" ] || { echo "etcd.sh: ${ETCD_TLS_DIR}/$f missing" >&2; return 2; }
        done
    fi
    mkdir -p "$dir" || return 1
    ETCD_DIR=$(cd "$dir" && pwd)
    rm -rf "${ETCD_DIR}"/m[1-9]
    _ETCD_N=$n; _ETCD_CPORT=(); _ETCD_PPORT=(); _ETCD_PID=(); _ETCD_ICLUSTER=""
    _ETCD_TLS=""; _ETCD_MTLS=0
    if [ -n "${ETCD_TLS_DIR:-}" ]; then
        _ETCD_TLS=$(cd "${ETCD_TLS_DIR}" && pwd)
        [ "${ETCD_TLS_CLIENT_AUTH:-0}" = 1 ] && _ETCD_MTLS=1
    fi
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
    # Stop every member of the current cluster; keeps DIR for inspection.
    local i
    for i in $(seq 1 "${_ETCD_N:-0}"); do etcd_member_stop "$i"; done
    _ETCD_N=0
    unset ETCD_ENDPOINT ETCD_ENDPOINTS ETCD_PIDS ETCD_CLIENT_PORTS
    unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
}

# The state of a cluster, saved by etcd_use under _ETCD_SLOT_<name>.
_ETCD_STATE="_ETCD_N _ETCD_CPORT _ETCD_PPORT _ETCD_PID _ETCD_ICLUSTER _ETCD_TLS _ETCD_MTLS ETCD_DIR"

_etcd_reset() {
    # Empty state: no cluster.
    _ETCD_N=0; _ETCD_CPORT=(); _ETCD_PPORT=(); _ETCD_PID=(); _ETCD_ICLUSTER=""
    _ETCD_TLS=""; _ETCD_MTLS=0; ETCD_DIR=""
}

etcd_use() {
    # etcd_use NAME: makes cluster NAME (letters, digits, _) the current
    # one; the current cluster keeps running, saved under its own name.
    # A new NAME starts with no cluster.  Re-exports ETCD_* for NAME.
    local name=$1 v
    case "$name" in ''|*[!A-Za-z0-9_]*) echo "usage: etcd_use NAME ([A-Za-z0-9_]+)" >&2; return 2 ;; esac
    v=$(declare -p $_ETCD_STATE)
    printf -v "_ETCD_SLOT_${_ETCD_CUR}" '%s' "${v//declare -/declare -g -}"
    case " ${_ETCD_SLOTS} " in *" ${_ETCD_CUR} "*) ;; *) _ETCD_SLOTS="${_ETCD_SLOTS} ${_ETCD_CUR}" ;; esac
    _ETCD_CUR=$name
    v="_ETCD_SLOT_$name"
    if [ -n "${!v:-}" ]; then eval "${!v}"; else _etcd_reset; fi
    if [ "${_ETCD_N}" -gt 0 ]; then
        _etcd_export
    else
        unset ETCD_ENDPOINT ETCD_ENDPOINTS ETCD_PIDS ETCD_CLIENT_PORTS
        unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
    fi
}

etcd_stop_all() {
    # Stop every cluster of this shell (each one named by etcd_use).
    local n
    etcd_stop
    for n in ${_ETCD_SLOTS}; do
        [ "$n" = "${_ETCD_CUR}" ] && continue
        etcd_use "$n" && etcd_stop
    done
}

# Initial state: the cluster named "default", none started (kept when the
# file is sourced again).
if [ -z "${_ETCD_CUR:-}" ]; then
    _ETCD_CUR=default; _ETCD_SLOTS=""
    _etcd_reset
fi
