# tests/servers/pebble.sh — start/stop a real Pebble ACME test server and its
# pebble-challtestsrv (Debian package pebble) on loopback for relais tests.
# Source it (bash), from any directory:
#
#   . tests/servers/pebble.sh
#   pebble_start DIR      # writes DIR/pebble-config.json and a TLS CA +
#                         # server certificate for Pebble's own listeners,
#                         # starts pebble-challtestsrv (DNS) then pebble
#   pebble_stop           # stops both
#
# Optional before pebble_start (else free ports are picked):
#   PEBBLE_HTTP01_PORT    port on 127.0.0.1 where Pebble's VA connects for
#                         http-01 (the relais entry point under test)
#   PEBBLE_TLSALPN01_PORT port on 127.0.0.1 for tls-alpn-01
#   PEBBLE_VA_NOSLEEP     default 1 here (no random sleeps in validation)
#   PEBBLE_VA_ALWAYS_VALID, PEBBLE_WFE_NONCEREJECT, PEBBLE_AUTHZREUSE, ...
#                         passed through as set (nonce rejection is left at
#                         Pebble's default: 5 % of good nonces get badNonce)
# Exports after a start:
#   PEBBLE_DIRECTORY_URL  https://127.0.0.1:PORT/dir   (ACME directory)
#   PEBBLE_CA_CERT        DIR/tls-ca.pem: CA that signed Pebble's HTTPS
#                         listener certificate (use it to trust the ACME
#                         server; NOT the issuing root of ACME certificates)
#   PEBBLE_MGMT_URL       https://127.0.0.1:PORT (same CA): GET /roots/0 and
#                         /intermediates/0 give the issuing chain (new every
#                         start), /cert-status-by-serial/SERIAL
#   PEBBLE_HTTP01_PORT PEBBLE_TLSALPN01_PORT
#   PEBBLE_DNS_ADDR       127.0.0.1:PORT, challtestsrv's DNS (UDP+TCP); it
#                         answers A=127.0.0.1 for every name, no AAAA
#   CHALLTESTSRV_URL      http://127.0.0.1:PORT (POST /set-txt, /add-a, ...)
#   PEBBLE_PID CHALLTESTSRV_PID PEBBLE_DIR
# Logs: DIR/pebble.log, DIR/challtestsrv.log.  Needs openssl.

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # rt_pick_port, rt_port_reserve

_pebble_port() {
    # _pebble_port VAR: set VAR to a fresh free port unless already set (a
    # caller's port is reserved so that no later draw hands it out).
    local v
    eval "v=\${$1:-}"
    if [ -z "$v" ]; then
        rt_pick_port v || return 1
        _PEBBLE_PICKED="${_PEBBLE_PICKED:-} $1"
    else
        rt_port_reserve "$v" || true
    fi
    eval "$1=\$v"
    export "$1"
}

_pebble_certs() {
    # A throw-away CA and a certificate for localhost/127.0.0.1 (the Debian
    # package ships no test/certs).
    local d=$1
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=relais-test pebble TLS CA" \
        -keyout "$d/tls-ca.key" -out "$d/tls-ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >/dev/null 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$d/key.pem" -out "$d/cert.csr" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=DNS:localhost,DNS:pebble,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$d/cert.ext"
    openssl x509 -req -in "$d/cert.csr" -CA "$d/tls-ca.pem" -CAkey "$d/tls-ca.key" \
        -CAcreateserial -days 30 -extfile "$d/cert.ext" -out "$d/cert.pem" >/dev/null 2>&1
}

_pebble_wait_url() {
    # _pebble_wait_url URL PID NAME LOG [curl args]
    local url=$1 pid=$2 name=$3 log=$4 n=0 t=$(( ${PEBBLE_START_TIMEOUT:-30} * 10 ))
    shift 4
    while [ $n -lt $t ]; do
        curl -s -f --max-time 1 -o /dev/null "$@" "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1; n=$((n + 1))
    done
    echo "pebble.sh: $name did not answer on $url:" >&2
    tail -20 "$log" >&2
    return 1
}

pebble_start() {
    local dir=$1 p_acme p_mgmt p_dns p_cts
    [ -n "$dir" ] || { echo "usage: pebble_start DIR" >&2; return 2; }
    command -v pebble >/dev/null || { echo "pebble.sh: apt-get install pebble" >&2; return 1; }
    command -v openssl >/dev/null || { echo "pebble.sh: apt-get install openssl" >&2; return 1; }
    [ -n "${PEBBLE_PID:-}${CHALLTESTSRV_PID:-}" ] && pebble_stop
    mkdir -p "$dir" || return 1
    PEBBLE_DIR=$(cd "$dir" && pwd); export PEBBLE_DIR
    rm -f "$PEBBLE_DIR/pebble.log" "$PEBBLE_DIR/challtestsrv.log"
    _PEBBLE_PICKED=""
    _pebble_port PEBBLE_HTTP01_PORT || return 1
    _pebble_port PEBBLE_TLSALPN01_PORT || return 1
    rt_pick_port p_acme && rt_pick_port p_mgmt && rt_pick_port p_dns && rt_pick_port p_cts \
        || return 1
    _pebble_certs "$PEBBLE_DIR" || { echo "pebble.sh: openssl failed" >&2; return 1; }
    cat >"$PEBBLE_DIR/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:${p_acme}",
    "managementListenAddress": "127.0.0.1:${p_mgmt}",
    "certificate": "${PEBBLE_DIR}/cert.pem",
    "privateKey": "${PEBBLE_DIR}/key.pem",
    "httpPort": ${PEBBLE_HTTP01_PORT},
    "tlsPort": ${PEBBLE_TLSALPN01_PORT},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
    # challtestsrv: only its DNS server and management API; the challenge
    # responders are relais' job.
    pebble-challtestsrv -management "127.0.0.1:${p_cts}" -dns01 "127.0.0.1:${p_dns}" \
        -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
        </dev/null >>"$PEBBLE_DIR/challtestsrv.log" 2>&1 &
    export CHALLTESTSRV_PID=$! CHALLTESTSRV_URL="http://127.0.0.1:${p_cts}"
    export PEBBLE_DNS_ADDR="127.0.0.1:${p_dns}"
    # ready once its management API answers (re-setting the default A
    # answer to 127.0.0.1 is harmless)
    _pebble_wait_url "$CHALLTESTSRV_URL/set-default-ipv4" "$CHALLTESTSRV_PID" \
        challtestsrv "$PEBBLE_DIR/challtestsrv.log" -X POST -d '{"ip":"127.0.0.1"}' \
        || { pebble_stop; return 1; }
    (
        cd "$PEBBLE_DIR" || exit 1
        PEBBLE_VA_NOSLEEP=${PEBBLE_VA_NOSLEEP:-1} exec pebble \
            -config "$PEBBLE_DIR/pebble-config.json" -dnsserver "$PEBBLE_DNS_ADDR" \
            </dev/null >>"$PEBBLE_DIR/pebble.log" 2>&1
    ) &
    export PEBBLE_PID=$!
    export PEBBLE_DIRECTORY_URL="https://127.0.0.1:${p_acme}/dir"
    export PEBBLE_MGMT_URL="https://127.0.0.1:${p_mgmt}"
    export PEBBLE_CA_CERT="$PEBBLE_DIR/tls-ca.pem"
    _pebble_wait_url "$PEBBLE_DIRECTORY_URL" "$PEBBLE_PID" pebble "$PEBBLE_DIR/pebble.log" \
        --cacert "$PEBBLE_CA_CERT" || { pebble_stop; return 1; }
    _pebble_wait_url "$PEBBLE_MGMT_URL/roots/0" "$PEBBLE_PID" pebble "$PEBBLE_DIR/pebble.log" \
        --cacert "$PEBBLE_CA_CERT" || { pebble_stop; return 1; }
}

_pebble_kill() {
    local pid=$1 n=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

pebble_stop() {
    _pebble_kill "${PEBBLE_PID:-}"
    _pebble_kill "${CHALLTESTSRV_PID:-}"
    unset PEBBLE_PID CHALLTESTSRV_PID PEBBLE_DIRECTORY_URL PEBBLE_MGMT_URL CHALLTESTSRV_URL
    unset PEBBLE_DNS_ADDR
    # ports this helper picked (not the caller's) are forgotten
    [ -n "${_PEBBLE_PICKED:-}" ] && unset ${_PEBBLE_PICKED}
    _PEBBLE_PICKED=""
}
