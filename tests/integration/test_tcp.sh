#!/usr/bin/env bash
# TCP routers and services (Traefik v3's tcp section) and the PROXY
# protocol: TLS passthrough (the server's own certificate reaches the
# client), HostSNI routing of two names to two servers with TLS
# termination, ALPN and ClientIP matchers, HostSNI(`*`) taking every
# non-TLS connection of an entry point that also has HTTP routers while
# an HTTPS router keeps its SNI, a server-first protocol, 4 MB both ways
# through the relay, weights 3:1, ipAllowList, inFlightConn, PROXY v1/v2
# sent to servers, PROXY headers accepted from a trusted peer (the HTTP
# backend sees the address as X-Forwarded-For / X-Real-Ip, a ClientIP
# router matches it) and refused from others, config errors with their
# key paths.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }
H="python3 $RELAIS_SRCDIR/tests/integration/tcp_helpers.py"

K=$T/pki
mkdir -p "$K"
# leaf CN [SAN-NAME]: a certificate signed by the test CA
leaf() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$K/$1.key" -out "$K/$1.csr" &&
  printf 'subjectAltName=DNS:%s\n' "${2:-$1}" >"$K/$1.ext" &&
  openssl x509 -req -in "$K/$1.csr" -CA "$K/ca.pem" -CAkey "$K/ca.key" -CAcreateserial \
    -days 2 -extfile "$K/$1.ext" -out "$K/$1.pem"
}
(
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=relais tcp ca" -keyout "$K/ca.key" -out "$K/ca.pem"
  for n in pass.test a.test b.test h.test; do leaf $n; done
  leaf alpn1.test alpn.test
  leaf alpn2.test alpn.test
) >"$T/pki.log" 2>&1 || { echo "Bail out! openssl could not make the test PKI"; exit 1; }

# bg NAME CMD...: a helper server in the background
bg() { local n=$1; shift; "$@" >"$T/$n.out" 2>&1 & PIDS+=($!); }
for v in PA PB LA LB EC BN W1 W2 PP1 PP2 TP TA1 TA2 IP WEB TCPO PPEP PPU PPV1 PPV2 ALLOW INFL; do
  eval "$v=$(free_port)"
done
bg pass $H tls $PA pass "$K/pass.test.pem" "$K/pass.test.key"
bg alpn1 $H tls $TA1 alpn1 "$K/alpn1.test.pem" "$K/alpn1.test.key" x-special,http/1.1
bg alpn2 $H tls $TA2 alpn2 "$K/alpn2.test.pem" "$K/alpn2.test.key"
bg la $H line $LA backendA
bg lb $H line $LB backendB
bg ip $H line $IP backendIP
bg echo $H echo $EC
bg banner $H banner $BN bnr
bg w1 $H line $W1 w1
bg w2 $H line $W2 w2
bg pp1 $H pp $PP1
bg pp2 $H pp $PP2
for p in $PA $TA1 $TA2 $LA $LB $IP $EC $BN $W1 $W2 $PP1 $PP2; do wait_port $p; done
start_whoami who; WH=$WHOAMI_PORT

DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    plain:
      rule: PathPrefix(\`/\`)
      service: who
      entryPoints: [web, pp, ppu]
    secure:
      rule: Host(\`h.test\`)
      service: who
      entryPoints: [web]
      tls: {}
  services:
    who:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$WH"}]
tcp:
  routers:
    catchall:
      rule: HostSNI(\`*\`)
      service: echo
      entryPoints: [web]
    fromtwo:
      rule: HostSNI(\`*\`) && ClientIP(\`127.0.0.2\`)
      service: ip
      entryPoints: [web]
    pass:
      rule: HostSNI(\`pass.test\`)
      service: pass
      entryPoints: [web]
      tls: {passthrough: true}
    a:
      rule: HostSNI(\`a.test\`)
      service: a
      entryPoints: [web]
      tls: {}
    b:
      rule: HostSNI(\`b.test\`)
      service: b
      entryPoints: [web]
      tls: {options: tls13}
    alpnspecial:
      rule: HostSNI(\`alpn.test\`) && ALPN(\`x-special\`)
      service: alpn1
      entryPoints: [web]
      tls: {passthrough: true}
    alpnother:
      rule: HostSNI(\`alpn.test\`)
      service: alpn2
      entryPoints: [web]
      tls: {passthrough: true}
    banner:
      rule: HostSNI(\`*\`)
      service: banner
      entryPoints: [tcponly]
    ppclient:
      rule: HostSNI(\`*\`) && ClientIP(\`10.0.0.0/8\`)
      service: ip
      entryPoints: [pp]
    v1:
      rule: HostSNI(\`*\`)
      service: ppv1
      entryPoints: [ppv1]
    v2:
      rule: HostSNI(\`*\`)
      service: ppv2
      entryPoints: [ppv2]
    allow:
      rule: HostSNI(\`*\`)
      service: weighted
      entryPoints: [allow]
      middlewares: [only-two]
    limited:
      rule: HostSNI(\`*\`)
      service: echo
      entryPoints: [inflight]
      middlewares: [two-conns]
    badrule:
      rule: HostSNI(\`x.test\`) &&
      service: echo
    notls:
      rule: HostSNI(\`x.test\`)
      service: echo
    nosvc:
      rule: HostSNI(\`*\`)
      service: nosuch
  middlewares:
    only-two:
      ipAllowList: {sourceRange: [127.0.0.2/32]}
    two-conns:
      inFlightConn: {amount: 2}
    badmw:
      ipAllowList: {sourceRange: [not-an-ip]}
  services:
    echo: {loadBalancer: {servers: [{address: "127.0.0.1:$EC"}]}}
    ip: {loadBalancer: {servers: [{address: "127.0.0.1:$IP"}]}}
    pass: {loadBalancer: {servers: [{address: "127.0.0.1:$PA"}]}}
    a: {loadBalancer: {servers: [{address: "127.0.0.1:$LA"}]}}
    b: {loadBalancer: {servers: [{address: "127.0.0.1:$LB"}]}}
    alpn1: {loadBalancer: {servers: [{address: "127.0.0.1:$TA1"}]}}
    alpn2: {loadBalancer: {servers: [{address: "127.0.0.1:$TA2"}]}}
    banner: {loadBalancer: {servers: [{address: "127.0.0.1:$BN"}]}}
    ppv1: {loadBalancer: {servers: [{address: "127.0.0.1:$PP1"}], proxyProtocol: {version: 1}}}
    ppv2: {loadBalancer: {servers: [{address: "127.0.0.1:$PP2"}], proxyProtocol: {version: 2}}}
    weighted:
      loadBalancer:
        servers:
          - {address: "127.0.0.1:$W1", weight: 3}
          - {address: "127.0.0.1:$W2", weight: 1}
    badaddr: {loadBalancer: {servers: [{address: "127.0.0.1"}]}}
    badpp: {loadBalancer: {servers: [{address: "127.0.0.1:$EC"}], proxyProtocol: {version: 3}}}
tls:
  certificates:
    - {certFile: "$K/a.test.pem", keyFile: "$K/a.test.key"}
    - {certFile: "$K/b.test.pem", keyFile: "$K/b.test.key"}
    - {certFile: "$K/h.test.pem", keyFile: "$K/h.test.key"}
  options:
    tls13: {minVersion: VersionTLS13}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$WEB"}
  tcponly: {address: "127.0.0.1:$TCPO"}
  pp:
    address: "127.0.0.1:$PPEP"
    proxyProtocol: {trustedIPs: ["127.0.0.1/32"]}
  ppu:
    address: "127.0.0.1:$PPU"
    proxyProtocol: {trustedIPs: ["10.9.9.9"]}
  ppv1: {address: "127.0.0.1:$PPV1"}
  ppv2: {address: "127.0.0.1:$PPV2"}
  allow: {address: "127.0.0.1:$ALLOW"}
  inflight: {address: "127.0.0.1:$INFL"}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$DYN"}
log: {level: DEBUG}
workers: 2
EOF
start_relais "$T/relais.yaml" $WEB
for p in $TCPO $PPEP $PPU $PPV1 $PPV2 $ALLOW $INFL; do wait_port $p; done
wait_log 'TCP router catchall' 1
sleep 0.3

# --- TLS passthrough: the server's own certificate, bytes both ways
is "passthrough: backend certificate and answer" "pass.test|pass[-]:hello" \
  "$($H tlsline $WEB pass.test "$K/ca.pem" hello)"
# --- HostSNI routing of two names, TLS terminated by relais
is "termination a.test -> backend A" "a.test|backendA:one" "$($H tlsline $WEB a.test "$K/ca.pem" one)"
is "termination b.test -> backend B" "b.test|backendB:two" "$($H tlsline $WEB b.test "$K/ca.pem" two)"
is "b.test served with its TLS options (TLS 1.3 only)" "" \
  "$(openssl s_client -connect 127.0.0.1:$WEB -servername b.test -tls1_2 </dev/null 2>/dev/null | grep -o 'BEGIN CERTIFICATE')"
# --- ALPN matcher
is "ALPN x-special -> first router" "alpn1.test|alpn1[x-special]:p" \
  "$($H tlsline $WEB alpn.test "$K/ca.pem" p x-special,http/1.1)"
is "no x-special -> the other router" "alpn2.test|alpn2[-]:q" \
  "$($H tlsline $WEB alpn.test "$K/ca.pem" q http/1.1)"
# --- the HTTPS router keeps its SNI on the same port
like "HTTPS router h.test still served (TLS terminated, whoami)" "^HTTP/(1.1|2) 200" \
  "$(curl -sS -i --cacert "$K/ca.pem" --resolve h.test:$WEB:127.0.0.1 https://h.test:$WEB/ 2>&1 | head -1)"
# --- HostSNI(*) takes every non-TLS connection: HTTP routers get none
is "non-TLS bytes go to the catch-all echo" "GET / HTTP/1.1\r\nHost: x\r\n\r\n" \
  "$($H send $WEB 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | sed 's/\r/\\r/g' | tr '\n' '|' | sed 's/|/\\n/g')"
# --- ClientIP
is "ClientIP(127.0.0.2) router for a client bound to 127.0.0.2" "backendIP:ip" \
  "$($H send $WEB 'ip\n' 127.0.0.2)"
is "same rule does not match 127.0.0.1" "z" "$($H send $WEB 'z' 127.0.0.1)"
# --- 4 MB both ways through the relay, half-close passed on
S=$($H stream $WEB 4194304)
set -- $S
is "4 MB echoed byte for byte" "$1 4194304" "$2 $3"
# --- server-first protocol on an entry point with only TCP routers
is "server-first: banner before the client speaks" "bnr-banner|bnr:hi" \
  "$(printf 'hi\n' | $H send $TCPO 'hi\n' | tr '\n' '|' | sed 's/|$//')"
# --- weights 3:1 over 400 connections (clients from 127.0.0.2: ipAllowList)
W=$(python3 - "$ALLOW" <<'PY'
import socket, sys
port = int(sys.argv[1]); c = {}
for _ in range(400):
    s = socket.socket(); s.settimeout(10); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", port))
    s.sendall(b"x\n"); s.shutdown(socket.SHUT_WR)
    d = b""
    while True:
        b = s.recv(100)
        if not b: break
        d += b
    s.close(); n = d.decode().split(":")[0] or "none"; c[n] = c.get(n, 0) + 1
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))
PY
)
like "weights 3:1 within 5% over 400" "^w1=(29[0-9]|30[0-9]|310) w2=(9[0-9]|10[0-9]|110)$" "$W"
# --- ipAllowList
like "ipAllowList refuses 127.0.0.1 (closed, no bytes)" "^\(closed\)$" \
  "$($H send $ALLOW 'x\n' 127.0.0.1)"
# --- inFlightConn: two held, the third refused, a fourth once one ended
$H hold $INFL 2 4 >"$T/hold.out" &
HP=$!
# (bounded wait for both answers: slow under the sanitizers)
for i in $(seq 1 60); do [ "$(wc -l <"$T/hold.out")" -ge 2 ] && break; sleep 0.05; done
is "inFlightConn: the two held connections work" "h|h" "$(head -2 "$T/hold.out" | tr '\n' '|' | sed 's/|$//')"
like "inFlightConn: a third from the same address is closed" "^\(closed\)$" \
  "$($H send $INFL 'third')"
wait $HP
sleep 0.2
is "inFlightConn: once they ended, a new one works" "again" "$($H send $INFL 'again')"
# --- PROXY protocol towards servers
like "PROXY v1 sent to the server, then the client's bytes" \
  "^v1 PROXY TCP4 127.0.0.1 127.0.0.1 [0-9]+ $PPV1\|data$" "$($H send $PPV1 'data\n')"
V2=$($H send $PPV2 'two\n')
like "PROXY v2 sent to the server (sig, PROXY cmd, TCP4, 12 bytes, 127.0.0.1 -> 127.0.0.1:$PPV2)" \
  "^v2 0d0a0d0a000d0a515549540a2111000c7f0000017f000001[0-9a-f]{4}$(printf '%04x' $PPV2)\|two$" "$V2"
# --- PROXY protocol accepted from a trusted peer
R=$($H ppsend $PPEP 2 203.0.113.7 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
like "trusted v2 header: X-Forwarded-For is the header's address" "X-Forwarded-For: 203.0.113.7" "$R"
like "trusted v2 header: X-Real-Ip too" "X-Real-Ip: 203.0.113.7" "$R"
R=$($H ppsend $PPEP 1 198.51.100.9 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
like "trusted v1 header: X-Real-Ip" "X-Real-Ip: 198.51.100.9" "$R"
is "a ClientIP TCP router matches the PROXY address" "backendIP:tcp" \
  "$($H ppsend $PPEP 2 10.1.2.3 'tcp\n')"
like "no header from a trusted peer is fine (HTTP)" "^HTTP/1.1 200" \
  "$(curl -sS -i http://127.0.0.1:$PPEP/ 2>&1 | head -1)"
like "curl --haproxy-protocol accepted" "X-Real-Ip: 127.0.0.1" \
  "$(curl -sS --haproxy-protocol http://127.0.0.1:$PPEP/ 2>&1)"
# --- refused from an untrusted peer
is "PROXY header from an untrusted peer: closed" "(closed)" \
  "$($H ppsend $PPU 2 203.0.113.7 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')"
like "... while plain HTTP works there" "^HTTP/1.1 200" "$(curl -sS -i http://127.0.0.1:$PPU/ 2>&1 | head -1)"
like "malformed PROXY header from a trusted peer: closed" "^\(closed\)$" \
  "$($H send $PPEP 'PROXY TCP4 1.2.3.4.5 x\r\n')"
# --- configuration errors with their key paths
like "bad rule reported with its column" \
  'tcp\.routers\.badrule@file\.rule: column 21: expected a matcher' "$(cat "$T/relais.log")"
like "HostSNI name without tls reported" \
  'tcp\.routers\.notls@file\.rule: HostSNI with a host name or HostSNIRegexp needs tls' "$(cat "$T/relais.log")"
like "missing service reported" \
  'tcp\.routers\.nosvc@file\.service: TCP service "nosuch@file" does not exist' "$(cat "$T/relais.log")"
like "bad server address reported" \
  'tcp\.services\.badaddr@file\.loadBalancer\.servers\[0\]\.address: expected an address' "$(cat "$T/relais.log")"
like "bad proxyProtocol version reported" \
  'tcp\.services\.badpp@file\.loadBalancer\.proxyProtocol\.version: expected 1 or 2, got 3' "$(cat "$T/relais.log")"
like "bad middleware reported" \
  'tcp\.middlewares\.badmw@file\.ipAllowList\.sourceRange\[0\]: expected an IP address' "$(cat "$T/relais.log")"
t_done
