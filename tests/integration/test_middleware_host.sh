#!/usr/bin/env bash
# What the host does around middleware plugins, with the test plugins
# tp_header (testHeader) and tp_body (testBody, a response body filter of
# ABI 1.4): body filters on Content-Length, chunked and close-delimited
# responses, on local answers, for HTTP/1.0 clients, two filters nested in
# the router's order, a filter that holds the body; no filter for HEAD;
# the chain middleware (nested, with a loop refused); entry point
# middlewares (entryPoints.X.http.middlewares) run before the router's,
# and an unknown one makes that entry point serve nothing.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
plugin_dir_own "$RELAIS_TEST_PLUGIN_DIR/tp_header.so" "$RELAIS_TEST_PLUGIN_DIR/tp_body.so"
[ -e "$PLUGIN_DIR/tp_body.so" ] || { echo "Bail out! tp_body.so not built"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
RP=$(free_port); EP2=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    up:     {rule: Host(\`up.test\`),     service: s, middlewares: [upper]}
    nest:   {rule: Host(\`nest.test\`),   service: s, middlewares: [outer, inner]}
    hold:   {rule: Host(\`hold.test\`),   service: s, middlewares: [outer, holder]}
    local:  {rule: Host(\`local.test\`),  service: s, middlewares: [upper, deny]}
    chain:  {rule: Host(\`chain.test\`),  service: s, middlewares: [both]}
    loop:   {rule: Host(\`loop.test\`),   service: s, middlewares: [loopa]}
    plain:  {rule: Host(\`plain.test\`),  service: s}
    ep2:    {rule: Host(\`ep2.test\`),    service: s, entryPoints: [second]}
    empty:  {rule: Host(\`empty.test\`),  service: s, middlewares: [emptypath]}
    auth:   {rule: Host(\`auth.test\`),   service: s, middlewares: [sethost]}
    ends:   {rule: Host(\`ends.test\`),   service: s, middlewares: [countends]}
  middlewares:
    upper:  {testBody: {upper: true}}
    outer:  {testBody: {tag: outer}}
    inner:  {testBody: {tag: inner, upper: true}}
    holder: {testBody: {hold: true, tag: hold}}
    deny:   {testHeader: {deny: true}}
    mark:   {testHeader: {name: X-Mark, value: chained}}
    both:   {chain: {middlewares: [mark, more]}}
    more:   {chain: {middlewares: [upper]}}
    loopa:  {chain: {middlewares: [loopb]}}
    loopb:  {chain: {middlewares: [loopa]}}
    epmark: {testHeader: {name: X-Entry, value: first}}
    emptypath: {testHeader: {setPath: ""}}
    sethost:   {testHeader: {setHost: "backend.example:8080"}}
    countends: {testHeader: {countEnds: true}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
    http:
      middlewares: [epmark@file]
  second:
    address: "127.0.0.1:$EP2"
    http:
      middlewares: [nosuch@file]
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }
# req HOST PATH [CURL-ARGS...]: the whole response (head and body), CRs removed
req() { local h=$1 p=$2; shift 2; curl -s -i --max-time 5 -H "Host: $h" "$@" "http://127.0.0.1:$RP$p" | tr -d '\r'; }
body() { local h=$1 p=$2; shift 2; curl -s --max-time 5 -H "Host: $h" "$@" "http://127.0.0.1:$RP$p"; }

# whoami: /data?size=N&unit=... answers N bytes; /chunked? read its README:
# here the plain echo (Content-Length) and its close-delimited and chunked
# variants as the backend offers them
plainbody=$(body plain.test /data?size=40 | od -c | head -1)
out=$(req up.test "/data?size=40")
like "filter: Content-Length replaced by chunked framing" "Transfer-Encoding: chunked" "$out"
ok "filter: no Content-Length left" sh -c "! printf '%s' \"\$1\" | grep -qi '^Content-Length:'" _ "$out"
like "filter: its response header" "X-Test-Body: filtered" "$out"
is "filter: the body upper-cased (40 bytes)" \
  "$(body plain.test /data?size=40 | tr a-z A-Z)" "$(body up.test /data?size=40)"
ok "(the plain body had lower case to change)" test -n "$plainbody"
big=$(body up.test "/data?size=300000" | wc -c)
is "filter: a 300000-byte body streams through whole" 300000 "$big"
five=$(body plain.test /data?size=5)
is "two filters nest in the router's order (outer sees inner's output)" \
  "<outer><inner>$(printf '%s' "$five" | tr a-z A-Z)</inner></outer>" "$(body nest.test /data?size=5)"
is "a holding filter passes everything at the end" "<outer><hold>$five</hold></outer>" \
  "$(body hold.test /data?size=5)"
is "a local answer (403) goes through the filter too" "DENIED BY TESTHEADER" \
  "$(body local.test /)"
out10=$(printf 'GET /data?size=10 HTTP/1.0\r\nHost: up.test\r\n\r\n' | nc -q 3 127.0.0.1 "$RP" | tr -d '\r')
ok "HTTP/1.0 client: close-delimited, no chunked framing" \
  sh -c "printf '%s' \"\$1\" | grep -q '^HTTP/1.1 200' && ! printf '%s' \"\$1\" | grep -qi 'Transfer-Encoding'" _ "$out10"
is "HTTP/1.0 client: the body filtered" "$(body plain.test /data?size=10 | tr a-z A-Z)" \
  "$(printf '%s' "$out10" | sed '1,/^$/d')"
head=$(curl -s -I --max-time 5 -H 'Host: up.test' "http://127.0.0.1:$RP/data?size=10" | tr -d '\r')
ok "HEAD: no filter asked (no body), Content-Length kept" \
  sh -c "printf '%s' \"\$1\" | grep -q '^Content-Length: 10' && ! printf '%s' \"\$1\" | grep -q X-Test-Body" _ "$head"
# ---- chain
out=$(req chain.test "/data?size=12")
like "chain: its first member ran (X-Mark)" "X-Mark: chained" "$out"
is "chain: the nested chain's member ran (upper-cased body)" \
  "$(body plain.test /data?size=12 | tr a-z A-Z)" "$(body chain.test /data?size=12)"
ok "chain loop: the router is disabled with the reason" \
  wait_log 'router loop@file disabled: http.routers.loop@file.middlewares\[0\]: chain "loopa@file": chain "loopb@file": .*nests too deep'
is "chain loop: not served" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: loop.test' "http://127.0.0.1:$RP/")"
# ---- ABI 1.4 request edits
like "an empty path goes upstream as /" "^GET / HTTP/1.1" "$(body empty.test /some/where)"
like "req_set_authority: the Host sent upstream" "Host: backend.example:8080" "$(body auth.test /)"
# req_on_end: called for a finished exchange and for one whose client left
ends() { curl -s -D- -o /dev/null --max-time 5 -H 'Host: ends.test' "http://127.0.0.1:$RP/" | tr -d '\r' | sed -n 's/^X-Ends: //p'; }
e0=$(ends)
curl -s -o /dev/null --max-time 0.3 -H 'Host: ends.test' "http://127.0.0.1:$RP/?wait=1s"
# (a client that half-closes still gets its answer, as with HAProxy: the
# abandoned exchange ends when the server answers, a second later)
# the i-th probe below starts after e0 + i finished probes: one more means
# the abandoned exchange ended too
seen=0
for i in $(seq 1 40); do
  [ "$(ends)" = "$((e0 + 1 + i))" ] && { seen=1; break; }
  sleep 0.1
done
is "req_on_end: the abandoned exchange ended too" 1 "$seen"
# ---- entry point middlewares
like "entry point middleware runs for every router of web" "X-Entry: first" "$(req plain.test /)"
like "... also before a router's own middlewares" "X-Entry: first" "$(req up.test /)"
ok "an unknown entry point middleware is logged" \
  wait_log 'entryPoints.second.http.middlewares\[0\]: middleware "nosuch@file" does not exist'
ok "... and says that entry point serves nothing" \
  wait_log 'entryPoints.second.http.middlewares\[0\]: .*nothing is served on this entry point'
is "... so its router is not served there" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: ep2.test' "http://127.0.0.1:$EP2/")"
t_done
