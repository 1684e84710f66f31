#!/usr/bin/env bash
# The ipDenyList middleware (plugin ipdenylist.so; a relais addition, the
# opposite decision of ipAllowList with the same options), black-box:
# relais on 127.0.0.1 and ::1 (both trusting X-Forwarded-For from
# loopback) in front of whoami.  Addresses inside sourceRange are refused
# with the exact status and Go's status text; every other address, and a
# request whose address the ipStrategy cannot choose or parse, goes on.
# X-Forwarded-For contents are only data (documentation ranges).  Bad
# options disable the middleware and its router, with the key path.
#
# The plugins come from $RELAIS_PLUGIN_DIR (staged by make), or from
# $IPDENYLIST_SO / $IPALLOWLIST_SO when set (hand-built .so files; the
# allow list is used in one chain).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

plugin_dir_own ${IPDENYLIST_SO:+"$IPDENYLIST_SO"} ${IPALLOWLIST_SO:+"$IPALLOWLIST_SO"}
for so in ipdenylist ipallowlist; do
  [ -e "$PLUGIN_DIR/$so.so" ] ||
    { echo "Bail out! no $so.so in $RELAIS_PLUGIN_DIR (or IPDENYLIST_SO / IPALLOWLIST_SO)"; exit 1; }
done

start_whoami w1; P1=$WHOAMI_PORT
P4=$(free_port); P6=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF2
http:
  routers:
    no4:    {rule: Host(\`no4.test\`),    service: s, middlewares: [no4]}
    no6:    {rule: Host(\`no6.test\`),    service: s, middlewares: [no6]}
    other:  {rule: Host(\`other.test\`),  service: s, middlewares: [other]}
    r404:   {rule: Host(\`r404.test\`),   service: s, middlewares: [r404]}
    depth1: {rule: Host(\`depth1.test\`), service: s, middlewares: [depth1]}
    depth2: {rule: Host(\`depth2.test\`), service: s, middlewares: [depth2]}
    excl:   {rule: Host(\`excl.test\`),   service: s, middlewares: [excl]}
    subnet: {rule: Host(\`subnet.test\`), service: s, middlewares: [subnet]}
    chain:  {rule: Host(\`chain.test\`),  service: s, middlewares: [allow, deny]}
    badr1:  {rule: Host(\`bad1.test\`),   service: s, middlewares: [bad1]}
    badr2:  {rule: Host(\`bad2.test\`),   service: s, middlewares: [bad2]}
    badr3:  {rule: Host(\`bad3.test\`),   service: s, middlewares: [bad3]}
  middlewares:
    no4:    {ipDenyList: {sourceRange: ["127.0.0.0/8"]}}
    no6:    {ipDenyList: {sourceRange: ["::1/128"]}}
    other:  {ipDenyList: {sourceRange: ["192.0.2.0/24", "2001:db8::/32"]}}
    r404:   {ipDenyList: {sourceRange: ["127.0.0.1", "::1"], rejectStatusCode: 404}}
    depth1: {ipDenyList: {sourceRange: ["203.0.113.0/24", "2001:db8:bad::/48"], ipStrategy: {depth: 1}}}
    depth2: {ipDenyList: {sourceRange: ["203.0.113.0/24"], ipStrategy: {depth: 2}}}
    excl:   {ipDenyList: {sourceRange: ["203.0.113.0/24"], ipStrategy: {excludedIPs: ["198.51.100.0/24"]}}}
    subnet: {ipDenyList: {sourceRange: ["2001:db8:1::"], ipStrategy: {depth: 1, ipv6Subnet: 48}}}
    allow:  {ipAllowList: {sourceRange: ["127.0.0.0/8", "::1"]}}
    deny:   {ipDenyList: {sourceRange: ["::1"], rejectStatusCode: 451}}
    bad1:   {ipDenyList: {}}
    bad2:   {ipDenyList: {sourceRange: ["203.0.113.0/24", "203.0.113.0/2x"], denyStatusCode: 403}}
    bad3:   {ipDenyList: {sourceRange: ["::1"], rejectStatusCode: 99, ipStrategy: {ipv6Subnet: 0}}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF2
cat >"$T/relais.yaml" <<EOF2
entryPoints:
  web:
    address: "127.0.0.1:$P4"
    forwardedHeaders: {trustedIPs: ["127.0.0.1/32", "::1"]}
  web6:
    address: "[::1]:$P6"
    forwardedHeaders: {trustedIPs: ["127.0.0.1/32", "::1"]}
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF2
start_relais "$T/relais.yaml" "$P4"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

get4() {
  local h=$1; shift
  curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 -H "Host: $h" "$@" \
    "http://127.0.0.1:$P4/"
}
get6() {
  local h=$1; shift
  curl -s -g -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 -H "Host: $h" "$@" \
    "http://[::1]:$P6/"
}
body() { cat "$T/body"; }
hdr() { tr -d '\r' <"$T/head" | sed -n "s/^$1: //Ip"; }
served() { grep -q '^Name: w1$' "$T/body"; }

# ---- the connection's address
is "deny 127.0.0.0/8, from 127.0.0.1: 403" 403 "$(get4 no4.test)"
is "403 body: Go's status text" "Forbidden" "$(body)"
is "403 Content-Type" "text/plain; charset=utf-8" "$(hdr Content-Type)"
is "403 Content-Length" "9" "$(hdr Content-Length)"
is "deny 127.0.0.0/8, from ::1: 200" 200 "$(get6 no4.test)"
ok "deny 127.0.0.0/8, from ::1: whoami answered" served
is "deny ::1, from ::1: 403" 403 "$(get6 no6.test)"
is "deny ::1, from 127.0.0.1: 200" 200 "$(get4 no6.test)"
is "other ranges, from 127.0.0.1: 200" 200 "$(get4 other.test)"
is "other ranges, from ::1: 200" 200 "$(get6 other.test)"
is "X-Forwarded-For is ignored without ipStrategy" 200 \
  "$(get4 other.test -H 'X-Forwarded-For: 192.0.2.1')"
is "rejectStatusCode 404 (v4)" 404 "$(get4 r404.test)"
is "rejectStatusCode 404: body" "Not Found" "$(body)"
is "rejectStatusCode 404 (v6)" 404 "$(get6 r404.test)"
ok "only the served requests reached whoami" test "$(grep -c . "$T/w1.log")" = 5

# ---- ipStrategy
is "depth 1: denied element" 403 "$(get4 depth1.test -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7')"
is "depth 1: other element" 200 "$(get4 depth1.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1')"
is "depth 1: no header -> no address -> not denied" 200 "$(get4 depth1.test)"
is "depth 1: garbage -> not denied" 200 "$(get4 depth1.test -H 'X-Forwarded-For: 203.0.113.x')"
is "depth 1: denied IPv6 element, from ::1" 403 "$(get6 depth1.test -H 'X-Forwarded-For: 2001:db8:bad::1')"
is "depth 1: other IPv6 element, from ::1" 200 "$(get6 depth1.test -H 'X-Forwarded-For: 2001:db8:900d::1')"
is "depth 2: denied element" 403 "$(get4 depth2.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1')"
is "depth 2: fewer elements -> not denied" 200 "$(get4 depth2.test -H 'X-Forwarded-For: 203.0.113.7')"
is "excludedIPs: denied behind excluded proxies" 403 \
  "$(get4 excl.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1, 198.51.100.2')"
is "excludedIPs: other address behind excluded proxies" 200 \
  "$(get4 excl.test -H 'X-Forwarded-For: 203.0.113.7, 192.0.2.1, 198.51.100.2')"
is "excludedIPs: all excluded -> not denied" 200 "$(get4 excl.test -H 'X-Forwarded-For: 198.51.100.7')"
is "ipv6Subnet 48: 2001:db8:1:ffff::1 is 2001:db8:1:: -> denied" 403 \
  "$(get4 subnet.test -H 'X-Forwarded-For: 2001:db8:1:ffff::1')"
is "ipv6Subnet 48: 2001:db8:2::1 -> not denied" 200 "$(get4 subnet.test -H 'X-Forwarded-For: 2001:db8:2::1')"

# ---- allow then deny in one chain
is "chain allow+deny, from 127.0.0.1: 200" 200 "$(get4 chain.test)"
is "chain allow+deny, from ::1: 451 from the deny list" 451 "$(get6 chain.test)"
is "451 body" "Unavailable For Legal Reasons" "$(body)"

# ---- bad options
P='http\.middlewares\.badN@file\.ipDenyList'
m() { echo "middleware bad$1@file disabled: ${P/N/$1}"; }
ok "no sourceRange -> required" wait_log "$(m 1)\.sourceRange: required"
ok "sourceRange[1] 203.0.113.0/2x -> invalid" \
  wait_log "$(m 2)\.sourceRange\[1\]: invalid IP address or CIDR \"203\.0\.113\.0/2x\""
ok "denyStatusCode -> unknown option" wait_log "$(m 2)\.denyStatusCode: unknown option"
ok "rejectStatusCode 99 -> invalid HTTP status code" wait_log "$(m 3)\.rejectStatusCode: invalid HTTP status code 99"
ok "ipv6Subnet 0 -> invalid IPv6 subnet" wait_log "$(m 3)\.ipStrategy\.ipv6Subnet: invalid IPv6 subnet 0"
for i in 1 2 3; do
  ok "router badr$i disabled" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(get4 bad$i.test)"
done
ok "relais still running" kill -0 "$RELAIS_PID"
t_done
