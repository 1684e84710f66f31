#!/usr/bin/env bash
# UDP routers and services (Traefik v3's udp section): datagrams relayed
# both ways, one session per client address sticking to its server,
# weights across sessions, sessions expiring after entryPoints.X.udp.timeout
# (the next datagram opens a new session), config errors with key paths.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }
H="python3 $RELAIS_SRCDIR/tests/integration/tcp_helpers.py"

U1=$(free_port); U2=$(free_port); UEP=$(free_port); WEB=$(free_port)
$H udpecho $U1 u1 >"$T/u1.out" 2>&1 & PIDS+=($!)
$H udpecho $U2 u2 >"$T/u2.out" 2>&1 & PIDS+=($!)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
udp:
  routers:
    dns:
      entryPoints: [dns]
      service: pair
    second:
      entryPoints: [dns]
      service: pair
    ontcp:
      entryPoints: [web]
      service: pair
    nosvc:
      entryPoints: [dns]
      service: nosuch
  services:
    pair:
      loadBalancer:
        servers:
          - {address: "127.0.0.1:$U1"}
          - {address: "127.0.0.1:$U2"}
    badaddr:
      loadBalancer:
        servers: [{address: "nowhere"}]
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$WEB"}
  dns:
    address: "127.0.0.1:$UEP/udp"
    udp: {timeout: 600ms}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$DYN"}
log: {level: DEBUG}
workers: 2
EOF
start_relais "$T/relais.yaml" $WEB
wait_log 'UDP router' 2
sleep 0.3

is "datagrams relayed both ways, one client sticks to its server" "u1:hello|u1:hello|u1:hello" \
  "$($H udp $UEP hello 3 | tr '\n' '|' | sed 's/|$//')"
is "a second client gets the other server (weights 1:1)" "u2:b" "$($H udp $UEP b)"
is "a third the first again" "u1:c" "$($H udp $UEP c)"
# expiry: one socket, a pause longer than the timeout, a new session
R=$(python3 - "$UEP" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
out = []
for pause in (0, 0.2, 1.5):
    time.sleep(pause)
    s.sendto(b"e", ("127.0.0.1", int(sys.argv[1])))
    out.append(s.recvfrom(100)[0].decode())
print(" ".join(out))
PY
)
like "same session within the timeout, a new one (next server) after it" \
  "^(u1:e u1:e u2:e|u2:e u2:e u1:e)$" "$R"
ok "expiry logged" wait_log 'session expired' 2
big=$(head -c 60000 /dev/zero | tr '\0' 'x')
is "a 60000-byte datagram relayed whole" "60003" "$($H udp $UEP "$big" | tr -d '\n' | wc -c)"
# configuration errors
like "second router on the entry point reported" \
  'udp\.routers\.second@file\.entryPoints: entry point "dns" already has the UDP router dns@file' \
  "$(cat "$T/relais.log")"
like "router on a TCP entry point reported" \
  'udp\.routers\.ontcp@file\.entryPoints\[0\]: entry point "web" is not a UDP entry point' \
  "$(cat "$T/relais.log")"
like "missing service reported" 'udp\.routers\.nosvc@file\.service: UDP service "nosuch@file" does not exist' \
  "$(cat "$T/relais.log")"
like "bad address reported" 'udp\.services\.badaddr@file\.loadBalancer\.servers\[0\]\.address' \
  "$(cat "$T/relais.log")"
t_done
