#!/usr/bin/env bash
# The digestAuth middleware (plugin digestauth.so) in front of whoami.
# Users made by the real htdigest(1) (apache2-utils; driven on a
# pseudo-terminal since it reads the password from the terminal) and
# checked against python3 hashlib; logins by curl --digest (a real client)
# and by a hand-written python client that builds right and wrong
# responses: the exact challenge format (realm, 16-character nonce, opaque
# stable per instance, algorithm="MD5", qop="auth"), nonce counts (a replay
# or an old nc is stale=true, a growing nc passes), unknown nonces (stale),
# forgotten nonces after 1100 newer challenges, wrong opaque / algorithm /
# qop / uri / response, the uri prefix leniency of go-http-auth, absolute
# URIs, the "empty HA1" forgery for unknown users, malformed headers (401,
# never a crash), users of another realm, headerField and removeHeader,
# config errors with their key paths, and no secret in the DEBUG log.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $DIGESTAUTH_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }
command -v htdigest >/dev/null || { echo "Bail out! htdigest not installed (Debian: apache2-utils)"; exit 1; }

plugin_dir_own ${DIGESTAUTH_SO:+"$DIGESTAUTH_SO"}
[ -e "$PLUGIN_DIR/digestauth.so" ] ||
  { echo "Bail out! no digestauth.so in $RELAIS_PLUGIN_DIR (or DIGESTAUTH_SO)"; exit 1; }

# ---- htdigest on a pseudo-terminal
cat >"$T/htdigest_pty.py" <<'PY'
"""htdigest_pty.py FILE REALM USER PASSWORD: runs htdigest(1) on a
pseudo-terminal (it reads the password there) to add USER to FILE."""
import os, pty, sys, time
f, realm, user, pw = sys.argv[1:5]
args = ["htdigest"] + ([] if os.path.exists(f) else ["-c"]) + [f, realm, user]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("htdigest", args)
out, sent, deadline = b"", 0, time.time() + 10
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    while sent < 2 and out.count(b"password:") > sent:
        os.write(fd, pw.encode() + b"\n")
        sent += 1
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
PY
P_ALICE='alice pw'; P_BOB='bob:pw'; P_CAROL='carol pw'; P_DAVE='dave pw'; P_ERIN='erin pw'
python3 "$T/htdigest_pty.py" "$T/htdigest" traefik alice "$P_ALICE" >/dev/null &&
python3 "$T/htdigest_pty.py" "$T/htdigest" traefik bob "$P_BOB" >/dev/null &&
python3 "$T/htdigest_pty.py" "$T/htdigest" elsewhere carol "$P_CAROL" >/dev/null &&
python3 "$T/htdigest_pty.py" "$T/htdigest" 'Relais Land' dave "$P_DAVE" >/dev/null ||
  { echo "Bail out! htdigest failed"; exit 1; }
ha1() { printf '%s' "$1:$2:$3" | python3 -c 'import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())'; }
H_ALICE=$(ha1 alice traefik "$P_ALICE"); H_BOB=$(ha1 bob traefik "$P_BOB")
H_CAROL=$(ha1 carol elsewhere "$P_CAROL"); H_DAVE=$(ha1 dave 'Relais Land' "$P_DAVE")
H_ERIN=$(ha1 erin traefik "$P_ERIN")
is "htdigest wrote name:realm:HA1 lines, HA1 = MD5(name:realm:password)" \
  "alice:traefik:$H_ALICE bob:traefik:$H_BOB carol:elsewhere:$H_CAROL dave:Relais Land:$H_DAVE" \
  "$(paste -sd' ' "$T/htdigest")"
{ printf '# digest users\n\n'; cat "$T/htdigest"; } >"$T/htdigest.users"
printf 'ok:traefik:%s\njust:two\n' "$H_ALICE" >"$T/htdigest.bad"

# ---- relais
start_whoami w1; P1=$WHOAMI_PORT
WEB=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    d:     {rule: Host(\`d.test\`),     service: s, middlewares: [dg]}
    land:  {rule: Host(\`land.test\`),  service: s, middlewares: [land]}
    hdr:   {rule: Host(\`hdr.test\`),   service: s, middlewares: [hdr]}
    badr1: {rule: Host(\`bad1.test\`),  service: s, middlewares: [bad1]}
    badr2: {rule: Host(\`bad2.test\`),  service: s, middlewares: [bad2]}
    badr3: {rule: Host(\`bad3.test\`),  service: s, middlewares: [bad3]}
    badr4: {rule: Host(\`bad4.test\`),  service: s, middlewares: [bad4]}
  middlewares:
    dg:
      digestAuth:
        usersFile: "$T/htdigest.users"
        users: ['erin:traefik:$H_ERIN']
    land:
      digestAuth:
        usersFile: "$T/htdigest.users"
        realm: Relais Land
    hdr:
      digestAuth:
        users: ['alice:traefik:$H_ALICE']
        headerField: X-WebAuth-User
        removeHeader: true
    bad1: {digestAuth: {usersFile: "$T/no-such-htdigest"}}
    bad2: {digestAuth: {users: ['alice:$H_ALICE']}}
    bad3: {digestAuth: {usersFile: "$T/htdigest.bad", removeHeader: 7}}
    bad4: {digestAuth: {users: ['alice:traefik:$H_ALICE'], opaque: x}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
static_config "$T/relais.yaml" "$WEB" "$DYN"
start_relais "$T/relais.yaml" "$WEB"
wait_log "configuration [0-9]+ applied" || { echo "Bail out! no configuration"; exit 1; }

# curl_digest HOST USER PW [CURL-ARGS...]: curl --digest; headers in $T/h
# (both responses), body in $T/body; prints the last status
curl_digest() {
  local host=$1 u=$2 pw=$3; shift 3
  curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 10 --digest -u "$u:$pw" \
    -H "Host: $host" "$@" "http://127.0.0.1:$WEB/some/path?x=1"
}
echoed() { sed -n "s/^$1: //p" "$T/body"; }

# ---- a real client
is "curl --digest, right password -> 200" 200 "$(curl_digest d.test alice "$P_ALICE")"
is "curl --digest: the first answer was the 401 challenge" 2 "$(grep -c '^HTTP/' "$T/h")"
like "curl --digest: upstream got the Digest Authorization (no removeHeader)" \
  '^Digest username="alice", realm="traefik", nonce="[A-Za-z0-9+/]{16}", uri="/some/path\?x=1", ' \
  "$(echoed Authorization)"
is "curl --digest, ':' in the password -> 200" 200 "$(curl_digest d.test bob "$P_BOB")"
is "curl --digest, user from the users list (merged with usersFile) -> 200" 200 "$(curl_digest d.test erin "$P_ERIN")"
is "curl --digest, wrong password -> 401" 401 "$(curl_digest d.test alice "${P_ALICE}x")"
is "curl --digest, unknown user -> 401" 401 "$(curl_digest d.test mallory "$P_ALICE")"
is "curl --digest, user of another realm -> 401" 401 "$(curl_digest d.test carol "$P_CAROL")"
is "curl --digest, POST -> 200" 200 "$(curl_digest d.test alice "$P_ALICE" -d 'a=b')"
is "curl --digest, custom realm, user of that realm -> 200" 200 "$(curl_digest land.test dave "$P_DAVE")"
is "curl --digest, custom realm, user of realm traefik -> 401" 401 "$(curl_digest land.test alice "$P_ALICE")"
is "headerField/removeHeader: 200" 200 "$(curl_digest hdr.test alice "$P_ALICE" -H 'X-WebAuth-User: forged')"
is "headerField: the user name, forged copy replaced" alice "$(echoed X-WebAuth-User)"
is "removeHeader: no Authorization upstream" 0 "$(grep -ci '^authorization:' "$T/body")"

# ---- the hand-made client
cat >"$T/dclient.py" <<'PY'
"""dclient.py PORT HOST SCRIPT: runs digest exchanges against relais on one
keep-alive connection and prints one result line per step.  Steps (one per
line of SCRIPT, fields separated by '|'):
  challenge                      GET / without credentials: remember nonce
                                 and opaque; print 'STATUS HEADER-VALUE'
  auth USER|PW|NC|OVERRIDES...   answer the last challenge with nonce count
                                 NC (hex text); OVERRIDES are key=value
                                 (raw= replaces the whole header, path=,
                                 uri=, method= (hashed and sent),
                                 sendmethod= (sent only), omit=KEY,
                                 ha1=HEX, nonce=, qop=, cnonce=; any other
                                 key replaces that parameter as written);
                                 print 'STATUS stale' or 'STATUS -'
  save / restore                 keep / bring back the current challenge
  flood N                        N challenges, results not kept
"""
import hashlib, http.client, re, sys

port, host, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
state, saved = {}, {}

def md5(s):
    return hashlib.md5(s.encode()).hexdigest()

def get(path, headers, method="GET"):
    global conn
    for attempt in (1, 2):
        try:
            h = {"Host": host}
            h.update(headers)
            conn.request(method, path, headers=h)
            r = conn.getresponse()
            body = r.read()
            return r.status, r.getheader("WWW-Authenticate") or "", body
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    raise SystemExit("connection failed")

def challenge():
    st, www, body = get("/", {})
    m = dict(re.findall(r'(\w+)="([^"]*)"', www))
    state.update(nonce=m.get("nonce"), opaque=m.get("opaque"), realm=m.get("realm"))
    return st, www, body

for line in script.strip().splitlines():
    f = line.strip().split("|")
    if f[0] == "challenge":
        st, www, body = challenge()
        print(st, www, body.decode().replace("\n", "\\n"))
    elif f[0] == "save":
        saved = dict(state)
    elif f[0] == "restore":
        state = dict(saved)
    elif f[0] == "flood":
        for _ in range(int(f[1])):
            challenge()
    elif f[0] == "auth":
        user, pw, nc = f[1], f[2], f[3]
        o = dict(kv.split("=", 1) for kv in f[4:])
        method = o.pop("method", "GET")
        send_method = o.pop("sendmethod", method)
        path = o.pop("path", "/p/q?r=s")
        uri = o.pop("uri", path)
        nonce = o.pop("nonce", state["nonce"])
        realm = state["realm"]
        ha1 = o.pop("ha1", md5("%s:%s:%s" % (user, realm, pw)))
        cnonce = o.pop("cnonce", "0a4f113b")
        qop = o.pop("qop", "auth")
        resp = md5(":".join([ha1, nonce, nc, cnonce, qop, md5(method + ":" + uri)]))
        p = {"username": '"%s"' % user, "realm": '"%s"' % realm, "nonce": '"%s"' % nonce,
             "uri": '"%s"' % uri, "algorithm": "MD5", "qop": qop, "nc": nc,
             "cnonce": '"%s"' % cnonce, "response": '"%s"' % resp,
             "opaque": '"%s"' % state["opaque"]}
        raw = o.pop("raw", None)
        for k in [k for k in o if k.startswith("omit")]:
            p.pop(o.pop(k), None)
        p.update(o)
        value = raw if raw is not None else "Digest " + ", ".join("%s=%s" % kv for kv in p.items())
        st, www, _ = get(path, {"Authorization": value}, send_method)
        print(st, "stale" if "stale=true" in www else "-")
PY
# dc HOST SCRIPT: runs the python client, prints its result lines
dc() { python3 "$T/dclient.py" "$WEB" "$1" "$2"; }

out=$(dc d.test 'challenge
challenge')
c1=$(sed -n 1p <<<"$out"); c2=$(sed -n 2p <<<"$out")
like "challenge: 401, exact WWW-Authenticate format" \
  '^401 Digest realm="traefik", nonce="[A-Za-z0-9+/]{16}", opaque="[A-Za-z0-9+/]{16}", algorithm="MD5", qop="auth" 401 Unauthorized\\n$' "$c1"
n1=$(sed -E 's/.*nonce="([^"]*)".*/\1/' <<<"$c1"); n2=$(sed -E 's/.*nonce="([^"]*)".*/\1/' <<<"$c2")
o1=$(sed -E 's/.*opaque="([^"]*)".*/\1/' <<<"$c1"); o2=$(sed -E 's/.*opaque="([^"]*)".*/\1/' <<<"$c2")
ok "challenge: a new nonce every time" test "$n1" != "$n2"
is "challenge: the same opaque for the instance" "$o1" "$o2"
like "custom realm in the challenge" '^401 Digest realm="Relais Land", ' "$(dc land.test challenge)"
c=$(curl -s -D - -o "$T/body" --max-time 5 -H 'Host: d.test' "http://127.0.0.1:$WEB/")
is "401: Content-Type text/plain" "text/plain" "$(tr -d '\r' <<<"$c" | sed -n 's/^Content-Type: //Ip')"
is "401: body bytes" "$(printf '401 Unauthorized\n' | od -An -c)" "$(od -An -c <"$T/body")"
is "401: one WWW-Authenticate header" 1 "$(grep -ci '^WWW-Authenticate:' <<<"$c")"

A="auth|alice|$P_ALICE"
is "nonce counts: 1 ok, 1 again stale, 2 ok, 5 ok, 3 stale, 6 ok" \
  "200 - 401 stale 200 - 200 - 401 stale 200 -" \
  "$(dc d.test "challenge
$A|00000001
$A|00000001
$A|00000002
$A|00000005
$A|00000003
$A|00000006" | sed 1d | paste -sd' ')"
is "a nonce of another challenge stays valid while newer ones are made" \
  "200 - 200 - 200 -" \
  "$(dc d.test "challenge
save
challenge
$A|00000001
restore
$A|00000001
$A|0000000a" | sed -n '3,$p' | paste -sd' ')"
is "unknown nonce with a right response -> 401 stale=true" "401 stale" \
  "$(dc d.test "challenge
$A|00000001|nonce=AAAAAAAAAAAAAAAAAAAAAAAA" | tail -1)"
is "nonce forgotten after 1100 newer challenges -> stale; a recent one works" "401 stale 200 -" \
  "$(dc d.test "challenge
save
flood|1100
restore
$A|00000001
challenge
$A|00000001" | sed -n '2p;4p' | paste -sd' ')"
is "wrong password -> 401 (not stale)" "401 -" "$(dc d.test "challenge
auth|alice|nope|00000001" | tail -1)"
is "wrong password on a replayed nc -> 401 (not stale: the crypto fails first)" "401 -" \
  "$(dc d.test "challenge
$A|00000001
auth|alice|nope|00000001" | tail -1)"
for spec in 'opaque="AAAAAAAAAAAAAAAA"#wrong opaque' 'omit=opaque#no opaque' \
            'algorithm=SHA-256#algorithm SHA-256' 'algorithm=md5#algorithm md5 (case-sensitive)' \
            'qop=auth-int#qop auth-int' 'omit=qop#no qop' 'omit=nc#no nc' \
            'uri=/other#uri of another path' 'path=/p|uri=/p/q#uri longer than the path' \
            'response="00000000000000000000000000000000"#wrong response' 'omit=response#no response' \
            'omit=username#no username' 'omit=nonce#no nonce' 'sendmethod=POST#response for GET sent with POST'; do
  what=${spec#*#}; ov=${spec%%#*}
  is "$what -> 401" "401 -" "$(dc d.test "challenge
$A|00000001|$ov" | tail -1)"
done
is "nc not hexadecimal -> 401" "401 -" "$(dc d.test "challenge
$A|zz" | tail -1)"
is "nc 0 -> 401" "401 -" "$(dc d.test "challenge
$A|00000000" | tail -1)"
is "nc beyond 64 bits -> 401" "401 -" "$(dc d.test "challenge
$A|10000000000000001" | tail -1)"
is "no algorithm (taken as MD5) -> 200" "200 -" "$(dc d.test "challenge
$A|00000001|omit=algorithm" | tail -1)"
is "uri a path prefix of the request (go-http-auth leniency) -> 200" "200 -" \
  "$(dc d.test "challenge
$A|00000001|path=/p/q/r|uri=/p/q" | tail -1)"
is "uri with another query: its path is still a prefix (go-http-auth) -> 200" "200 -" \
  "$(dc d.test "challenge
$A|00000001|path=/p/q?r=t|uri=/p/q?r=s" | tail -1)"
is "absolute uri -> 200" "200 -" "$(dc d.test "challenge
$A|00000001|path=/p/q?r=s|uri=http://d.test/p/q?r=s" | tail -1)"
is "uppercase hex nc -> 200" "200 -" "$(dc d.test "challenge
$A|0000000A" | tail -1)"
is "unknown user with an empty HA1 (go-http-auth forgery) -> 401" "401 -" \
  "$(dc d.test "challenge
auth|mallory|x|00000001|ha1=" | tail -1)"
is "user of another realm with its own HA1 -> 401" "401 -" \
  "$(dc d.test "challenge
auth|carol|x|00000001|ha1=$H_CAROL" | tail -1)"

# ---- concurrent logins (both worker threads share the nonce table)
cpids=()
for i in $(seq 1 24); do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --digest -u "alice:$P_ALICE" \
    -H 'Host: d.test' "http://127.0.0.1:$WEB/c/$i" >"$T/par.$i" &
  cpids+=($!)
done
wait "${cpids[@]}"   # only the curls: relais and whoami are jobs too
is "24 concurrent curl --digest logins -> 24 times 200" "24 200" \
  "$(cat "$T"/par.* | sort | uniq -c | sed 's/^ *//')"

# ---- malformed headers: 401, never a crash
res=$(dc d.test "challenge
auth|a|b|1|raw=Digest
auth|a|b|1|raw=Digest 
auth|a|b|1|raw=digest username=\"alice\"
auth|a|b|1|raw=Digest ,,,,,
auth|a|b|1|raw=Digest username=\"
auth|a|b|1|raw=Digest username=\"alice\\\", nonce=\"x
auth|a|b|1|raw=Digest nonce=, nc=, uri=, response=, opaque=
auth|a|b|1|raw=Digest =, ==, =\", \"=\"
auth|a|b|1|raw=Digest username=\"$(head -c 6000 /dev/zero | tr '\0' a)\"
auth|a|b|1|raw=Basic YWxpY2U6YWxpY2UgcHc=
auth|a|b|1|raw=Digest \\\\\\\"\\\"" | sed 1d | cut -d' ' -f1 | sort | uniq -c | sed 's/^ *//')
is "11 malformed Authorization headers -> 11 times 401" "11 401" "$res"
ok "relais still alive after the malformed headers" kill -0 "$RELAIS_PID"
is "and still authenticates" 200 "$(curl_digest d.test alice "$P_ALICE")"

# ---- config errors
P='http\.middlewares\.bad[0-9]@file\.digestAuth'
ok "usersFile missing -> error naming usersFile" \
  wait_log "middleware bad1@file disabled: ${P/\[0-9\]/1}\.usersFile: cannot open $T/no-such-htdigest"
ok "users entry of two parts -> users[0]: expected name:realm:HA1" \
  wait_log "middleware bad2@file disabled: ${P/\[0-9\]/2}\.users\[0\]: expected \"name:realm:HA1\""
ok "malformed usersFile line -> line number" \
  wait_log "middleware bad3@file disabled: ${P/\[0-9\]/3}\.usersFile: $T/htdigest.bad line 2: expected name:realm:HA1"
ok "removeHeader: 7 -> wrong type" wait_log "middleware bad3@file disabled: ${P/\[0-9\]/3}\.removeHeader: "
ok "unknown option -> named" wait_log "middleware bad4@file disabled: ${P/\[0-9\]/4}\.opaque: unknown option"
for i in 1 2 3 4; do
  ok "router badr$i disabled" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: bad$i.test" "http://127.0.0.1:$WEB/")"
done

# ---- no secret in the DEBUG log
ok "DEBUG lines: failures, stale nonces and successes" \
  sh -c "grep -q 'authentication failed\$' '$T/relais.log' && grep -q 'stale nonce' '$T/relais.log' && grep -q 'authentication succeeded for user alice' '$T/relais.log'"
leak=
for s in "$P_ALICE" "$P_BOB" "$P_CAROL" "$P_DAVE" "$P_ERIN" "$H_ALICE" "$H_BOB" "$H_CAROL" "$H_DAVE" \
         "$H_ERIN" "${H_ALICE:0:12}" "response=" "Authorization" "cnonce" "0a4f113b" "just:two"; do
  grep -qF -- "$s" "$T/relais.log" && leak="$leak [$s]"
done
is "the log holds no password, HA1, response or Authorization header" "" "$leak"
t_done
