#!/usr/bin/env bash
# The ipAllowList middleware (plugin ipallowlist.so), black-box: relais on
# an IPv4 entry point (127.0.0.1) and an IPv6 one (::1), both trusting
# X-Forwarded-For from loopback, in front of whoami.  The client address
# is the connection's (v4 and v6 sourceRange, plain addresses and CIDRs,
# IPv4-mapped IPv6 entries) or taken from X-Forwarded-For with
# ipStrategy.depth / excludedIPs / ipv6Subnet (the addresses inside the
# header are only data: documentation ranges 203.0.113.0/24,
# 198.51.100.0/24, 192.0.2.0/24, 2001:db8::/32).  A refusal is the exact
# status (403, or rejectStatusCode) with Go's status text as the body.
# Bad options disable the middleware and its router, with the key path.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $IPALLOWLIST_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

plugin_dir_own ${IPALLOWLIST_SO:+"$IPALLOWLIST_SO"}
[ -e "$PLUGIN_DIR/ipallowlist.so" ] ||
  { echo "Bail out! no ipallowlist.so in $RELAIS_PLUGIN_DIR (or IPALLOWLIST_SO)"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
P4=$(free_port); P6=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF2
http:
  routers:
    v4only:  {rule: Host(\`v4only.test\`),  service: s, middlewares: [v4only]}
    v6only:  {rule: Host(\`v6only.test\`),  service: s, middlewares: [v6only]}
    mapped:  {rule: Host(\`mapped.test\`),  service: s, middlewares: [mapped]}
    both:    {rule: Host(\`both.test\`),    service: s, middlewares: [both]}
    r404:    {rule: Host(\`r404.test\`),    service: s, middlewares: [r404]}
    r429:    {rule: Host(\`r429.test\`),    service: s, middlewares: [r429]}
    depth1:  {rule: Host(\`depth1.test\`),  service: s, middlewares: [depth1]}
    depth2:  {rule: Host(\`depth2.test\`),  service: s, middlewares: [depth2]}
    excl:    {rule: Host(\`excl.test\`),    service: s, middlewares: [excl]}
    v6xff:   {rule: Host(\`v6xff.test\`),   service: s, middlewares: [v6xff]}
    subnet:  {rule: Host(\`subnet.test\`),  service: s, middlewares: [subnet]}
    bothd:   {rule: Host(\`bothd.test\`),   service: s, middlewares: [bothd]}
    badr1:   {rule: Host(\`bad1.test\`),    service: s, middlewares: [bad1]}
    badr2:   {rule: Host(\`bad2.test\`),    service: s, middlewares: [bad2]}
    badr3:   {rule: Host(\`bad3.test\`),    service: s, middlewares: [bad3]}
    badr4:   {rule: Host(\`bad4.test\`),    service: s, middlewares: [bad4]}
    badr5:   {rule: Host(\`bad5.test\`),    service: s, middlewares: [bad5]}
    badr6:   {rule: Host(\`bad6.test\`),    service: s, middlewares: [bad6]}
  middlewares:
    v4only: {ipAllowList: {sourceRange: ["127.0.0.1/32"]}}
    v6only: {ipAllowList: {sourceRange: ["::1"]}}
    mapped: {ipAllowList: {sourceRange: ["::ffff:127.0.0.0/104"]}}
    both:   {ipAllowList: {sourceRange: ["192.0.2.0/24", "127.0.0.0/8", "2001:db8::/32", "::1/128"]}}
    r404:   {ipAllowList: {sourceRange: ["192.0.2.0/24"], rejectStatusCode: 404}}
    r429:   {ipAllowList: {sourceRange: ["2001:db8::/32"], rejectStatusCode: 429}}
    depth1: {ipAllowList: {sourceRange: ["203.0.113.0/24"], ipStrategy: {depth: 1}}}
    depth2: {ipAllowList: {sourceRange: ["203.0.113.0/24"], ipStrategy: {depth: 2}}}
    excl:   {ipAllowList: {sourceRange: ["203.0.113.0/24", "2001:db8:a::/48"],
                           ipStrategy: {excludedIPs: ["198.51.100.0/24", "2001:db8:ffff::/48"]}}}
    v6xff:  {ipAllowList: {sourceRange: ["2001:db8::/32"], ipStrategy: {depth: 1}}}
    subnet: {ipAllowList: {sourceRange: ["2001:db8:1::", "203.0.113.0"], ipStrategy: {depth: 1, ipv6Subnet: 48}}}
    bothd:  {ipAllowList: {sourceRange: ["203.0.113.0/24"], ipStrategy: {depth: 1, excludedIPs: ["203.0.113.0/24"]}}}
    bad1:   {ipAllowList: {ipStrategy: {depth: 1}}}
    bad2:   {ipAllowList: {sourceRange: ["10.0.0.0/8", "10.0.0.0/33", "2001:db8::/129", "not-an-ip"]}}
    bad3:   {ipAllowList: {sourceRange: ["10.0.0.0/8"], rejectStatusCode: 999}}
    bad4:   {ipAllowList: {sourceRange: ["10.0.0.0/8"], ipStrategy: {depth: -1, ipv6Subnet: 129, excludedIP: ["1.2.3.4"]}}}
    bad5:   {ipAllowList: {sourceRange: [], rejectStatuscode: 403}}
    bad6:   {ipAllowList: {sourceRange: "10.0.0.0/8", ipStrategy: true, rejectStatusCode: forbidden}}
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

# get4 / get6 HOST [CURL-ARGS...]: GET / over 127.0.0.1 / ::1; prints the
# status, the body goes to $T/body, the head to $T/head
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

# ---- the connection's address, IPv4 and IPv6
is "v4 range, from 127.0.0.1: 200" 200 "$(get4 v4only.test)"
ok "v4 range, from 127.0.0.1: whoami answered" served
is "v4 range, from ::1: 403" 403 "$(get6 v4only.test)"
is "403 body: Go's status text, exactly" "Forbidden" "$(body)"
is "403 Content-Type" "text/plain; charset=utf-8" "$(hdr Content-Type)"
is "403 Content-Length" "9" "$(hdr Content-Length)"
ok "403 not served by whoami" test "$(grep -c . "$T/w1.log")" = 1
is "v6 address, from ::1: 200" 200 "$(get6 v6only.test)"
ok "v6 address, from ::1: whoami answered" served
is "v6 address, from 127.0.0.1: 403" 403 "$(get4 v6only.test)"
is "IPv4-mapped CIDR ::ffff:127.0.0.0/104 covers 127.0.0.1" 200 "$(get4 mapped.test)"
is "IPv4-mapped CIDR does not cover ::1" 403 "$(get6 mapped.test)"
is "mixed list, from 127.0.0.1" 200 "$(get4 both.test)"
is "mixed list, from ::1" 200 "$(get6 both.test)"
is "X-Forwarded-For is ignored without ipStrategy" 403 "$(get4 v6only.test -H 'X-Forwarded-For: ::1')"

# ---- rejectStatusCode
is "rejectStatusCode 404" 404 "$(get4 r404.test)"
is "rejectStatusCode 404: body" "Not Found" "$(body)"
is "rejectStatusCode 429 (over IPv6)" 429 "$(get6 r429.test)"
is "rejectStatusCode 429: body" "Too Many Requests" "$(body)"

# ---- ipStrategy.depth (relais' own appended element does not count)
is "depth 1: last element in range" 200 "$(get4 depth1.test -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7')"
ok "depth 1: the upstream still gets the full X-Forwarded-For" \
  grep -q '^X-Forwarded-For: 198.51.100.1, 203.0.113.7, 127.0.0.1$' "$T/body"
is "depth 1: last element out of range" 403 "$(get4 depth1.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1')"
is "depth 1: no X-Forwarded-For -> no address -> 403" 403 "$(get4 depth1.test)"
is "depth 1: spaces and port tolerated ('  203.0.113.9:8080 ')" 200 \
  "$(get4 depth1.test -H 'X-Forwarded-For: 198.51.100.1,  203.0.113.9:8080 ')"
is "depth 1: garbage -> 403" 403 "$(get4 depth1.test -H 'X-Forwarded-For: nonsense')"
is "depth 1: from ::1 too" 200 "$(get6 depth1.test -H 'X-Forwarded-For: 203.0.113.200')"
is "depth 1: only the first X-Forwarded-For header counts" 403 \
  "$(get4 depth1.test -H 'X-Forwarded-For: 198.51.100.1' -H 'X-Forwarded-For: 203.0.113.7')"
is "depth 2: second from the right in range" 200 "$(get4 depth2.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1')"
is "depth 2: second from the right out of range" 403 "$(get4 depth2.test -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7')"
is "depth 2: one element only -> 403" 403 "$(get4 depth2.test -H 'X-Forwarded-For: 203.0.113.7')"
is "depth 2: three elements" 200 "$(get4 depth2.test -H 'X-Forwarded-For: 192.0.2.1, 203.0.113.1, 192.0.2.2')"

# ---- ipStrategy.excludedIPs: first from the right not excluded
is "excludedIPs: skips excluded proxies" 200 \
  "$(get4 excl.test -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.1, 198.51.100.2')"
is "excludedIPs: first non-excluded is out of range" 403 \
  "$(get4 excl.test -H 'X-Forwarded-For: 203.0.113.7, 192.0.2.1, 198.51.100.1')"
is "excludedIPs: every element excluded -> 403" 403 "$(get4 excl.test -H 'X-Forwarded-For: 198.51.100.1, 198.51.100.2')"
is "excludedIPs: empty elements skipped" 200 "$(get4 excl.test -H 'X-Forwarded-For: 203.0.113.5,, 198.51.100.9,')"
is "excludedIPs: IPv6 proxies skipped" 200 \
  "$(get6 excl.test -H 'X-Forwarded-For: 2001:db8:a::1, 2001:db8:ffff::2')"
is "excludedIPs: IPv6 out of range" 403 "$(get6 excl.test -H 'X-Forwarded-For: 2001:db8:b::1, 2001:db8:ffff::2')"
is "excludedIPs: no header -> 403" 403 "$(get4 excl.test)"

# ---- IPv6 inside X-Forwarded-For, ipv6Subnet
is "depth 1, IPv6 element in 2001:db8::/32" 200 "$(get4 v6xff.test -H 'X-Forwarded-For: 2001:db8::1')"
is "depth 1, IPv6 element with brackets and port" 200 "$(get4 v6xff.test -H 'X-Forwarded-For: [2001:db8::1]:443')"
is "depth 1, IPv6 element outside" 403 "$(get4 v6xff.test -H 'X-Forwarded-For: 2001:db9::1')"
is "ipv6Subnet 48: 2001:db8:1:2::9 becomes 2001:db8:1:: (listed)" 200 \
  "$(get4 subnet.test -H 'X-Forwarded-For: 2001:db8:1:2::9')"
is "ipv6Subnet 48: 2001:db8:2::9 becomes 2001:db8:2:: (not listed)" 403 \
  "$(get4 subnet.test -H 'X-Forwarded-For: 2001:db8:2::9')"
is "ipv6Subnet leaves IPv4 alone (203.0.113.5 is not 203.0.113.0)" 403 \
  "$(get4 subnet.test -H 'X-Forwarded-For: 203.0.113.5')"
is "ipv6Subnet: the exact IPv4 entry" 200 "$(get4 subnet.test -H 'X-Forwarded-For: 203.0.113.0')"
is "depth wins over excludedIPs" 200 "$(get4 bothd.test -H 'X-Forwarded-For: 203.0.113.9')"

# ---- bad options: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad([0-9])@file\.ipAllowList'
m() { echo "middleware bad$1@file disabled: ${P/\(\[0-9\]\)/$1}"; }
ok "sourceRange missing -> required" wait_log "$(m 1)\.sourceRange: required"
ok "sourceRange[1] 10.0.0.0/33 -> invalid, with its index" \
  wait_log "$(m 2)\.sourceRange\[1\]: invalid IP address or CIDR \"10\.0\.0\.0/33\""
ok "sourceRange[2] 2001:db8::/129 -> invalid" \
  wait_log "$(m 2)\.sourceRange\[2\]: invalid IP address or CIDR \"2001:db8::/129\""
ok "sourceRange[3] not-an-ip -> invalid" \
  wait_log "$(m 2)\.sourceRange\[3\]: invalid IP address or CIDR \"not-an-ip\""
ok "rejectStatusCode 999 -> invalid HTTP status code" \
  wait_log "$(m 3)\.rejectStatusCode: invalid HTTP status code 999"
ok "ipStrategy.depth -1 -> error" wait_log "$(m 4)\.ipStrategy\.depth: must be between 0 and"
ok "ipStrategy.ipv6Subnet 129 -> error" wait_log "$(m 4)\.ipStrategy\.ipv6Subnet: invalid IPv6 subnet 129"
ok "ipStrategy.excludedIP (typo) -> unknown option" wait_log "$(m 4)\.ipStrategy\.excludedIP: unknown option"
ok "sourceRange [] -> required" wait_log "$(m 5)\.sourceRange: required"
ok "rejectStatuscode: keys are case-insensitive (no error for it)" \
  sh -c "! grep -q 'bad5@file.*rejectStatuscode' '$T/relais.log'"
ok "ipStrategy: true -> expected a map" wait_log "$(m 6)\.ipStrategy: expected a map"
ok "rejectStatusCode: forbidden -> wrong type" wait_log "$(m 6)\.rejectStatusCode: "
for i in 1 2 3 4 5 6; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(get4 bad$i.test)"
done
is "the good routers still serve" 200 "$(get4 v4only.test)"
ok "relais still running" kill -0 "$RELAIS_PID"
t_done
