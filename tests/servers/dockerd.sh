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

docker_cli() {
    # docker_cli ARGS...: the docker client, pinned to our engine and to the
    # API version it speaks (the /usr/local/bin client may be newer).
    DOCKER_HOST="unix://${DOCKER_SOCK}" DOCKER_API_VERSION=1.41 docker "$@"
}

dockerd_start() {
    local dir=$1 n=0 t drv
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
    export DOCKER_SOCK="$DOCKERD_DIR/docker.sock"
    rm -f "${DOCKER_SOCK:-}"
    dockerd --data-root "$DOCKERD_DIR/data" --exec-root "$DOCKERD_DIR/exec" \
        --pidfile "$DOCKERD_DIR/dockerd.pid" -H "unix://$DOCKER_SOCK" \
        --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
        --ip-forward=false --userland-proxy=false \
        --storage-driver "$drv" --exec-opt native.cgroupdriver=cgroupfs \
        --containerd-namespace relais-test --containerd-plugins-namespace relais-test-plugins \
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

dockerd_stop() {
    local n=0 ids p m
    [ -n "${DOCKERD_DIR:-}" ] || return 0
    if [ -n "${DOCKERD_PID:-}" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$(docker_cli ps -aq 2>/dev/null) || ids=""
        [ -n "$ids" ] && docker_cli rm -f -v $ids >/dev/null 2>&1
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        while kill -0 "$DOCKERD_PID" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    for p in $(_dockerd_leftovers); do kill -KILL "$p" 2>/dev/null || true; done
    # unmount whatever the engine left mounted under DIR (deepest first)
    for m in $(awk -v d="$DOCKERD_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "${DOCKER_SOCK:-}"
    unset DOCKERD_PID DOCKER_HOST DOCKER_SOCK DOCKER_API_VERSION
}
