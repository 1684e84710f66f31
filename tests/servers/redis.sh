# tests/servers/redis.sh — start/stop a real redis-server (Debian
# redis-server) on loopback for relais tests.  Source it (bash), from any
# directory:
#
#   . tests/servers/redis.sh
#   redis_start DIR [EVENTS]   # EVENTS = notify-keyspace-events value;
#                              #   default "KA" (keyspace notifications on),
#                              #   "" = off (redis' own default)
#   redis_notify EVENTS        # change it on the running server (CONFIG SET)
#   redis_cli ARGS...          # redis-cli against the running server
#   redis_kill                 # SIGKILL (crash) the server
#   redis_restart              # start again on the same port, DIR and EVENTS
#   redis_stop                 # SIGTERM, wait; SIGKILL after 10 s
#
# Optional before redis_start: REDIS_REQUIREPASS=secret (sets requirepass;
# exported REDIS_PASSWORD then holds it; redis_cli uses it).
# Exports after a start:
#   REDIS_HOST=127.0.0.1  REDIS_PORT  REDIS_ADDR=127.0.0.1:PORT
#   REDIS_URL=redis://127.0.0.1:PORT  REDIS_PID  REDIS_DIR
# Config: DIR/redis.conf (no persistence); log: DIR/redis.log.  The port:
# rt_pick_port (tests/servers/common.sh).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # rt_pick_port

_redis_launch() {
    # Write DIR/redis.conf from the recorded settings and start the server.
    {
        echo "bind 127.0.0.1"
        echo "port ${REDIS_PORT}"
        echo "protected-mode yes"
        echo "daemonize no"
        echo "dir ${REDIS_DIR}"
        echo "logfile ${REDIS_DIR}/redis.log"
        echo "pidfile ${REDIS_DIR}/redis.pid"
        echo "save \"\""
        echo "appendonly no"
        echo "notify-keyspace-events \"${_REDIS_EVENTS}\""
        if [ -n "${REDIS_PASSWORD:-}" ]; then echo "requirepass ${REDIS_PASSWORD}"; fi
    } >"${REDIS_DIR}/redis.conf"
    redis-server "${REDIS_DIR}/redis.conf" </dev/null >>"${REDIS_DIR}/redis.log" 2>&1 &
    export REDIS_PID=$!
}

_redis_wait() {
    local n=0 t=$(( ${REDIS_START_TIMEOUT:-15} * 20 ))
    while [ $n -lt $t ]; do
        if [ "$(redis_cli PING 2>/dev/null)" = "PONG" ]; then return 0; fi
        if ! kill -0 "$REDIS_PID" 2>/dev/null; then break; fi
        sleep 0.05; n=$((n + 1))
    done
    echo "redis.sh: redis-server did not answer:" >&2
    tail -20 "${REDIS_DIR}/redis.log" >&2
    return 1
}

redis_cli() {
    # redis_cli ARGS...: redis-cli against the server started here.
    if [ -n "${REDIS_PASSWORD:-}" ]; then
        REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    fi
}

redis_start() {
    # redis_start DIR [EVENTS]: a fresh server with its files in DIR.
    local dir=$1
    [ -n "$dir" ] || { echo "usage: redis_start DIR [EVENTS]" >&2; return 2; }
    command -v redis-server >/dev/null || { echo "redis.sh: apt-get install redis-server redis-tools" >&2; return 1; }
    [ -n "${REDIS_PID:-}" ] && redis_stop
    if [ $# -ge 2 ]; then _REDIS_EVENTS=$2; else _REDIS_EVENTS=KA; fi
    mkdir -p "$dir" || return 1
    REDIS_DIR=$(cd "$dir" && pwd)
    rm -f "$REDIS_DIR/redis.log" "$REDIS_DIR/dump.rdb"
    rt_pick_port REDIS_PORT || return 1
    if [ -n "${REDIS_REQUIREPASS:-}" ]; then REDIS_PASSWORD=$REDIS_REQUIREPASS; else unset REDIS_PASSWORD; fi
    export REDIS_DIR REDIS_PORT REDIS_HOST=127.0.0.1 REDIS_ADDR="127.0.0.1:${REDIS_PORT}"
    export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
    [ -n "${REDIS_PASSWORD:-}" ] && export REDIS_PASSWORD
    _redis_launch
    _redis_wait || { redis_stop; return 1; }
}

redis_notify() {
    # redis_notify EVENTS: CONFIG SET notify-keyspace-events EVENTS.
    _REDIS_EVENTS=$1
    [ "$(redis_cli CONFIG SET notify-keyspace-events "$1")" = "OK" ]
}

redis_kill() {
    [ -n "${REDIS_PID:-}" ] || return 0
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    unset REDIS_PID
}

redis_restart() {
    # Same port, DIR and notification setting; the data set starts empty.
    [ -n "${REDIS_DIR:-}" ] || { echo "redis.sh: never started" >&2; return 2; }
    local p=$REDIS_PORT
    redis_stop_keepenv
    REDIS_PORT=$p
    _redis_launch
    _redis_wait
}

redis_stop_keepenv() {
    # Stop the server but keep REDIS_* (used by redis_restart).
    local n=0
    [ -n "${REDIS_PID:-}" ] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    while kill -0 "$REDIS_PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    unset REDIS_PID
}

redis_stop() {
    redis_stop_keepenv
    unset REDIS_PORT REDIS_ADDR REDIS_URL REDIS_HOST
}
