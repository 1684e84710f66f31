# tests/servers/common.sh — loopback port helpers shared by the server
# helpers (etcd.sh, redis.sh, pebble.sh), tests/integration/lib.sh and
# bench/routers.sh.  Source it (bash); safe under `set -euo pipefail`;
# sourcing it twice is harmless.
#
#   rt_port_used PORT      true when any TCP or UDP socket (IPv4 or IPv6,
#                          listening, connected or in TIME_WAIT) has PORT as
#                          its local port (/proc/net/{tcp,tcp6,udp,udp6})
#   rt_free_port           prints a port that no socket uses, that nothing
#                          answers on 127.0.0.1 (connect probe), below the
#                          kernel's ephemeral range (so no outgoing
#                          connection can take it before it is bound), and
#                          not handed out to anyone during the last
#                          RT_PORT_HOLD seconds
#   rt_pick_port VAR       the same, into variable VAR (no subshell)
#   rt_port_reserve PORT   reserves PORT (e.g. one a caller chose itself) so
#                          that no draw hands it out; false when someone
#                          else holds a live reservation of it
#   rt_wait_port PORT [S]  waits (S seconds, default 10) until something
#                          accepts connections on 127.0.0.1:PORT
#
# Ports handed out are reserved in RT_PORT_DIR (default
# /tmp/relais-ports.UID, one empty directory per port, created atomically
# with mkdir) so that two tests running at the same time (make check -j, or
# two trees on one machine) never get the same port between the draw and
# the bind; a reservation older than RT_PORT_HOLD seconds (default 900) is
# taken over.  The range drawn from is 15000 up to the start of
# /proc/sys/net/ipv4/ip_local_port_range (32768 by default).

[ -n "${_RT_COMMON_SH:-}" ] && return 0
_RT_COMMON_SH=1

RT_PORT_DIR=${RT_PORT_DIR:-/tmp/relais-ports.$(id -u)}
RT_PORT_HOLD=${RT_PORT_HOLD:-900}

rt_port_used() {
    # rt_port_used PORT: true if PORT is the local port of any socket.
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:${hex} " \
        /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null
}

_rt_port_range() {
    # Prints "LOW HIGH": the range to draw from (below the ephemeral one).
    local lo=32768 hi
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 16000 ] 2>/dev/null || lo=32768   # odd setting: keep the default
    echo "15000 $((lo - 1))"
}

rt_port_reserve() {
    # rt_port_reserve PORT: true when PORT is now reserved for us (new
    # reservation, or a stale one taken over; also when RT_PORT_DIR cannot
    # be made: then nothing is reserved anywhere).
    local d="$RT_PORT_DIR/$1" now t
    mkdir -p "$RT_PORT_DIR" 2>/dev/null || return 0   # no reservations: still usable
    mkdir "$d" 2>/dev/null && return 0
    now=$(date +%s)
    t=$(stat -c %Y "$d" 2>/dev/null) || return 1
    if [ $((now - t)) -gt "$RT_PORT_HOLD" ]; then
        touch "$d" 2>/dev/null && return 0
    fi
    return 1
}

rt_pick_port() {
    # rt_pick_port VAR: sets VAR to a free port (see rt_free_port); returns 1
    # (VAR untouched) after 500 draws without one.  Locals are _rt_-named
    # so that VAR may be any caller's variable.
    local _rt_lo _rt_hi _rt_p _rt_i
    read -r _rt_lo _rt_hi <<<"$(_rt_port_range)"
    for ((_rt_i = 0; _rt_i < 500; _rt_i++)); do
        _rt_p=$((_rt_lo + (RANDOM * 32768 + RANDOM) % (_rt_hi - _rt_lo + 1)))
        rt_port_used "$_rt_p" && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$_rt_p") 2>/dev/null && continue
        rt_port_reserve "$_rt_p" || continue
        printf -v "$1" '%s' "$_rt_p"
        return 0
    done
    echo "common.sh: no free port found in $_rt_lo-$_rt_hi" >&2
    return 1
}

rt_free_port() {
    # rt_free_port: prints a free port (see the header).
    local port
    rt_pick_port port || return 1
    echo "$port"
}

rt_wait_port() {
    # rt_wait_port PORT [SECONDS]: 0 once 127.0.0.1:PORT accepts a
    # connection, 1 (with a note on stderr) after SECONDS (default 10).
    local i n=$(( ${2:-10} * 20 ))
    for ((i = 0; i < n; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "# nothing listens on 127.0.0.1:$1" >&2
    return 1
}
