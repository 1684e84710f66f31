#!/usr/bin/env bash
# The path and redirection middlewares, one plugin each: addPrefix,
# stripPrefix, stripPrefixRegex, replacePath, replacePathRegex,
# redirectScheme, redirectRegex (Traefik v3 semantics).  whoami echoes the
# request line and headers it received: the exact path and query the
# backend sees, X-Forwarded-Prefix / X-Replaced-Path; redirections are
# checked for their exact status, Location and body; escaped paths follow
# Go's URL.Path / URL.RawPath rules; two middlewares chained in both
# orders; bad options disable the middleware and its router with the key
# path in the log.
#
# Plugins come from $RELAIS_PLUGIN_DIR (staged by make), or from
# $MW_PATHS_SO_DIR when set (a directory of hand-built .so files).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

MWS="addprefix stripprefix stripprefixregex replacepath replacepathregex redirectscheme redirectregex"
extra=()
if [ -n "${MW_PATHS_SO_DIR:-}" ]; then
  for m in $MWS; do extra+=("$MW_PATHS_SO_DIR/$m.so"); done
fi
plugin_dir_own "${extra[@]}"
for m in $MWS; do
  [ -e "$PLUGIN_DIR/$m.so" ] || { echo "Bail out! no $m.so (RELAIS_PLUGIN_DIR or MW_PATHS_SO_DIR)"; exit 1; }
done

start_whoami w1; P1=$WHOAMI_PORT
WEB=$(free_port); TRUST=$(free_port)
DYN=$T/dyn.yaml
# r NAME HOST MIDDLEWARES: one router line
r() { printf '    %s: {rule: "Host(`%s`)", service: s, middlewares: [%s]}\n' "$1" "$2" "$3"; }
{
cat <<EOF
http:
  routers:
EOF
r ap      ap.test      ap
r ap2     ap2.test     ap2
r ap3     ap3.test     ap3
r sp      sp.test      sp
r spfs    spfs.test    spfs
r spr     spr.test     spr
r rp      rp.test      rp
r rp2     rp2.test     rp2
r rp3     rp3.test     rp3
r rp4     rp4.test     rp4
r rpr     rpr.test     rpr
r rpr2    rpr2.test    rpr2
r rpr3    rpr3.test    rpr3
r rpr4    rpr4.test    rpr4
r rpr5    rpr5.test    rpr5
r rpr6    rpr6.test    rpr6
r rpr7    rpr7.test    rpr7
r rs      rs.test      rs
printf '    rs6: {rule: "PathPrefix(`/v6`)", service: s, middlewares: [rs]}\n'
r rsp     rsp.test     rsp
r rs80    rs80.test    rs80
r rsnum   rsnum.test   rsnum
r rr      rr.test      rr
r rrp     rrp.test     rrp
r rrsame  rrsame.test  rrsame
r rrbad   rrbad.test   rrbad
r rrnorm  rrnorm.test  rrnorm
r chA     cha.test     "sp, addv2"
r chB     chb.test     "addv2, sp"
r chC     chc.test     "rpr, spbar"
r chD     chd.test     "spbar, rpr"
r chE     che.test     "sp, rrx"
for i in 1 2 3 4 5 6 7 8 9; do r bad$i bad$i.test bad$i; done
cat <<EOF
  middlewares:
    ap:   {addPrefix: {prefix: /foo}}
    ap2:  {addPrefix: {prefix: api}}
    ap3:  {addPrefix: {prefix: "/my dir"}}
    addv2: {addPrefix: {prefix: /v2}}
    sp:   {stripPrefix: {prefixes: [/api, /api/v1]}}
    spbar: {stripPrefix: {prefixes: [/bar]}}
    spfs: {stripPrefix: {prefixes: [/api], forceSlash: true}}
    spr:  {stripPrefixRegex: {regex: ["/users/[a-z]+", " /v[0-9]+ "]}}
    rp:   {replacePath: {path: /new}}
    rp2:  {replacePath: {path: "/a%2Fb"}}
    rp3:  {replacePath: {path: "/with space"}}
    rp4:  {replacePath: {path: "/bad%zz"}}
    rpr:  {replacePathRegex: {regex: "^/foo/(.*)", replacement: "/bar/\$1"}}
    rpr2: {replacePathRegex: {regex: "/a", replacement: "/b"}}
    rpr3: {replacePathRegex: {regex: "^/(\\\\w+)/(.*)", replacement: "/\$1x/\${2}"}}
    rpr4: {replacePathRegex: {regex: "^/enc/(.*)", replacement: "/x%2F\$1"}}
    rpr5: {replacePathRegex: {regex: "^/pct", replacement: "/%zz"}}
    rpr6: {replacePathRegex: {regex: "^/n/(?P<id>[0-9]+)", replacement: "/item/\${id}/\$\$"}}
    rpr7: {replacePathRegex: {regex: "%20", replacement: "-"}}
    rs:   {redirectScheme: {scheme: https}}
    rsp:  {redirectScheme: {scheme: https, port: "8443", permanent: true}}
    rs80: {redirectScheme: {scheme: http, port: 80}}
    rsnum: {redirectScheme: {scheme: https, port: 9443}}
    rr:   {redirectRegex: {regex: "^http://([^/:]+)(:[0-9]+)?/old/(.*)", replacement: "http://\${1}/new/\${3}"}}
    rrp:  {redirectRegex: {regex: "^http://([^/]+)/p", replacement: "https://\${1}/q", permanent: true}}
    rrsame: {redirectRegex: {regex: "^(.*)\$", replacement: "\$1"}}
    rrbad:  {redirectRegex: {regex: "^http://[^/]+/(.*)", replacement: "http://x/%zz/\$1"}}
    rrnorm: {redirectRegex: {regex: "^http://[^/]+/(.*)", replacement: "HTTPS://norm.test/a b/\$1"}}
    rrx:  {redirectRegex: {regex: "^http://[^/]+/x\$", replacement: "http://other.test/y"}}
    bad1: {addPrefix: {prefix: ""}}
    bad2: {addPrefix: {prefx: /a}}
    bad3: {stripPrefix: {prefixes: {a: b}}}
    bad4: {stripPrefixRegex: {regex: ["/ok", "/(unclosed"]}}
    bad5: {replacePathRegex: {replacement: /x}}
    bad6: {redirectScheme: {permanent: true}}
    bad7: {redirectRegex: {regex: "[", replacement: x}}
    bad8: {redirectRegex: {regex: "^/"}}
    bad9: {stripPrefix: {prefixes: [/a], forceSlash: maybe}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
} >"$DYN"
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WEB"
  trusted:
    address: "127.0.0.1:$TRUST"
    forwardedHeaders:
      insecure: true
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

# get HOST TARGET [CURL-ARGS...]: sends TARGET as is (--path-as-is) to
# HOST on the web entry point; response headers in $T/hdr, body in
# $T/body; prints the status
get() {
  local h=$1 t=$2; shift 2
  curl -s --path-as-is -o "$T/body" -D "$T/hdr" -w '%{http_code}' --max-time 5 \
    -H "Host: $h" "$@" "http://127.0.0.1:${PORT:-$WEB}$t"
}
# seen: the request-target the backend received
seen() { sed -n 's/^[A-Z]* \(.*\) HTTP\/1\.1$/\1/p' "$T/body"; }
# hv NAME: every value of the echoed request header NAME (exact case)
hv() { sed -n "s/^$1: //p" "$T/body"; }
# rh NAME: the value of response header NAME (case-insensitive)
rh() { tr -d '\r' <"$T/hdr" | sed -n "s/^$1: //Ip"; }

# ---- addPrefix
is "addPrefix: 200" 200 "$(get ap.test '/bar?x=1&y')"
is "addPrefix: /bar?x=1&y -> /foo/bar?x=1&y" "/foo/bar?x=1&y" "$(seen)"
get ap.test / >/dev/null
is "addPrefix: / -> /foo/" "/foo/" "$(seen)"
get ap.test '/a%2Fb' >/dev/null
is "addPrefix: the escaped spelling is kept: /a%2Fb -> /foo/a%2Fb" "/foo/a%2Fb" "$(seen)"
get ap.test '/a%41%7cb' >/dev/null
is "addPrefix: /a%41%7cb (own escapes, lower-case hex) kept" "/foo/a%41%7cb" "$(seen)"
get ap2.test /x >/dev/null
is "addPrefix: prefix without a slash gets one: api + /x -> /api/x" "/api/x" "$(seen)"
get ap3.test '/x?q' >/dev/null
is "addPrefix: a prefix with a space is escaped: /my%20dir/x" "/my%20dir/x?q" "$(seen)"
get ap3.test '/a%20b' >/dev/null
is "addPrefix: prefix with a space + escaped path: re-escaped from the decoded path" \
  "/my%20dir/a%20b" "$(seen)"

# ---- stripPrefix
is "stripPrefix: 200" 200 "$(get sp.test '/api/v1/x?q=1' -H 'X-Forwarded-Prefix: forged')"
is "stripPrefix: prefixes tried in order: /api/v1/x -> /v1/x" "/v1/x?q=1" "$(seen)"
is "stripPrefix: X-Forwarded-Prefix: /api (the forged one removed)" "/api" "$(hv X-Forwarded-Prefix)"
get sp.test /apifoo >/dev/null
is "stripPrefix: plain string prefix: /apifoo -> /foo" "/foo" "$(seen)"
get sp.test '/api?x' >/dev/null
is "stripPrefix: the whole path: /api?x -> /?x" "/?x" "$(seen)"
get sp.test /other >/dev/null
is "stripPrefix: no match: unchanged" "/other" "$(seen)"
is "stripPrefix: no match: no X-Forwarded-Prefix" "" "$(hv X-Forwarded-Prefix)"
get sp.test '/api/a%2Fb' >/dev/null
is "stripPrefix: escaped spelling kept: /api/a%2Fb -> /a%2Fb" "/a%2Fb" "$(seen)"
get sp.test '/%61pi/x%2Fy' >/dev/null
is "stripPrefix: prefix matched on the decoded path (/%61pi), rest re-escaped from it" \
  "/x/y" "$(seen)"
is "stripPrefix: ... and X-Forwarded-Prefix is the configured prefix" "/api" "$(hv X-Forwarded-Prefix)"
get spfs.test /api/x >/dev/null
is "stripPrefix forceSlash: /api/x -> /x" "/x" "$(seen)"
get spfs.test /api >/dev/null
is "stripPrefix forceSlash: /api -> /" "/" "$(seen)"
ok "stripPrefix forceSlash: deprecation warning logged" \
  wait_log 'forceSlash` option is deprecated'

# ---- stripPrefixRegex
is "stripPrefixRegex: 200" 200 "$(get spr.test '/users/bob/profile?a=b')"
is "stripPrefixRegex: /users/bob/profile -> /profile" "/profile?a=b" "$(seen)"
is "stripPrefixRegex: X-Forwarded-Prefix is the matched text" "/users/bob" "$(hv X-Forwarded-Prefix)"
get spr.test /v2/items >/dev/null
is "stripPrefixRegex: second expression (spaces trimmed): /v2/items -> /items" "/items" "$(seen)"
is "stripPrefixRegex: X-Forwarded-Prefix: /v2" "/v2" "$(hv X-Forwarded-Prefix)"
get spr.test /x/v2/items >/dev/null
is "stripPrefixRegex: a match not at the start strips nothing" "/x/v2/items" "$(seen)"
is "stripPrefixRegex: ... and adds no header" "" "$(hv X-Forwarded-Prefix)"
get spr.test /users/BOB >/dev/null
is "stripPrefixRegex: no match: unchanged" "/users/BOB" "$(seen)"
get spr.test '/us%65rs/bob/z' >/dev/null
is "stripPrefixRegex: matched on the decoded path, raw cut misaligned -> re-escaped" "/z" "$(seen)"
get spr.test '/users/bob%2Fx/y' >/dev/null
is "stripPrefixRegex: /users/bob%2Fx/y -> /x/y (Go's RawPath no longer matches)" "/x/y" "$(seen)"

# ---- replacePath
is "replacePath: 200" 200 "$(get rp.test '/old/x?q=1')"
is "replacePath: path replaced, query kept" "/new?q=1" "$(seen)"
is "replacePath: X-Replaced-Path is the old path" "/old/x" "$(hv X-Replaced-Path)"
get rp.test '/a%2Fb%20c' >/dev/null
is "replacePath: X-Replaced-Path keeps the escaped spelling" "/a%2Fb%20c" "$(hv X-Replaced-Path)"
get rp2.test /x >/dev/null
is "replacePath: an escaped configured path is sent as is" "/a%2Fb" "$(seen)"
get rp3.test /x >/dev/null
is "replacePath: a configured path with a space is escaped" "/with%20space" "$(seen)"
is "replacePath: invalid escape in path -> 500" 500 "$(get rp4.test /x)"
is "replacePath: ... Go's error text" 'invalid URL escape "%zz"' "$(cat "$T/body")"
is "replacePath: ... with its newline (body bytes)" 25 "$(wc -c <"$T/body")"
is "replacePath: ... nosniff" nosniff "$(rh X-Content-Type-Options)"

# ---- replacePathRegex
is "replacePathRegex: 200" 200 "$(get rpr.test '/foo/x/y?q')"
is "replacePathRegex: ^/foo/(.*) -> /bar/\$1" "/bar/x/y?q" "$(seen)"
is "replacePathRegex: X-Replaced-Path" "/foo/x/y" "$(hv X-Replaced-Path)"
get rpr.test /nomatch >/dev/null
is "replacePathRegex: no match: unchanged" "/nomatch" "$(seen)"
is "replacePathRegex: no match: no X-Replaced-Path" "" "$(hv X-Replaced-Path)"
get rpr2.test /a/a/xa >/dev/null
is "replacePathRegex: unanchored, every match replaced" "/b/b/xa" "$(seen)"
get rpr3.test /abc/def >/dev/null
is "replacePathRegex: \$1x is the group named 1x (empty), \${2} the second" "//def" "$(seen)"
get rpr4.test /enc/y >/dev/null
is "replacePathRegex: a replacement with %2F is sent escaped" "/x%2Fy" "$(seen)"
is "replacePathRegex: an invalid escape produced -> 500" 500 "$(get rpr5.test /pct)"
is "replacePathRegex: ... Go's error text" 'invalid URL escape "%zz"' "$(cat "$T/body")"
get rpr6.test /n/42/rest >/dev/null
is "replacePathRegex: named group \${id} and \$\$" '/item/42/$/rest' "$(seen)"
get rpr7.test '/a%20b' >/dev/null
is "replacePathRegex: matched against the escaped path" "/a-b" "$(seen)"

# ---- redirectScheme
is "redirectScheme: GET -> 302" 302 "$(get rs.test:8080 '/p?q=1')"
is "redirectScheme: Location, default port dropped, query kept" "https://rs.test/p?q=1" "$(rh Location)"
is "redirectScheme: body is the status text" "Found" "$(cat "$T/body")"
is "redirectScheme: Content-Type" "text/plain; charset=utf-8" "$(rh Content-Type)"
is "redirectScheme: POST -> 307" 307 "$(get rs.test /p -X POST -d x)"
is "redirectScheme: 307 body" "Temporary Redirect" "$(cat "$T/body")"
is "redirectScheme: the backend got nothing" 0 "$(grep -cx 'POST /p' "$T/w1.log")"
get '[::1]:8080' /v6 >/dev/null
is "redirectScheme: an IPv6 host with a port keeps its brackets" "https://[::1]/v6" "$(rh Location)"
get '[::1]' /v6 >/dev/null
is "redirectScheme: an IPv6 host without a port" "https://[::1]/v6" "$(rh Location)"
is "redirectScheme permanent with port: GET -> 301" 301 "$(get rsp.test:80 /p)"
is "redirectScheme permanent: Location with the port" "https://rsp.test:8443/p" "$(rh Location)"
is "redirectScheme permanent: body" "Moved Permanently" "$(cat "$T/body")"
is "redirectScheme permanent: PUT -> 308" 308 "$(get rsp.test /p -X PUT -d x)"
is "redirectScheme permanent: 308 body" "Permanent Redirect" "$(cat "$T/body")"
is "redirectScheme permanent: HEAD -> 308" 308 "$(get rsp.test /p -I)"
is "redirectScheme: port given as a number" "https://rsnum.test:9443/" "$(get rsnum.test / >/dev/null; rh Location)"
is "redirectScheme: already http on port 80: passes (200)" 200 "$(get rs80.test:80 /here)"
is "redirectScheme: ... the backend got it" "/here" "$(seen)"
is "redirectScheme: http on :8080 to http:80 -> 302" 302 "$(get rs80.test:8080 /here)"
is "redirectScheme: ... Location" "http://rs80.test/here" "$(rh Location)"
# X-Forwarded-Proto is only believed from trusted peers
is "redirectScheme: forged X-Forwarded-Proto: https ignored (untrusted)" 302 \
  "$(get rs.test /p -H 'X-Forwarded-Proto: https')"
is "redirectScheme: trusted X-Forwarded-Proto: https -> already there (200)" 200 \
  "$(PORT=$TRUST get rs.test /p -H 'X-Forwarded-Proto: https')"
is "redirectScheme: trusted X-Forwarded-Proto: wss counts as https (200)" 200 \
  "$(PORT=$TRUST get rs.test /p -H 'X-Forwarded-Proto: wss')"
is "redirectScheme: trusted X-Forwarded-Proto: ws counts as http (302)" 302 \
  "$(PORT=$TRUST get rs.test /p -H 'X-Forwarded-Proto: ws')"
is "redirectScheme: trusted X-Forwarded-Proto: bar ignored (302)" 302 \
  "$(PORT=$TRUST get rs.test /p -H 'X-Forwarded-Proto: bar')"

# ---- redirectRegex
is "redirectRegex: GET -> 302" 302 "$(get rr.test:8080 '/old/x%2Fy?y=1')"
is "redirectRegex: Location from the full URL (escaped path, query)" \
  "http://rr.test/new/x%2Fy?y=1" "$(rh Location)"
is "redirectRegex: body" "Found" "$(cat "$T/body")"
is "redirectRegex: DELETE -> 307" 307 "$(get rr.test /old/z -X DELETE)"
is "redirectRegex: no match -> backend" 200 "$(get rr.test /other)"
is "redirectRegex: ... unchanged path" "/other" "$(seen)"
is "redirectRegex permanent: 301" 301 "$(get rrp.test /p/x)"
is "redirectRegex permanent: Location" "https://rrp.test/q/x" "$(rh Location)"
is "redirectRegex permanent: POST -> 308" 308 "$(get rrp.test /p -X POST -d a)"
is "redirectRegex: same URL -> backend" 200 "$(get rrsame.test '/s?t=1')"
is "redirectRegex: same URL: path and query unchanged" "/s?t=1" "$(seen)"
is "redirectRegex: a URL Go cannot parse -> 500" 500 "$(get rrbad.test /x)"
is "redirectRegex: ... body" "Internal Server Error" "$(cat "$T/body")"
is "redirectRegex: Location as Go writes it (scheme lower-cased, space escaped)" \
  "https://norm.test/a%20b/k" "$(get rrnorm.test /k >/dev/null; rh Location)"

# ---- chains, both orders
get cha.test '/api/x?k=v' >/dev/null
is "chain [stripPrefix /api, addPrefix /v2]: /api/x -> /v2/x" "/v2/x?k=v" "$(seen)"
is "chain [stripPrefix, addPrefix]: X-Forwarded-Prefix" "/api" "$(hv X-Forwarded-Prefix)"
get chb.test '/api/x?k=v' >/dev/null
is "chain [addPrefix /v2, stripPrefix /api]: /api/x -> /v2/api/x (nothing stripped)" \
  "/v2/api/x?k=v" "$(seen)"
is "chain [addPrefix, stripPrefix]: no X-Forwarded-Prefix" "" "$(hv X-Forwarded-Prefix)"
get chc.test /foo/x >/dev/null
is "chain [replacePathRegex, stripPrefix /bar]: /foo/x -> /bar/x -> /x" "/x" "$(seen)"
is "chain [replacePathRegex, stripPrefix]: X-Replaced-Path and X-Forwarded-Prefix" \
  "/foo/x|/bar" "$(hv X-Replaced-Path)|$(hv X-Forwarded-Prefix)"
get chd.test /foo/x >/dev/null
is "chain [stripPrefix /bar, replacePathRegex]: /foo/x -> /bar/x" "/bar/x" "$(seen)"
is "chain [stripPrefix, replacePathRegex]: only X-Replaced-Path" \
  "/foo/x|" "$(hv X-Replaced-Path)|$(hv X-Forwarded-Prefix)"
is "chain [stripPrefix, redirectRegex]: the redirect sees the stripped path" 302 "$(get che.test /api/x)"
is "chain [stripPrefix, redirectRegex]: Location" "http://other.test/y" "$(rh Location)"

# ---- bad options: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad'
ok "addPrefix: empty prefix" wait_log "middleware bad1@file disabled: ${P}1@file\.addPrefix\.prefix: prefix cannot be empty"
ok "addPrefix: unknown option" wait_log "middleware bad2@file disabled: ${P}2@file\.addPrefix\.prefx: unknown option"
ok "stripPrefix: prefixes not a list" wait_log "middleware bad3@file disabled: ${P}3@file\.stripPrefix\.prefixes: expected a list of strings"
ok "stripPrefixRegex: the bad expression named by its index" wait_log "middleware bad4@file disabled: ${P}4@file\.stripPrefixRegex\.regex(\[1\]|\.1): invalid regexp"
ok "replacePathRegex: regex required" wait_log "middleware bad5@file disabled: ${P}5@file\.replacePathRegex\.regex: required"
ok "redirectScheme: scheme required" wait_log "middleware bad6@file disabled: ${P}6@file\.redirectScheme\.scheme: you must provide a target scheme"
ok "redirectRegex: regex does not compile" wait_log "middleware bad7@file disabled: ${P}7@file\.redirectRegex\.regex: invalid regexp"
ok "redirectRegex: replacement required" wait_log "middleware bad8@file disabled: ${P}8@file\.redirectRegex\.replacement: required"
ok "stripPrefix: forceSlash not a bool" wait_log "middleware bad9@file disabled: ${P}9@file\.stripPrefix\.forceSlash: "
for i in 1 2 3 4 5 6 7 8 9; do
  is "bad$i.test not served (router disabled)" 404 "$(get bad$i.test /)"
done
is "the good routers still serve" 200 "$(get ap.test /)"
t_done
