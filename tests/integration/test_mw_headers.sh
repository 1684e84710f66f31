#!/usr/bin/env bash
# The headers middleware (plugin headers.so), black-box, against Traefik
# v3's behaviour: custom request headers (set, replace, remove, Go's
# canonical names) and response headers (set, remove a backend's); CORS
# preflights answered by relais itself (exact Access-Control-* values,
# allowed and refused origins, "*" with credentials, regexes, lists given
# as one comma-separated string) and simple requests (Allow-Origin only for
# an allowed Origin, Expose-Headers, Allow-Credentials, Vary: Origin merged
# with the backend's Vary, a backend's Allow-Origin overwritten); security
# headers with their exact values, Strict-Transport-Security and
# Public-Key-Pins only on HTTPS (TLS, or sslProxyHeaders from a trusted
# peer; an untrusted X-Forwarded-Proto is not believed) unless
# forceSTSHeader, isDevelopment; allowedHosts (500 "Bad Host", with
# hostsProxyHeaders, case, port; the preflight is answered before the
# check); bad options disable the middleware and its router with the key
# path in the log.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $HEADERS_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

plugin_dir_own ${HEADERS_SO:+"$HEADERS_SO"}
[ -e "$PLUGIN_DIR/headers.so" ] ||
  { echo "Bail out! no headers.so in $RELAIS_PLUGIN_DIR (or HEADERS_SO)"; exit 1; }

# ---- a CA and a server certificate for the HTTPS routers
K=$T/pki
mkdir -p "$K"
(
  set -e
  pki_ca "$K" ca "relais headers CA"
  pki_leaf "$K" server ca DNS:sec.test,DNS:force.test,DNS:dev.test,DNS:cors.test "" "/CN=sec.test"
) || { echo "Bail out! openssl could not make the test PKI"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
WEB=$(free_port); WS=$(free_port); TRUST=$(free_port)
DYN=$T/dyn.yaml
PK='pin-sha256="cUPcTAZWKaASuYWhhneDttWpY3oBAkE3h2+soZS7sWs="; max-age=5184000'
cat >"$DYN" <<EOF
http:
  routers:
    custom:   {rule: Host(\`custom.test\`), service: s, middlewares: [custom], entryPoints: [web]}
    cors:     {rule: Host(\`cors.test\`), service: s, middlewares: [cors], entryPoints: [web]}
    corstls:  {rule: Host(\`cors.test\`), service: s, middlewares: [cors], tls: {}}
    star:     {rule: Host(\`star.test\`), service: s, middlewares: [star], entryPoints: [web]}
    regex:    {rule: Host(\`regex.test\`), service: s, middlewares: [regex], entryPoints: [web]}
    str:      {rule: Host(\`str.test\`), service: s, middlewares: [str], entryPoints: [web]}
    vary:     {rule: Host(\`vary.test\`), service: s, middlewares: [varyonly, setvary], entryPoints: [web]}
    varyo:    {rule: Host(\`varyo.test\`), service: s, middlewares: [varyonly, setvaryorigin], entryPoints: [web]}
    backacao: {rule: Host(\`backacao.test\`), service: s, middlewares: [cors, setacao], entryPoints: [web]}
    sec:      {rule: Host(\`sec.test\`), service: s, middlewares: [sec], entryPoints: [web, trusted]}
    sectls:   {rule: Host(\`sec.test\`), service: s, middlewares: [sec], tls: {}}
    over:     {rule: Host(\`over.test\`), service: s, middlewares: [over], entryPoints: [web]}
    force:    {rule: Host(\`force.test\`), service: s, middlewares: [force], entryPoints: [web]}
    forcetls: {rule: Host(\`force.test\`), service: s, middlewares: [force], tls: {}}
    proxy:    {rule: Host(\`proxy.test\`), service: s, middlewares: [sslproxy], entryPoints: [web, trusted]}
    dev:      {rule: Host(\`dev.test\`) || Host(\`devother.test\`), service: s, middlewares: [dev], entryPoints: [web]}
    devtls:   {rule: Host(\`dev.test\`), service: s, middlewares: [dev], tls: {}}
    hosts:    {rule: Host(\`allowed.test\`) || Host(\`other.test\`) || Host(\`allowed.test:8080\`), service: s, middlewares: [hosts], entryPoints: [web]}
    hostsc:   {rule: Host(\`hc.test\`), service: s, middlewares: [hostscors], entryPoints: [web]}
    custsec:  {rule: Host(\`custsec.test\`), service: s, middlewares: [custsec], entryPoints: [web]}
    badr1: {rule: Host(\`bad1.test\`), service: s, middlewares: [bad1], entryPoints: [web]}
    badr2: {rule: Host(\`bad2.test\`), service: s, middlewares: [bad2], entryPoints: [web]}
    badr3: {rule: Host(\`bad3.test\`), service: s, middlewares: [bad3], entryPoints: [web]}
    badr4: {rule: Host(\`bad4.test\`), service: s, middlewares: [bad4], entryPoints: [web]}
    badr5: {rule: Host(\`bad5.test\`), service: s, middlewares: [bad5], entryPoints: [web]}
    badr6: {rule: Host(\`bad6.test\`), service: s, middlewares: [bad6], entryPoints: [web]}
    badr7: {rule: Host(\`bad7.test\`), service: s, middlewares: [bad7], entryPoints: [web]}
    badr8: {rule: Host(\`bad8.test\`), service: s, middlewares: [bad8], entryPoints: [web]}
    badr9: {rule: Host(\`bad9.test\`), service: s, middlewares: [bad9], entryPoints: [web]}
  middlewares:
    custom:
      headers:
        customRequestHeaders:
          x-script-name: test
          X-Custom-Request-Header: ""
          X-Forwarded-For: ""
        customResponseHeaders:
          X-Custom-Response-Header: value
          x-whoami-name: ""
    cors:
      headers:
        accessControlAllowMethods: [GET, OPTIONS, PUT]
        accessControlAllowHeaders: [X-Foo, Content-Type]
        accessControlAllowOriginList: [https://foo.bar.org, https://example.org]
        accessControlExposeHeaders: [X-Exp1, X-Exp2]
        accessControlMaxAge: 100
        addVaryHeader: true
    star:
      headers:
        accessControlAllowOriginList: ["*"]
        accessControlAllowCredentials: true
    regex:
      headers:
        accessControlAllowOriginListRegex: ['^https://[a-z]+\\.example\\.com$', 'foo']
        accessControlAllowMethods: [GET]
    str:
      headers:
        accessControlAllowMethods: "GET, OPTIONS,PUT"
        accessControlAllowHeaders: "*"
        accessControlAllowOriginList: "https://a.org, https://b.org"
    varyonly:
      headers:
        addVaryHeader: true
    setvary:
      headers:
        customResponseHeaders: {Vary: Accept-Encoding}
    setvaryorigin:
      headers:
        customResponseHeaders: {Vary: Origin}
    setacao:
      headers:
        customResponseHeaders: {Access-Control-Allow-Origin: "https://backend.example"}
    sec:
      headers:
        frameDeny: true
        contentTypeNosniff: true
        browserXssFilter: true
        contentSecurityPolicy: "default-src 'self'"
        contentSecurityPolicyReportOnly: "default-src https:; report-uri /csp"
        referrerPolicy: same-origin
        permissionsPolicy: "camera=(), microphone=()"
        publicKey: '$PK'
        stsSeconds: 31536000
        stsIncludeSubdomains: true
        stsPreload: true
    over:
      headers:
        frameDeny: true
        customFrameOptionsValue: SAMEORIGIN
        browserXssFilter: true
        customBrowserXSSValue: "0"
        contentTypeNosniff: true
        customResponseHeaders: {X-Content-Type-Options: ""}
    force:
      headers:
        stsSeconds: 60
        forceSTSHeader: true
    sslproxy:
      headers:
        stsSeconds: 120
        stsPreload: true
        sslProxyHeaders: {X-Forwarded-Proto: https, x-is-ssl: "on"}
    dev:
      headers:
        isDevelopment: true
        stsSeconds: 60
        forceSTSHeader: true
        publicKey: '$PK'
        allowedHosts: [dev.test]
        frameDeny: true
    hosts:
      headers:
        allowedHosts: [allowed.test]
        hostsProxyHeaders: [X-Real-Host, X-Other-Host]
    hostscors:
      headers:
        allowedHosts: [nowhere.test]
        accessControlAllowOriginList: [https://foo.bar.org]
        accessControlAllowMethods: [GET]
        addVaryHeader: true
        customResponseHeaders: {X-Custom: yes}
    custsec:
      headers:
        customRequestHeaders: {X-Is-Ssl: "on"}
        sslProxyHeaders: {X-Is-Ssl: "on"}
        stsSeconds: 5
    bad1: {headers: {frameDeny: maybe}}
    bad2: {headers: {sslRedirect: true, stsSeconds: 5}}
    bad3: {headers: {accessControlAllowOriginListRegex: ["ok", "(unclosed"]}}
    bad4: {headers: {}}
    bad5: {headers: {customRequestHeaders: [X-A]}}
    bad6: {headers: {customResponseHeaders: {"Bad Name": x}}}
    bad7: {headers: {stsSeconds: ten}}
    bad8: {headers: {accessControlAllowMethods: {a: b}}}
    bad9: {headers: {frameDenny: true}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
tls:
  certificates:
    - {certFile: "$K/server.pem", keyFile: "$K/server.key"}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WEB"
  websecure:
    address: "127.0.0.1:$WS"
  trusted:
    address: "127.0.0.1:$TRUST"
    forwardedHeaders: {insecure: true}
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$WEB"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

# get HOST [CURL-ARGS...]: plain HTTP to entry point web with that Host;
# the response head in $T/head, the body in $T/body; prints the status.
get() {
  local h=$1; shift
  curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 -H "Host: $h" "$@" \
    "http://127.0.0.1:$WEB/"
}
# gettls NAME [CURL-ARGS...]: the same over HTTPS (entry point websecure)
gettls() {
  local n=$1; shift
  curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 --cacert "$K/ca.pem" \
    --resolve "$n:$WS:127.0.0.1" "$@" "https://$n:$WS/"
}
# gettrust HOST [CURL-ARGS...]: plain HTTP to the entry point that trusts
# X-Forwarded-* from its clients
gettrust() {
  local h=$1; shift
  curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 -H "Host: $h" "$@" \
    "http://127.0.0.1:$TRUST/"
}
# rh NAME: the values of response header NAME (any case), one per line
rh() { tr -d '\r' <"$T/head" | sed -n "s/^$1: //Ip"; }
# rhn NAME: how many response headers NAME
rhn() { tr -d '\r' <"$T/head" | grep -ci "^$1:"; }
# acn: how many Access-Control-* response headers
acn() { tr -d '\r' <"$T/head" | grep -ci '^access-control-'; }
# uh NAME: the values of the header NAME (exact case) the backend received
uh() { sed -n "s/^$1: //p" "$T/body"; }
# uhn NAME: how many headers NAME (any case) the backend received
uhn() { grep -ci "^$1:" "$T/body"; }
# seen METHOD: how many METHOD requests whoami logged
seen() { grep -c "^$1 " "$T/w1.log"; }

# ---- custom request and response headers
is "custom: 200" 200 "$(get custom.test -H 'X-Script-Name: other' -H 'X-Custom-Request-Header: gone' \
  -H 'x-custom-request-header: gone too' -H 'X-Kept: yes')"
is "custom: the request header set, in Go's canonical form" "test" "$(uh X-Script-Name)"
is "custom: the client's value replaced (one header left)" 1 "$(uhn X-Script-Name)"
is "custom: an empty value removes the header (both spellings)" 0 "$(uhn X-Custom-Request-Header)"
is "custom: X-Forwarded-For: \"\" removes it" 0 "$(uhn X-Forwarded-For)"
is "custom: other headers untouched" "yes" "$(uh X-Kept)"
is "custom: the response header set" "value" "$(rh X-Custom-Response-Header)"
is "custom: a backend response header removed (X-Whoami-Name)" 0 "$(rhn X-Whoami-Name)"
is "custom: no CORS header without CORS options" 0 "$(acn)"

# ---- CORS preflight, answered by relais
before=$(seen OPTIONS)
is "preflight: 200" 200 "$(get cors.test -X OPTIONS -H 'Origin: https://foo.bar.org' \
  -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: X-Foo')"
is "preflight: Access-Control-Allow-Origin is the origin" "https://foo.bar.org" "$(rh Access-Control-Allow-Origin)"
is "preflight: Access-Control-Allow-Methods joined with ','" "GET,OPTIONS,PUT" "$(rh Access-Control-Allow-Methods)"
is "preflight: Access-Control-Allow-Headers joined with ','" "X-Foo,Content-Type" "$(rh Access-Control-Allow-Headers)"
is "preflight: Access-Control-Max-Age" "100" "$(rh Access-Control-Max-Age)"
is "preflight: exactly four Access-Control-* headers (no credentials, no expose)" 4 "$(acn)"
is "preflight: no Vary" 0 "$(rhn Vary)"
is "preflight: empty body" 0 "$(wc -c <"$T/body")"
is "preflight: Content-Length: 0" "0" "$(rh Content-Length)"
is "preflight: not forwarded to the backend" "$before" "$(seen OPTIONS)"
is "preflight: no backend header" 0 "$(rhn X-Whoami-Name)"
is "preflight, second listed origin: 200" 200 "$(get cors.test -X OPTIONS -H 'Origin: https://example.org' \
  -H 'Access-Control-Request-Method: GET')"
is "preflight, second listed origin: echoed" "https://example.org" "$(rh Access-Control-Allow-Origin)"
is "preflight, refused origin: still 200" 200 "$(get cors.test -X OPTIONS -H 'Origin: https://evil.org' \
  -H 'Access-Control-Request-Method: PUT')"
is "preflight, refused origin: no Access-Control-Allow-Origin" 0 "$(rhn Access-Control-Allow-Origin)"
is "preflight, refused origin: methods, headers, max-age still sent" \
  "GET,OPTIONS,PUT|X-Foo,Content-Type|100" \
  "$(rh Access-Control-Allow-Methods)|$(rh Access-Control-Allow-Headers)|$(rh Access-Control-Max-Age)"
is "preflight over HTTPS: 200 with the origin" "200 https://foo.bar.org" \
  "$(gettls cors.test -X OPTIONS -H 'Origin: https://foo.bar.org' -H 'Access-Control-Request-Method: PUT') $(rh Access-Control-Allow-Origin)"
is "OPTIONS without Access-Control-Request-Method: forwarded" "200 $((before + 1))" \
  "$(get cors.test -X OPTIONS -H 'Origin: https://foo.bar.org') $(seen OPTIONS)"
is "OPTIONS without Access-Control-Request-Method: simple CORS headers" \
  "https://foo.bar.org|X-Exp1,X-Exp2|Origin" \
  "$(rh Access-Control-Allow-Origin)|$(rh Access-Control-Expose-Headers)|$(rh Vary)"
is "OPTIONS without Origin: forwarded" "200 $((before + 2))" \
  "$(get cors.test -X OPTIONS -H 'Access-Control-Request-Method: PUT') $(seen OPTIONS)"
is "OPTIONS without Origin: no Access-Control-Allow-Origin" 0 "$(rhn Access-Control-Allow-Origin)"

# ---- CORS on simple requests
is "simple, allowed origin: 200 from the backend" "200 w1" \
  "$(get cors.test -H 'Origin: https://example.org') $(rh X-Whoami-Name)"
is "simple, allowed origin: Access-Control-Allow-Origin" "https://example.org" "$(rh Access-Control-Allow-Origin)"
is "simple, allowed origin: Access-Control-Expose-Headers" "X-Exp1,X-Exp2" "$(rh Access-Control-Expose-Headers)"
is "simple, allowed origin: Vary: Origin" "Origin" "$(rh Vary)"
is "simple, allowed origin: no Allow-Methods/-Headers/-Max-Age/-Credentials" 2 "$(acn)"
is "simple, allowed origin: the Origin still reaches the backend" "https://example.org" "$(uh Origin)"
is "simple, refused origin: 200" 200 "$(get cors.test -H 'Origin: https://foo.bar.org.evil')"
is "simple, refused origin: no Access-Control-Allow-Origin" 0 "$(rhn Access-Control-Allow-Origin)"
is "simple, refused origin: Expose-Headers and Vary all the same" "X-Exp1,X-Exp2|Origin" \
  "$(rh Access-Control-Expose-Headers)|$(rh Vary)"
is "simple, no Origin: no Access-Control-Allow-Origin" "200 0" "$(get cors.test) $(rhn Access-Control-Allow-Origin)"
is "backend's Access-Control-Allow-Origin overwritten for an allowed origin" "https://foo.bar.org 1" \
  "$(get backacao.test -H 'Origin: https://foo.bar.org' >/dev/null; rh Access-Control-Allow-Origin) $(rhn Access-Control-Allow-Origin)"
is "backend's Access-Control-Allow-Origin kept for a refused origin" "https://backend.example" \
  "$(get backacao.test -H 'Origin: https://x.org' >/dev/null; rh Access-Control-Allow-Origin)"

# ---- "*" and credentials
is "star preflight: 200" 200 "$(get star.test -X OPTIONS -H 'Origin: https://any.where' \
  -H 'Access-Control-Request-Method: DELETE')"
is "star preflight: Allow-Origin is the literal *" "*" "$(rh Access-Control-Allow-Origin)"
is "star preflight: Allow-Credentials: true" "true" "$(rh Access-Control-Allow-Credentials)"
is "star preflight: Max-Age 0 when not set" "0" "$(rh Access-Control-Max-Age)"
is "star preflight: no Allow-Methods/-Headers when not set" 3 "$(acn)"
is "star simple: Allow-Origin * and Allow-Credentials true" "*|true" \
  "$(get star.test -H 'Origin: https://any.where' >/dev/null; rh Access-Control-Allow-Origin)|$(rh Access-Control-Allow-Credentials)"
is "star simple, no Origin at all: Allow-Origin * (the wildcard matches every request)" "*|true" \
  "$(get star.test >/dev/null; rh Access-Control-Allow-Origin)|$(rh Access-Control-Allow-Credentials)"
is "star simple: no Vary without addVaryHeader" 0 "$(rhn Vary)"

# ---- regexes (PCRE2, unanchored like Go's MatchString)
is "regex preflight: matching origin echoed" "200 https://app.example.com" \
  "$(get regex.test -X OPTIONS -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: GET') $(rh Access-Control-Allow-Origin)"
is "regex preflight: anchored regex refuses a longer origin" "200 0" \
  "$(get regex.test -X OPTIONS -H 'Origin: https://app.example.com.evil' -H 'Access-Control-Request-Method: GET') $(rhn Access-Control-Allow-Origin)"
is "regex simple: an origin containing a match (foo) is allowed" "https://xfoox.net" \
  "$(get regex.test -H 'Origin: https://xfoox.net' >/dev/null; rh Access-Control-Allow-Origin)"
is "regex simple: no match, no Allow-Origin" 0 \
  "$(get regex.test -H 'Origin: https://bar.net' >/dev/null; rhn Access-Control-Allow-Origin)"

# ---- lists given as one comma-separated string (as Traefik reads them)
is "string lists: preflight 200" 200 "$(get str.test -X OPTIONS -H 'Origin: https://b.org' \
  -H 'Access-Control-Request-Method: PUT')"
is "string lists: methods split and trimmed" "GET,OPTIONS,PUT" "$(rh Access-Control-Allow-Methods)"
is "string lists: headers *" "*" "$(rh Access-Control-Allow-Headers)"
is "string lists: second origin matched" "https://b.org" "$(rh Access-Control-Allow-Origin)"

# ---- Vary merging
is "Vary: the backend's value gets ,Origin" "Accept-Encoding,Origin" \
  "$(get vary.test >/dev/null; rh Vary)"
is "Vary: exactly one Vary header" 1 "$(rhn Vary)"
is "Vary: Origin already there is left alone" "Origin 1" \
  "$(get varyo.test >/dev/null; rh Vary) $(rhn Vary)"

# ---- security headers, HTTP then HTTPS
is "sec over HTTP: 200" 200 "$(get sec.test)"
is "sec: X-Frame-Options: DENY" "DENY" "$(rh X-Frame-Options)"
is "sec: X-Content-Type-Options: nosniff" "nosniff" "$(rh X-Content-Type-Options)"
is "sec: X-XSS-Protection: 1; mode=block" "1; mode=block" "$(rh X-XSS-Protection)"
is "sec: Content-Security-Policy" "default-src 'self'" "$(rh Content-Security-Policy)"
is "sec: Content-Security-Policy-Report-Only" "default-src https:; report-uri /csp" \
  "$(rh Content-Security-Policy-Report-Only)"
is "sec: Referrer-Policy" "same-origin" "$(rh Referrer-Policy)"
is "sec: Permissions-Policy" "camera=(), microphone=()" "$(rh Permissions-Policy)"
is "sec over HTTP: no Strict-Transport-Security" 0 "$(rhn Strict-Transport-Security)"
is "sec over HTTP: no Public-Key-Pins" 0 "$(rhn Public-Key-Pins)"
is "sec over HTTP, X-Forwarded-Proto: https from an untrusted client: no STS" 0 \
  "$(get sec.test -H 'X-Forwarded-Proto: https' >/dev/null; rhn Strict-Transport-Security)"
is "sec over HTTPS: 200" 200 "$(gettls sec.test)"
is "sec over HTTPS: Strict-Transport-Security with includeSubDomains and preload" \
  "max-age=31536000; includeSubDomains; preload" "$(rh Strict-Transport-Security)"
is "sec over HTTPS: Public-Key-Pins" "$PK" "$(rh Public-Key-Pins)"
is "sec over HTTPS: the other headers too" "DENY|nosniff|same-origin" \
  "$(rh X-Frame-Options)|$(rh X-Content-Type-Options)|$(rh Referrer-Policy)"
is "sec: the security headers are not sent upstream" 0 "$(uhn X-Frame-Options)"

# ---- custom values and overrides
is "over: 200" 200 "$(get over.test)"
is "over: customFrameOptionsValue wins over frameDeny" "SAMEORIGIN" "$(rh X-Frame-Options)"
is "over: customBrowserXSSValue wins over browserXssFilter" "0" "$(rh X-XSS-Protection)"
is "over: customResponseHeaders removes a security header" 0 "$(rhn X-Content-Type-Options)"

# ---- forceSTSHeader, sslProxyHeaders, isDevelopment
is "force over HTTP: max-age=60" "200 max-age=60" "$(get force.test) $(rh Strict-Transport-Security)"
is "force over HTTPS: max-age=60" "200 max-age=60" "$(gettls force.test) $(rh Strict-Transport-Security)"
is "sslProxyHeaders, untrusted client's X-Forwarded-Proto: https: no STS" "200 0" \
  "$(get proxy.test -H 'X-Forwarded-Proto: https') $(rhn Strict-Transport-Security)"
is "sslProxyHeaders, trusted peer's X-Forwarded-Proto: https: STS" "200 max-age=120; preload" \
  "$(gettrust proxy.test -H 'X-Forwarded-Proto: https') $(rh Strict-Transport-Security)"
is "sslProxyHeaders, trusted peer's X-Forwarded-Proto: http: no STS" "200 0" \
  "$(gettrust proxy.test -H 'X-Forwarded-Proto: http') $(rhn Strict-Transport-Security)"
is "sslProxyHeaders, any client's X-Is-Ssl: on: STS" "200 max-age=120; preload" \
  "$(get proxy.test -H 'X-Is-Ssl: on') $(rh Strict-Transport-Security)"
is "sslProxyHeaders compare values exactly (On != on)" "200 0" \
  "$(get proxy.test -H 'X-Is-Ssl: On') $(rhn Strict-Transport-Security)"
is "sslProxyHeaders see the custom request headers" "200 max-age=5" \
  "$(get custsec.test) $(rh Strict-Transport-Security)"
is "isDevelopment over HTTPS: no STS even forced, no Public-Key-Pins" "200 0 0" \
  "$(gettls dev.test) $(rhn Strict-Transport-Security) $(rhn Public-Key-Pins)"
is "isDevelopment: other security headers still set" "DENY" "$(rh X-Frame-Options)"
is "isDevelopment: allowedHosts not enforced" "200 DENY" "$(get devother.test) $(rh X-Frame-Options)"

# ---- allowedHosts and hostsProxyHeaders
is "allowed host: 200" 200 "$(get allowed.test)"
is "allowed host, other case: 200" 200 "$(get ALLOWED.Test)"
is "other host: 500" 500 "$(get other.test)"
is "other host: body 'Bad Host' and a newline" "$(printf 'Bad Host\nX')" "$(cat "$T/body"; printf X)"
is "other host: Content-Type text/plain; charset=utf-8" "text/plain; charset=utf-8" "$(rh Content-Type)"
is "other host: X-Content-Type-Options: nosniff" "nosniff" "$(rh X-Content-Type-Options)"
is "other host: not forwarded (no backend header)" 0 "$(rhn X-Whoami-Name)"
is "allowed host with a port: 500 (the authority is compared whole)" 500 "$(get allowed.test:8080)"
is "hostsProxyHeaders: X-Real-Host: allowed.test on other.test: 200" 200 \
  "$(get other.test -H 'X-Real-Host: allowed.test')"
is "hostsProxyHeaders: the second header used when the first is absent" 200 \
  "$(get other.test -H 'X-Other-Host: allowed.test')"
is "hostsProxyHeaders: the first non-empty header wins" 500 \
  "$(get allowed.test -H 'X-Real-Host: evil.test' -H 'X-Other-Host: allowed.test')"
is "bad host with CORS and custom response headers: 500" 500 "$(get hc.test -H 'Origin: https://foo.bar.org')"
is "bad host: the custom response header and the CORS headers are added" "yes|https://foo.bar.org|Origin" \
  "$(rh X-Custom)|$(rh Access-Control-Allow-Origin)|$(rh Vary)"
is "bad host: a preflight is answered before the host check" "200 https://foo.bar.org GET" \
  "$(get hc.test -X OPTIONS -H 'Origin: https://foo.bar.org' -H 'Access-Control-Request-Method: GET') $(rh Access-Control-Allow-Origin) $(rh Access-Control-Allow-Methods)"

# ---- bad options: the middleware and its router disabled, key path logged
P='middleware bad[0-9]@file disabled: http\.middlewares\.bad[0-9]@file\.headers'
p() { local s=${P//\[0-9\]/$1}; printf '%s' "$s"; }
ok "frameDeny: maybe -> expected true or false, with its key path" \
  wait_log "$(p 1)\.frameDeny: expected true or false"
ok "sslRedirect -> removed in Traefik v3" wait_log "$(p 2)\.sslRedirect: removed in Traefik v3"
ok "a regex that does not compile -> origin parsing error naming it" \
  wait_log "$(p 3)\.accessControlAllowOriginListRegex: error occurred during origin parsing: \"\(unclosed\""
ok "no option at all -> headers configuration not valid" \
  wait_log "$(p 4): headers configuration not valid"
ok "customRequestHeaders: a list -> expected a map" \
  wait_log "$(p 5)\.customRequestHeaders: expected a map"
ok "customResponseHeaders with a bad name -> invalid header name" \
  wait_log "$(p 6)\.customResponseHeaders\.Bad Name: invalid header name"
ok "stsSeconds: ten -> expected an integer" wait_log "$(p 7)\.stsSeconds: expected an integer"
ok "accessControlAllowMethods: a map -> expected a list of strings" \
  wait_log "$(p 8)\.accessControlAllowMethods: expected a list of strings"
ok "frameDenny -> unknown option" wait_log "$(p 9)\.frameDenny: unknown option"
for i in 1 2 3 4 5 6 7 8 9; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(get bad$i.test)"
done
is "the good routers still serve" 200 "$(get custom.test)"
t_done
