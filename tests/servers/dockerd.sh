# tests/servers/dockerd.sh — start/stop a private Docker engine (Debian
# docker.io: dockerd + containerd + runc) for relais tests.  Source it (bash),
# from any directory:
#
#   . tests/servers/dockerd.sh
#   dockerd_start DIR     # data-root DIR/data, exec-root DIR/exec,
#                         # socket DIR/docker.sock; no iptables, no bridge
#   docker_cli ARGS...    # the docker client against that engine
#   dockerd_stop          # remove its containers, stop the engine and
#                         # everything it spawned (containerd, shims)
#
# Exports after a start:
#   DOCKER_HOST=unix://DIR/docker.sock   DOCKER_SOCK=DIR/docker.sock
#   DOCKERD_PID   DOCKERD_DIR   DOCKER_API_VERSION=1.41 (engine 20.10)
# The engine never touches /var/run/docker.sock, /var/lib/docker or iptables:
# containers must use --network host (or none).  The storage driver is
# overlay2 when the kernel has overlayfs, vfs otherwise (DOCKERD_STORAGE
# overrides).  If /sys/fs/cgroup has no controllers mounted, a cgroup2
# hierarchy is mounted there (needs root).  Log: DIR/dockerd.log.
# DOCKERD_START_TIMEOUT (seconds, default 60).
#
# Several engines at once: name them (NAME: letters, digits, _).  Each has
# its own data-root, exec-root, pidfile, socket, containerd (started by
# that dockerd, its socket in DIR/exec), containerd namespace and cgroup
# parent (both derived from DIR), so engines of different tests or of one
# test never see each other's containers:
#   dockerd_start_named NAME DIR   # as dockerd_start; leaves the unnamed
#                                  # engine's variables above untouched
#   docker_on NAME ARGS...         # the docker client against engine NAME
#   dockerd_sock NAME              # prints its socket path (after a start)
#   dockerd_pid NAME               # prints its dockerd PID ("" when stopped)
#   dockerd_stop_named NAME        # as dockerd_stop (DIR kept for the logs)
#   dockerd_restart_named NAME     # stop, wait for its containerd/shims to
#                                  # go, start again on the same DIR
#   dockerd_stop_all               # every engine started here, named or not
# State: DOCKERD_<NAME>_PID, DOCKERD_<NAME>_DIR, DOCKERD_<NAME>_SOCK.
# When an engine died (kill -9), its stop also kills what is left in its
# cgroup parent (the containers' processes).

_dockerd_cgroups() {
    # Make sure some cgroup hierarchy is mounted (runc needs one).
    if [ -e /sys/fs/cgroup/cgroup.controllers ] || [ -d /sys/fs/cgroup/memory ] \
        || [ -d /sys/fs/cgroup/cpu ]; then
        return 0
    fi
    echo "dockerd.sh: no cgroup hierarchy; mounting cgroup2 on /sys/fs/cgroup" >&2
    mount -t cgroup2 none /sys/fs/cgroup
}

_dockerd_storage() {
    if [ -n "${DOCKERD_STORAGE:-}" ]; then echo "$DOCKERD_STORAGE"; return; fi
    if grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null; then
        echo overlay2
    else
        echo vfs
    fi
}

# _dockerd_tag: a short tag derived from DOCKERD_DIR, naming the containerd
# namespace and the cgroup parent of that engine (same DIR, same tag: a
# restart finds its containers again).
_dockerd_tag() {
    printf '%s' "$DOCKERD_DIR" | cksum | cut -d' ' -f1
}

docker_cli() {
    # docker_cli ARGS...: the docker client, pinned to our engine and to the
    # API version it speaks (the /usr/local/bin client may be newer).
    DOCKER_HOST="unix://${DOCKER_SOCK}" DOCKER_API_VERSION=1.41 docker "$@"
}

dockerd_start() {
    local dir=${1:-} n=0 t drv tag
    [ -n "$dir" ] || { echo "usage: dockerd_start DIR" >&2; return 2; }
    command -v dockerd >/dev/null || { echo "dockerd.sh: apt-get install docker.io" >&2; return 1; }
    [ -n "${DOCKERD_PID:-}" ] && dockerd_stop
    mkdir -p "$dir" || return 1
    DOCKERD_DIR=$(cd "$dir" && pwd)
    # unix socket paths are limited to 107 bytes
    if [ ${#DOCKERD_DIR} -gt 80 ]; then
        echo "dockerd.sh: DIR path too long for a unix socket: $DOCKERD_DIR" >&2; return 1
    fi
    mkdir -p "$DOCKERD_DIR/data" "$DOCKERD_DIR/exec" || return 1
    _dockerd_cgroups || return 1
    drv=$(_dockerd_storage)
    tag=$(_dockerd_tag)
    export DOCKER_SOCK="$DOCKERD_DIR/docker.sock"
    rm -f "${DOCKER_SOCK:-}"
    dockerd --data-root "$DOCKERD_DIR/data" --exec-root "$DOCKERD_DIR/exec" \
        --pidfile "$DOCKERD_DIR/dockerd.pid" -H "unix://$DOCKER_SOCK" \
        --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
        --ip-forward=false --userland-proxy=false \
        --storage-driver "$drv" --exec-opt native.cgroupdriver=cgroupfs \
        --containerd-namespace "relais-test-$tag" \
        --containerd-plugins-namespace "relais-test-$tag-plugins" \
        --cgroup-parent "/relais-test-$tag" \
        --log-level warn \
        </dev/null >>"$DOCKERD_DIR/dockerd.log" 2>&1 &
    export DOCKERD_PID=$! DOCKERD_DIR DOCKER_HOST="unix://$DOCKER_SOCK" DOCKER_API_VERSION=1.41
    t=$(( ${DOCKERD_START_TIMEOUT:-60} * 10 ))
    while [ $n -lt $t ]; do
        if [ "$(curl -s --max-time 1 --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null)" = OK ]; then
            return 0
        fi
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1; n=$((n + 1))
    done
    echo "dockerd.sh: dockerd did not answer on $DOCKER_SOCK:" >&2
    tail -30 "$DOCKERD_DIR/dockerd.log" >&2
    dockerd_stop
    return 1
}

_dockerd_leftovers() {
    # PIDs whose command line names our exec-root or data-root (containerd
    # and its shims, which re-parent themselves away from dockerd).
    local p c
    for p in /proc/[0-9]*; do
        c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null ) || continue
        case "$c" in
            *"$DOCKERD_DIR/exec"*|*"$DOCKERD_DIR/data"*) echo "${p#/proc/}" ;;
        esac
    done
}

# _dockerd_cgroup_pids: PIDs left in the engine's cgroup parent (its
# containers' processes, when the engine and its shims died first).
_dockerd_cgroup_pids() {
    local f
    for f in /sys/fs/cgroup/pids/relais-test-"$(_dockerd_tag)"/*/cgroup.procs \
        /sys/fs/cgroup/unified/relais-test-"$(_dockerd_tag)"/*/cgroup.procs \
        /sys/fs/cgroup/relais-test-"$(_dockerd_tag)"/*/cgroup.procs; do
        [ -r "$f" ] && cat "$f" 2>/dev/null
    done
    return 0
}

dockerd_stop() {
    local n=0 ids p m
    [ -n "${DOCKERD_DIR:-}" ] || return 0
    DOCKER_SOCK=${DOCKER_SOCK:-$DOCKERD_DIR/docker.sock}
    if [ -n "${DOCKERD_PID:-}" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$(docker_cli ps -aq 2>/dev/null) || ids=""
        [ -n "$ids" ] && docker_cli rm -f -v $ids >/dev/null 2>&1
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        while kill -0 "$DOCKERD_PID" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    ids=$(_dockerd_leftovers)
    for p in $ids; do kill -KILL "$p" 2>/dev/null || true; done
    for p in $(_dockerd_cgroup_pids); do kill -KILL "$p" 2>/dev/null || true; done
    # until they are reaped (at most 3 s): a killed containerd whose dockerd
    # died first is re-parented, and stays a zombie until reaped
    n=0
    for p in $ids; do
        while kill -0 "$p" 2>/dev/null && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
    done
    # the pid files: a new dockerd on DIR takes a containerd.pid naming a
    # live (or zombie, or reused) PID for its running containerd and waits
    # for it to answer (timeout); the same for its own pidfile
    rm -f "$DOCKERD_DIR/exec/containerd/containerd.pid" "$DOCKERD_DIR/dockerd.pid"
    # its (now empty) cgroups: the killed processes take a moment to go
    n=0
    while [ -n "$(_dockerd_cgroup_pids)" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    for m in /sys/fs/cgroup/*/relais-test-"$(_dockerd_tag)" /sys/fs/cgroup/relais-test-"$(_dockerd_tag)"; do
        [ -d "$m" ] || continue
        rmdir "$m"/*/ "$m" 2>/dev/null || true
    done
    # unmount whatever the engine left mounted under DIR (deepest first)
    for m in $(awk -v d="$DOCKERD_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "${DOCKER_SOCK:-}"
    unset DOCKERD_PID DOCKER_HOST DOCKER_SOCK DOCKER_API_VERSION
}

# ---- several engines at once ------------------------------------------

# _dockerd_name_ok NAME: 0 when NAME can be part of a variable name.
_dockerd_name_ok() {
    case "${1:-}" in
        ""|*[!A-Za-z0-9_]*) echo "dockerd.sh: engine name \"${1:-}\": letters, digits, _" >&2
                            return 2 ;;
    esac
}

# _dockerd_get NAME FIELD: prints DOCKERD_<NAME>_<FIELD> ("" when unset).
_dockerd_get() {
    local v="DOCKERD_${1}_${2}"
    printf '%s' "${!v:-}"
}

dockerd_sock() { _dockerd_name_ok "${1:-}" && _dockerd_get "$1" SOCK; }
dockerd_pid() { _dockerd_name_ok "${1:-}" && _dockerd_get "$1" PID; }

# Names started by dockerd_start_named (space-separated), for dockerd_stop_all.
DOCKERD_NAMES=${DOCKERD_NAMES:-}

dockerd_start_named() {
    # dockerd_start_named NAME DIR: dockerd_start on DIR with the unnamed
    # engine's variables shadowed (function-local), the outcome recorded in
    # DOCKERD_<NAME>_{PID,DIR,SOCK}.  A running engine of that name is
    # stopped first.  0, or 1 (log tail on stderr, nothing left running).
    local name=${1:-} dir=${2:-} rc
    _dockerd_name_ok "$name" || return 2
    [ -n "$dir" ] || { echo "usage: dockerd_start_named NAME DIR" >&2; return 2; }
    [ -n "$(_dockerd_get "$name" PID)" ] && dockerd_stop_named "$name"
    local DOCKERD_PID="" DOCKERD_DIR="" DOCKER_SOCK="" DOCKER_HOST="" DOCKER_API_VERSION=""
    dockerd_start "$dir"
    rc=$?
    case " $DOCKERD_NAMES " in *" $name "*) ;; *) DOCKERD_NAMES="$DOCKERD_NAMES $name" ;; esac
    # (a failed start ran dockerd_stop, which unset the locals: the PID
    # recorded is then "")
    if [ $rc -eq 0 ]; then
        declare -g "DOCKERD_${name}_PID=$DOCKERD_PID" "DOCKERD_${name}_DIR=$DOCKERD_DIR" \
            "DOCKERD_${name}_SOCK=$DOCKERD_DIR/docker.sock"
    else
        declare -g "DOCKERD_${name}_PID=" "DOCKERD_${name}_DIR=$(cd "$dir" 2>/dev/null && pwd)" \
            "DOCKERD_${name}_SOCK="
    fi
    return $rc
}

docker_on() {
    # docker_on NAME ARGS...: the docker client against engine NAME.
    local name=${1:-} sock
    _dockerd_name_ok "$name" || return 2
    shift
    sock=$(_dockerd_get "$name" SOCK)
    [ -n "$sock" ] || { echo "dockerd.sh: engine $name is not started" >&2; return 1; }
    DOCKER_HOST="unix://$sock" DOCKER_API_VERSION=1.41 docker "$@"
}

dockerd_stop_named() {
    # dockerd_stop_named NAME: dockerd_stop for engine NAME (also when its
    # dockerd was killed: containerd, shims and container processes go);
    # DOCKERD_<NAME>_DIR is kept (logs, restart).
    local name=${1:-}
    _dockerd_name_ok "$name" || return 2
    local DOCKERD_DIR DOCKERD_PID DOCKER_SOCK DOCKER_HOST="" DOCKER_API_VERSION=""
    DOCKERD_DIR=$(_dockerd_get "$name" DIR)
    [ -n "$DOCKERD_DIR" ] || return 0
    DOCKERD_PID=$(_dockerd_get "$name" PID)
    DOCKER_SOCK="$DOCKERD_DIR/docker.sock"
    dockerd_stop
    declare -g "DOCKERD_${name}_PID=" "DOCKERD_${name}_SOCK="
}

dockerd_restart_named() {
    # dockerd_restart_named NAME: stops engine NAME, waits (at most 5 s)
    # until its containerd and shims are gone (a dying containerd can make
    # the new one time out), starts it again on the same DIR.  0 or 1.
    local name=${1:-} dir i
    _dockerd_name_ok "$name" || return 2
    dir=$(_dockerd_get "$name" DIR)
    [ -n "$dir" ] || { echo "dockerd.sh: engine $name was never started" >&2; return 1; }
    dockerd_stop_named "$name"
    for i in $(seq 1 100); do
        [ -z "$(DOCKERD_DIR=$dir _dockerd_leftovers)" ] && break
        sleep 0.05
    done
    dockerd_start_named "$name" "$dir"
}

dockerd_stop_all() {
    # dockerd_stop_all: every named engine, then the unnamed one.
    local name
    for name in $DOCKERD_NAMES; do dockerd_stop_named "$name"; done
    dockerd_stop
}
