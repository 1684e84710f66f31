#!/usr/bin/env bash
# The basicAuth middleware (plugin basicauth.so) in front of whoami.
# Hashes made with the real tools: htpasswd (apache2-utils: bcrypt $2y$,
# apr1, {SHA}), openssl passwd (-apr1, -1, -5, -6), python3 hashlib ({SHA})
# and $2a$/$2b$ spellings of the bcrypt hash (same digest for ASCII
# passwords).  Checks: every kind of hash logs in and fails with a wrong
# password; unknown user; the exact 401 (status, WWW-Authenticate, body
# bytes); realm; headerField (forged copies replaced); removeHeader;
# users + usersFile merged as Traefik merges them (file lines first, the
# users list wins for the same name; comments, blanks, CRLF, spaces
# trimmed); malformed Authorization headers are 401s and relais survives;
# config errors disable the middleware with the key path (usersFile
# missing, malformed entries, wrong types, unknown option) without printing
# a secret; the DEBUG log never holds a password, a hash or a credential.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $BASICAUTH_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }
command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v htpasswd >/dev/null || { echo "Bail out! htpasswd not installed (Debian: apache2-utils)"; exit 1; }

plugin_dir_own ${BASICAUTH_SO:+"$BASICAUTH_SO"}
[ -e "$PLUGIN_DIR/basicauth.so" ] ||
  { echo "Bail out! no basicauth.so in $RELAIS_PLUGIN_DIR (or BASICAUTH_SO)"; exit 1; }

# ---- users and hashes (name, password, hash), every one made by a tool
hp() { htpasswd -nb "$@" | head -1 | cut -d: -f2-; }   # hp [-B -C 5|-m|-s] USER PW
P_BCRYPT='bcrypt pw!'; H_BCRYPT=$(hp -B -C 5 u "$P_BCRYPT")
P_BC10='cost ten';     H_BC10=$(hp -B u "$P_BC10")
H_BC2A="\$2a\$${H_BCRYPT#\$2y\$}"; H_BC2B="\$2b\$${H_BCRYPT#\$2y\$}"
P_APR='apr1 secret';   H_APR=$(hp -m u "$P_APR")
P_APRO='openssl apr';  H_APRO=$(openssl passwd -apr1 "$P_APRO")
P_MD5='md5 crypt';     H_MD5=$(openssl passwd -1 "$P_MD5")
P_SHA='sha secret';    H_SHA=$(hp -s u "$P_SHA")
P_SHAPY='py sha:colon';H_SHAPY=$(python3 -c 'import base64,hashlib,sys; print("{SHA}"+base64.b64encode(hashlib.sha1(sys.argv[1].encode()).digest()).decode())' "$P_SHAPY")
P_S256='sha256crypt';  H_S256=$(openssl passwd -5 "$P_S256")
P_S512='sha512crypt';  H_S512=$(openssl passwd -6 "$P_S512")
P_FILE='from the file';H_FILE=$(hp -B -C 5 u "$P_FILE")
P_OVER='inline wins';  H_OVER=$(hp -m u "$P_OVER")
P_LOST='file loses';   H_LOST=$(hp -m u "$P_LOST")
P_CRLF='crlf line';    H_CRLF=$(hp -s u "$P_CRLF")
for h in "$H_BCRYPT" "$H_BC10" "$H_APR" "$H_APRO" "$H_MD5" "$H_SHA" "$H_SHAPY" "$H_S256" "$H_S512" "$H_FILE"; do
  [ -n "$h" ] || { echo "Bail out! a hash tool failed"; exit 1; }
done
case $H_BCRYPT in '$2y$05$'*) ;; *) echo "Bail out! htpasswd -B gave $H_BCRYPT"; exit 1;; esac
case $H_APR in '$apr1$'*) ;; *) echo "Bail out! htpasswd -m gave $H_APR"; exit 1;; esac
case $H_SHA in '{SHA}'*) ;; *) echo "Bail out! htpasswd -s gave $H_SHA"; exit 1;; esac

# the users file: comments, blank lines, surrounding spaces, a CRLF line
{
  printf '# relais test users\n\n'
  printf '   filer:%s   \n' "$H_FILE"
  printf 'over:%s\n' "$H_LOST"
  printf '\t# indented comment\n'
  printf 'crlf:%s\r\n' "$H_CRLF"
  printf 'apr:%s' "$H_APR"          # no final newline
} >"$T/htpasswd"
printf 'ok:%s\nbroken line without colon\nalso:%s\n' "$H_APR" "$H_SHA" >"$T/htpasswd.bad"

# ---- relais
start_whoami w1; P1=$WHOAMI_PORT
WEB=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    all:    {rule: Host(\`all.test\`),    service: s, middlewares: [all]}
    file:   {rule: Host(\`file.test\`),   service: s, middlewares: [file]}
    hdr:    {rule: Host(\`hdr.test\`),    service: s, middlewares: [hdr]}
    open:   {rule: Host(\`open.test\`),   service: s}
    badr1:  {rule: Host(\`bad1.test\`),   service: s, middlewares: [bad1]}
    badr2:  {rule: Host(\`bad2.test\`),   service: s, middlewares: [bad2]}
    badr3:  {rule: Host(\`bad3.test\`),   service: s, middlewares: [bad3]}
    badr4:  {rule: Host(\`bad4.test\`),   service: s, middlewares: [bad4]}
    badr5:  {rule: Host(\`bad5.test\`),   service: s, middlewares: [bad5]}
    badr6:  {rule: Host(\`bad6.test\`),   service: s, middlewares: [bad6]}
  middlewares:
    all:
      basicAuth:
        users:
          - 'bcrypt:$H_BCRYPT'
          - 'bc10:$H_BC10'
          - 'bc2a:$H_BC2A'
          - 'bc2b:$H_BC2B'
          - 'apr:$H_APR'
          - 'apro:$H_APRO'
          - 'md5:$H_MD5'
          - 'sha:$H_SHA'
          - 'shapy:$H_SHAPY'
          - 'sha256:$H_S256'
          - 'sha512:$H_S512'
          - 'plain:plaintext'
          - 'empty:'
    file:
      basicAuth:
        usersFile: "$T/htpasswd"
        users: ['over:$H_OVER']
        realm: "Relais Land"
    hdr:
      basicAuth:
        users: ['apr:$H_APR']
        headerField: X-WebAuth-User
        removeHeader: true
    bad1: {basicAuth: {usersFile: "$T/no-such-htpasswd"}}
    bad2: {basicAuth: {users: ['ok:$H_APR', 'nocolon', 'a:b:c']}}
    bad3: {basicAuth: {users: 'apr:$H_APR'}}
    bad4: {basicAuth: {users: ['apr:$H_APR'], removeHeader: maybe, headerfeld: X}}
    bad5: {basicAuth: {usersFile: "$T/htpasswd.bad"}}
    bad6: {basicAuth: {users: ['apr:$H_APR'], realm: 'say "hi"', headerField: 'Bad Header'}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
static_config "$T/relais.yaml" "$WEB" "$DYN"
start_relais "$T/relais.yaml" "$WEB"
wait_log "configuration 2 applied" || wait_log "configuration [0-9]+ applied" ||
  { echo "Bail out! no configuration"; exit 1; }

# req HOST [CURL-ARGS...]: GET http://HOST/ through relais; headers in
# $T/h, body in $T/body; prints the status
req() {
  local host=$1; shift
  curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 10 \
    -H "Host: $host" "$@" "http://127.0.0.1:$WEB/"
}
# hdr NAME: the value of response header NAME (case-insensitive), CR removed
hdr() { tr -d '\r' <"$T/h" | sed -n "s/^$1: //Ip" | head -1; }
# echoed NAME: the value of request header NAME as whoami received it
echoed() { sed -n "s/^$1: //p" "$T/body"; }
# b64 TEXT: base64 of TEXT (no newline)
b64() { printf '%s' "$1" | base64 -w0; }

# ---- every kind of hash
for spec in "bcrypt|$P_BCRYPT|bcrypt \$2y\$ (htpasswd -B -C 5)" \
            "bc10|$P_BC10|bcrypt \$2y\$ cost 10 (htpasswd -B)" \
            "bc2a|$P_BCRYPT|bcrypt \$2a\$" "bc2b|$P_BCRYPT|bcrypt \$2b\$" \
            "apr|$P_APR|apr1 (htpasswd -m)" "apro|$P_APRO|apr1 (openssl passwd -apr1)" \
            "md5|$P_MD5|MD5-crypt \$1\$ (openssl passwd -1)" \
            "sha|$P_SHA|{SHA} (htpasswd -s)" "shapy|$P_SHAPY|{SHA} (python hashlib), ':' in the password" \
            "sha256|$P_S256|SHA-crypt \$5\$" "sha512|$P_S512|SHA-crypt \$6\$"; do
  IFS='|' read -r u pw what <<<"$spec"
  is "$what: right password -> 200" 200 "$(req all.test -u "$u:$pw")"
  is "$what: Authorization passed upstream (no removeHeader)" "Basic $(b64 "$u:$pw")" "$(echoed Authorization)"
  is "$what: wrong password -> 401" 401 "$(req all.test -u "$u:${pw}x")"
done
is "a plain-text entry never matches (Traefik needs a hash) -> 401" 401 "$(req all.test -u plain:plaintext)"
is "an empty hash never matches -> 401" 401 "$(req all.test -u empty:)"
is "unknown user -> 401" 401 "$(req all.test -u nobody:"$P_APR")"
is "user names are case-sensitive -> 401" 401 "$(req all.test -u APR:"$P_APR")"
is "password of another user -> 401" 401 "$(req all.test -u apr:"$P_SHA")"

# ---- the exact 401
is "no Authorization -> 401" 401 "$(req all.test)"
is "401: WWW-Authenticate with the default realm" 'Basic realm="traefik"' "$(hdr WWW-Authenticate)"
is "401: Content-Type text/plain" 'text/plain' "$(hdr Content-Type)"
is "401: body bytes" "$(printf '401 Unauthorized\n' | od -An -c)" "$(od -An -c <"$T/body")"
is "401: Content-Length 17" 17 "$(hdr Content-Length)"
is "401: one WWW-Authenticate header" 1 "$(grep -ci '^WWW-Authenticate:' "$T/h")"
is "401 on a wrong password: same challenge" 'Basic realm="traefik"' \
  "$(req all.test -u apr:nope >/dev/null; hdr WWW-Authenticate)"
is "custom realm in the challenge" 'Basic realm="Relais Land"' \
  "$(req file.test >/dev/null; hdr WWW-Authenticate)"
is "a route without the middleware is open" 200 "$(req open.test)"

# ---- malformed Authorization headers: 401, never a crash
for a in 'Basic' 'Basic ' 'Basic !!!!' "Basic $(b64 apr)" "Basic $(b64 "sha:$P_SHA" | tr -d =)" \
         "Basic  $(b64 "apr:$P_APR")" "Bearer $(b64 "apr:$P_APR")" "Digest username=\"apr\"" \
         "$(b64 "apr:$P_APR")" "Basic $(b64 "apr:$P_APR")=" "Basic =$(b64 "apr:$P_APR")" \
         "Basic $(head -c 6000 /dev/zero | tr '\0' A)" "Basic $(printf 'apr:%s\0x' "$P_APR" | base64 -w0)" \
         "Basic $(b64 ':')" "Basic $(b64 ':::')" "Basic ====" "Basic A==="; do
  is "malformed: '${a:0:40}' -> 401" 401 "$(req all.test -H "Authorization: $a")"
done
is "scheme is case-insensitive (Go's BasicAuth): 'basic ...' -> 200" 200 \
  "$(req all.test -H "Authorization: basic $(b64 "apr:$P_APR")")"
is "the first Authorization header counts (a good second one does not)" 401 \
  "$(req all.test -H 'Authorization: Basic Zm9vOmJhcg==' -H "Authorization: Basic $(b64 "apr:$P_APR")")"
ok "relais still alive after the malformed headers" kill -0 "$RELAIS_PID"

# ---- usersFile merged with users
is "usersFile: bcrypt user (line with spaces around) -> 200" 200 "$(req file.test -u filer:"$P_FILE")"
is "usersFile: CRLF line -> 200" 200 "$(req file.test -u crlf:"$P_CRLF")"
is "usersFile: last line without newline -> 200" 200 "$(req file.test -u apr:"$P_APR")"
is "users and usersFile: the users list wins for the same name (Traefik's map order)" 200 \
  "$(req file.test -u over:"$P_OVER")"
is "users and usersFile: the file's entry for that name is replaced" 401 "$(req file.test -u over:"$P_LOST")"
is "usersFile: a comment line is no user" 401 "$(req file.test -u '# relais test users':x)"

# ---- headerField and removeHeader
is "headerField: 200" 200 "$(req hdr.test -u apr:"$P_APR" -H 'X-WebAuth-User: forged' -H 'x-webauth-user: forged2')"
is "headerField: X-WebAuth-User is the user, forged copies gone" "apr" "$(echoed X-WebAuth-User)"
is "headerField: exactly one such header upstream" 1 "$(grep -ci '^x-webauth-user:' "$T/body")"
is "removeHeader: no Authorization upstream" 0 "$(grep -ci '^authorization:' "$T/body")"
ok "removeHeader: the other headers still pass" grep -q '^User-Agent: curl' "$T/body"
is "headerField on failure: nothing reaches whoami" 401 "$(req hdr.test -u apr:bad -H 'X-WebAuth-User: forged')"

# ---- config errors: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad[0-9]@file\.basicAuth'
ok "usersFile missing -> error naming usersFile and the path" \
  wait_log "middleware bad1@file disabled: ${P/\[0-9\]/1}\.usersFile: cannot open $T/no-such-htpasswd"
ok "users entry without ':' -> users[1]" \
  wait_log "middleware bad2@file disabled: ${P/\[0-9\]/2}\.users\[1\]: expected \"name:hash\""
ok "users entry with two ':' -> users[2]" \
  wait_log "middleware bad2@file disabled: ${P/\[0-9\]/2}\.users\[2\]: expected"
ok "users not a list -> expected a list" \
  wait_log "middleware bad3@file disabled: ${P/\[0-9\]/3}\.users: expected a list"
ok "removeHeader: maybe -> wrong type with its key path" \
  wait_log "middleware bad4@file disabled: ${P/\[0-9\]/4}\.removeHeader: "
ok "unknown option -> named" \
  wait_log "middleware bad4@file disabled: ${P/\[0-9\]/4}\.headerfeld: unknown option"
ok "malformed usersFile line -> file and line number" \
  wait_log "middleware bad5@file disabled: ${P/\[0-9\]/5}\.usersFile: $T/htpasswd.bad line 2: expected name:hash"
ok "realm with '\"' -> refused" \
  wait_log "middleware bad6@file disabled: ${P/\[0-9\]/6}\.realm: "
ok "headerField not a header name -> refused" \
  wait_log "middleware bad6@file disabled: ${P/\[0-9\]/6}\.headerField: not a valid header name"
for i in 1 2 3 4 5 6; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(req bad$i.test -u apr:"$P_APR")"
done
ok "the good routers still serve" test "$(req all.test -u apr:"$P_APR")" = 200
ok "the malformed line's content is not in the log" sh -c "! grep -q 'broken line' '$T/relais.log'"

# ---- no secret in the DEBUG log
ok "DEBUG lines of the middleware are there (failures and successes)" \
  sh -c "grep -q 'authentication failed' '$T/relais.log' && grep -q 'authentication succeeded for user apr' '$T/relais.log'"
leak=
for s in "$P_BCRYPT" "$P_BC10" "$P_APR" "$P_APRO" "$P_MD5" "$P_SHA" "$P_SHAPY" "$P_S256" "$P_S512" \
         "$P_FILE" "$P_OVER" "$P_LOST" "$P_CRLF" \
         "$H_BCRYPT" "$H_BC10" "$H_BC2A" "$H_BC2B" "$H_APR" "$H_APRO" "$H_MD5" "$H_SHA" "$H_SHAPY" \
         "$H_S256" "$H_S512" "$H_FILE" "$H_OVER" "$H_LOST" "$H_CRLF" \
         "${H_BCRYPT:29}" "${H_APR:15}" "${H_SHA:5}" \
         "$(b64 "apr:$P_APR")" "$(b64 "bcrypt:$P_BCRYPT")" "$(b64 "apr:${P_APR}x")" "Zm9vOmJhcg==" \
         "Authorization"; do
  grep -qF -- "$s" "$T/relais.log" && leak="$leak [$s]"
done
is "the log holds no password, hash, credential or Authorization header" "" "$leak"
t_done
