#!/usr/bin/env bash
# The core's etcd v3 client (src/etcd.c) against real etcd 3.4 servers
# (tests/servers/etcd.sh), through tests/integration/etcd_driver run as a
# coprocess (its watches stay live between commands):
# - a 3-member cluster: exact bytes (NUL, 0xff, empty values, binary keys),
#   prefix ranges (also a prefix ending in 0xff), limit + more, keys only,
#   revisions increasing; txn CAS (create-if-absent once, failure branch);
#   leases (grant, keepalive TTL, revoke, expiry without keepalive); watches
#   (order, revisions, prefix vs single key, history, cancel inside the
#   callback, compaction → ETC_ERR_COMPACTED); cancelled calls and a client
#   freed inside a callback make no callback; a paused member (SIGSTOP):
#   calls move on within ~timeout_ms, a txn reports an unknown outcome, a
#   watch moves off it; member 1 killed mid-stream: the watch resumes on
#   another member with every event exactly once, in order, plain calls
#   fail over and etc_endpoint changes; quorum lost: "no leader" at once;
# - a single member with auth: token, permission denied, wrong password and
#   no credentials → ETC_ERR_AUTH, watches with auth, token renewal after
#   the tokens are invalidated, one authenticate for a burst of calls;
# - TLS: CA as file and as PEM text, host:port with a CA means https,
#   unverified server refused, insecure, unreadable CA refused by etc_new;
#   mutual TLS with certificate and key as files and as PEM.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/etcd.sh"

DRIVER=${ETCD_DRIVER:-$RELAIS_BUILDDIR/tests/integration/etcd_driver}
[ -x "$DRIVER" ] || { echo "Bail out! $DRIVER not built"; exit 1; }
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null || ! command -v python3 >/dev/null; then
  echo "Bail out! etcd, etcdctl or python3 not installed (CI installs them: see tests/run.sh)"
  exit 1
fi
trap 'etcd_stop_all >/dev/null 2>&1; t_cleanup' EXIT
T0=$(date +%s)

# ---- the driver as a coprocess -------------------------------------------
coproc DRV { exec "$DRIVER" --timeout 150 --debug 2>>"$T/driver.err"; }
DRIVER_PID=$DRV_PID
PIDS+=("$DRIVER_PID")
SEQ=0
R=""

# d CMD...: sends the commands, then waits (40 s at most per line) for the
# output they caused; it lands in $R (and in $T/driver.out).
d() {
  local c line m
  SEQ=$((SEQ + 1)); m="@@sync$SEQ"; R=""
  for c in "$@"; do printf '%s\n' "$c" >&"${DRV[1]}"; done
  printf 'echo %s\n' "$m" >&"${DRV[1]}"
  while IFS= read -r -t 40 line <&"${DRV[0]}"; do
    [ "$line" = "$m" ] && return 0
    R+="$line"$'\n'
    printf '%s\n' "$line" >>"$T/driver.out"
  done
  R+="(no answer from the driver)"
  return 1
}

# val NAME [TEXT]: the value of the first NAME=value in TEXT (default $R).
val() { printf '%s' "${2-$R}" | grep -o -m1 -E "(^| )$1=[^ ]*" | head -1 | sed 's/^ //; s/^[^=]*=//'; }
# lines PREFIX: the lines of $R starting with PREFIX.
lines() { printf '%s' "$R" | grep -E "^$1" || true; }
# esc FILE: the file as one driver token (spaces \s, newlines \n).
esc() { sed -e 's/\\/\\\\/g' -e 's/ /\\s/g' "$1" | awk '{printf "%s\\n", $0}'; }
# increasing N...: 0 when the numbers are strictly increasing.
increasing() { local p=-1 x; for x in "$@"; do [ "$x" -gt "$p" ] || return 1; p=$x; done; }
# lt A B: A < B.
lt() { [ "$1" -lt "$2" ]; }

# ==== 1. a 3-member cluster ===============================================
etcd_use main
etcd_cluster_start "$T/main" 3 >"$T/etcd-main.log" 2>&1 ||
  { echo "Bail out! etcd cluster did not start"; cat "$T/etcd-main.log"; exit 1; }
IFS=, read -r E1 E2 E3 <<<"$ETCD_ENDPOINTS"
read -r P1 P2 P3 <<<"$ETCD_PIDS"
ALL="$E1,$E2,$E3"

d "client a $ALL"
is "client on three endpoints" "client a ok" "$(lines 'client a')"

# -- exact bytes, prefixes, limit, keys only, revisions
d 'put bin \x00\x01a\x7f\x80\xfe\xff\s\\z' 'put k\xff\x01 binkey' "put empty ''" \
  'put pf\xff1 a' 'put pf\xff\xff b' 'put pg c' 'put p/1 one' 'put p/2 two' 'put p/3 three'
is "nine puts succeed" 9 "$(lines 'put err=0 ' | wc -l)"
# shellcheck disable=SC2046
ok "put revisions strictly increase" increasing $(lines put | sed 's/.* rev=\([0-9]*\).*/\1/')
d 'get bin'
like "value with NUL, 0x7f..0xff, space, backslash read back byte for byte" \
  '^kv bin \\x00\\x01a\\x7f\\x80\\xfe\\xff\\s\\\\z create=[0-9]+ mod=[0-9]+ ver=1 lease=0$' "$R"
d 'get k\xff\x01' 'get empty'
like "binary key" '^kv k\\xff\\x01 binkey ' "$R"
like "empty value" "^kv empty '' " "$R"
d 'get p/ prefix'
is "prefix range: the three keys, in order" "p/1 one|p/2 two|p/3 three" \
  "$(lines kv | awk '{print $2" "$3}' | paste -sd'|')"
is "prefix range: more=0, n=3" "3 0" "$(val n) $(val more)"
d 'get pf\xff prefix'
is "prefix ending in 0xff: its keys only (not pg)" 'pf\xff1|pf\xff\xff' \
  "$(lines kv | awk '{print $2}' | paste -sd'|')"
d 'get p/ prefix limit=2'
is "limit 2: two pairs and more=1" "2 1" "$(val n) $(val more)"
d 'get p/ prefix keys'
is "keys only: values empty" "p/1 ''|p/2 ''|p/3 ''" "$(lines kv | awk '{print $2" "$3}' | paste -sd'|')"
d 'get nothing/here'
is "absent key: n=0, err=0" "0 0" "$(val err) $(val n)"
d 'del p/ prefix' 'get p/ prefix'
is "delete prefix: 3 deleted, none left" "3 0" "$(val deleted) $(lines get | head -1 | sed 's/.* n=\([0-9]*\).*/\1/')"

# -- txn: compare-and-swap
d 'txn version:lock=0 then put:lock=me else put:loser=1'
is "txn create-if-absent: succeeds the first time" "0 1" "$(val err) $(val succeeded)"
d 'txn version:lock=0 then put:lock=other else put:loser=1'
is "txn create-if-absent: fails the second time" "0 0" "$(val err) $(val succeeded)"
d 'get lock' 'get loser'
like "the lock keeps its first value" '^kv lock me ' "$R"
like "the failure branch ran" '^kv loser 1 ' "$R"
d 'put q/1 a' 'put q/2 b' 'txn value:lock=me mod:lock>0 then delp:q/ else put:bad=1' 'get q/ prefix'
is "txn value + mod compares, delete-prefix op" "1 0" \
  "$(lines txn | head -1 | sed 's/.*succeeded=\([0-9]\).*/\1/') $(lines get | sed 's/.* n=\([0-9]*\).*/\1/')"

# -- leases
d 'grant 2 L1' 'put leased v lease=$L1' 'keepalive $L1' 'get leased'
L1=$(val id "$(lines grant)")
like "grant: a lease id" '^[1-9][0-9]*$' "$L1"
is "keepalive returns the TTL" 2 "$(val ttl "$(lines keepalive)")"
like "the key carries the lease" "^kv leased v .* lease=$L1\$" "$R"
d 'revoke $L1' 'get leased' 'keepalive $L1'
is "revoke: the key is gone" "0 0" "$(val err "$(lines revoke)") $(val n "$(lines get)")"
is "keepalive of a revoked lease: TTL 0" "0 0" "$(val err "$(lines keepalive)") $(val ttl "$(lines keepalive)")"
d 'grant 2 L2' 'put exp v lease=$L2' 'sleep 1000' 'keepalive $L2' 'sleep 1000' 'get exp'
is "kept alive: still there after 2 s" 1 "$(val n "$(lines get)")"
d 'sleep 2800' 'get exp'
is "not kept alive: gone after its TTL" 0 "$(val n "$(lines get)")"

# -- watches
d 'watch w1 w/ prefix' 'sleep 200' 'put w/a 1' 'put w/b 2' 'del w/a' 'put w/c 3' 'put other 9' \
  'wait w1 4 3000' 'sleep 200'
is "prefix watch: every event, in order" "PUT w/a 1|PUT w/b 2|DELETE w/a ''|PUT w/c 3" \
  "$(lines 'event w1 ' | awk '{print $3" "$4" "$5}' | paste -sd'|')"
WREVS=$(lines '(put|del) err=0' | head -4 | sed 's/.* rev=\([0-9]*\).*/\1/' | paste -sd' ')
is "events carry the revisions of the writes" "$WREVS" \
  "$(lines 'event w1 ' | sed 's/.* mod=//' | paste -sd' ')"
is "the batch revision is the highest delivered" "${WREVS##* }" "$(lines 'batch w1 ' | tail -1 | sed 's/.* rev=//')"
REV_A=${WREVS%% *}
d "watch w2 w/ prefix rev=$REV_A" 'wait w2 4 3000'
is "watch from a past revision: the history" "PUT w/a 1|PUT w/b 2|DELETE w/a ''|PUT w/c 3" \
  "$(lines 'event w2 ' | awk '{print $3" "$4" "$5}' | paste -sd'|')"
d 'watch w3 w/x' 'sleep 200' 'put w/xy 1' 'put w/x 2' 'wait w3 1 3000' 'sleep 200'
is "single-key watch: that key only" "PUT w/x 2" "$(lines 'event w3 ' | awk '{print $3" "$4" "$5}')"
d "watch w4 w/ prefix rev=$REV_A once" 'wait w4 1 3000' 'put w/d 4' 'sleep 300'
N4=$(lines 'event w4 ' | wc -l)
is "watch cancelled inside its callback: one batch, nothing after" \
  "$(lines 'batch w4 ' | head -1 | sed 's/.* n=\([0-9]*\).*/\1/')" "$N4"
d 'unwatch w1' 'unwatch w2' 'unwatch w3'

# -- compaction
d 'put cmp 1' 'put cmp 2'
RC1=$(lines put | head -1 | sed 's/.* rev=\([0-9]*\).*/\1/')
RC2=$(lines put | tail -1 | sed 's/.* rev=\([0-9]*\).*/\1/')
etcdctl --endpoints="$ALL" compact "$RC2" >/dev/null 2>&1
d "watch wc cmp rev=$RC1" 'wait wc 1 3000'
like "watch from a compacted revision: ETC_ERR_COMPACTED" '^watchend wc err=-4 msg=.*compacted' "$R"
d "watch wd cmp rev=$RC2" 'wait wd 1 3000' 'unwatch wd'
like "watch from the compaction revision itself works" "^event wd PUT cmp 2 mod=$RC2\$" "$R"

# -- cancellation and freeing inside callbacks
d 'cancels c/k' 'freecb c/'
is "cancelled get, put and watch: no callback" "cancels callbacks=0" "$(lines cancels)"
is "client freed inside a callback: no other callback" "freecb ok counter=0" "$(lines freecb)"
d 'burst 30 bin'
is "30 concurrent gets" "30 0" "$(val ok) $(val err)"

# -- a paused member (SIGSTOP): a follower, so the cluster keeps its leader
FOLLOWER=$(etcdctl --endpoints="$ALL" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(next(i + 1 for i, e in enumerate(d) if e["Status"]["leader"] != e["Status"]["header"]["member_id"]))' 2>/dev/null)
case "$FOLLOWER" in 1) EF=$E1 PF=$P1 O1=$E2 O2=$E3 ;; 2) EF=$E2 PF=$P2 O1=$E1 O2=$E3 ;;
  *) FOLLOWER=3 EF=$E3 PF=$P3 O1=$E1 O2=$E2 ;; esac
d "client t $EF,$O1,$O2 timeout=1000" 'watch wt t/ prefix' 'sleep 300' "client t2 $EF,$O1 timeout=1000" \
  "client tw $O1,$O2"
kill -STOP "$PF"
d 'use t' 'get bin'
is "paused member: the call succeeds on the next endpoint" "0 $O1" "$(val err) $(val ep)"
MS=$(val ms)
ok "... after about timeout_ms (1000 <= $MS ms < 2500)" eval '[ "$MS" -ge 950 ] && [ "$MS" -lt 2500 ]'
d 'use t2' 'txn version:t2=0 then put:t2=1'
like "paused member: a txn is not retried, its outcome is unknown (ETC_ERR_TIMEOUT)" \
  '^txn err=-2 .*outcome\\sunknown' "$R"
d 'use tw' 'put t/1 x' 'use t' 'wait wt 1 7000'
is "paused member: the watch moved off it and got the event" "PUT t/1 x" \
  "$(lines 'event wt ' | awk '{print $3" "$4" "$5}')"
kill -CONT "$PF"
d 'unwatch wt'

# -- member 1 killed mid-stream, writes going on through the others
CMDS=("client k $ALL timeout=2000" 'watch wk k/ prefix' 'sleep 200' "client b $E2,$E3")
for i in $(seq -w 1 20); do CMDS+=("put k/$i v$i"); done
d "${CMDS[@]}" 'use k' 'wait wk 20 5000'
is "20 events before the kill" 20 "$(lines 'event wk ' | wc -l)"
EVS=$(lines 'event wk ')
etcd_member_kill 1
CMDS=('use b')
for i in $(seq 21 40); do CMDS+=("put k/$i v$i"); done
d "${CMDS[@]}" 'use k' 'wait wk 40 10000' 'sleep 300'
is "writes through the other members succeed" 20 "$(lines 'put err=0 ' | wc -l)"
EVS+=$'\n'$(lines 'event wk ')
is "the watch resumed: every event exactly once, in order" \
  "$(seq -w 1 40 | sed 's/^/k\//' | paste -sd' ')" "$(printf '%s\n' "$EVS" | awk '{print $4}' | paste -sd' ')"
# shellcheck disable=SC2046
ok "... with strictly increasing revisions" increasing $(printf '%s\n' "$EVS" | sed 's/.* mod=//')
d 'use k' 'endpoint'
like "the watching client moved off member 1" "^endpoint ($E2|$E3)\$" "$R"
d "client f $ALL" 'endpoint' 'get k/ prefix keys' 'endpoint'
is "fresh client: starts on member 1" "endpoint $E1" "$(lines endpoint | head -1)"
is "... a plain call succeeds on member 2" "0 40 $E2" "$(val err) $(val n) $(val ep)"
is "... and etc_endpoint changed" "endpoint $E2" "$(lines endpoint | tail -1)"
d 'unwatch wk'

# -- quorum lost: the last member answers "no leader" at once (hasleader)
etcd_member_kill 2
NL=""
for _ in 1 2 3 4 5; do
  sleep 1
  d "client n $E3 timeout=3000" 'get k/ prefix keys'
  case "$R" in *no\\sleader*) NL=$R; break ;; esac
done
like "quorum lost: ETC_ERR_UNAVAILABLE \"no leader\"" '^get err=-1 .*no\\sleader' "$NL"
MS=$(val ms "$NL")
ok "... at once, not after the timeout ($MS ms)" lt "${MS:-9999}" 1500
etcd_stop >/dev/null 2>&1

# ==== 2. auth ==============================================================
etcd_use auth
etcd_start "$T/auth" >"$T/etcd-auth.log" 2>&1 || { echo "Bail out! etcd (auth) did not start"; exit 1; }
EA=$ETCD_ENDPOINT
ec() { etcdctl --endpoints="$EA" "$@" >>"$T/etcdctl.log" 2>&1; }
ec user add root:rootpw; ec user grant-role root root; ec role add r
ec role grant-permission r readwrite --prefix=true a/
ec user add alice:pw; ec user grant-role alice r
ec auth enable
d "client good $EA user=alice pass=pw" 'put a/1 x' 'get a/1' 'get z'
is "auth: a call with the token succeeds" "0 0" \
  "$(val err "$(lines put)") $(val err "$(lines get | head -1)")"
like "auth: the value is read" '^kv a/1 x ' "$R"
like "auth: permission denied → ETC_ERR_AUTH" '^get err=-5 .*permission\\sdenied' "$(lines get | tail -1)"
d "client bad $EA user=alice pass=wrong" 'get a/1'
like "auth: wrong password → ETC_ERR_AUTH" '^get err=-5 .*authentication\\sfailed' "$R"
d "client anon $EA" 'get a/1'
like "auth: no credentials → ETC_ERR_AUTH" '^get err=-5 ' "$R"
d 'use good' 'watch wa a/ prefix' 'sleep 200' 'put a/2 y' 'wait wa 1 3000' 'watch wz z/ prefix' \
  'wait wz 1 3000'
is "auth: a watch with the token gets events" "PUT a/2 y" "$(lines 'event wa ' | awk '{print $3" "$4" "$5}')"
like "auth: a watch without permission ends with ETC_ERR_AUTH" '^watchend wz err=-5 ' "$R"
d 'unwatch wa'
NEW0=$(grep -c 'new auth token' "$T/driver.err")
# auth disable / enable drops every simple token: the client's is invalid
ec --user root:rootpw auth disable; ec auth enable
d 'use good' 'get a/1'
is "auth: after the tokens were invalidated the call still succeeds" "0 1" "$(val err) $(val n)"
ok "... with a renewed token" grep -q 'fetching a new token' "$T/driver.err"
NEW1=$(grep -c 'new auth token' "$T/driver.err")
d "client many $EA user=alice pass=pw" 'burst 20 a/1'
is "auth: 20 concurrent calls on a new client succeed" "20 0" "$(val ok) $(val err)"
is "... with one authenticate for them all" 1 \
  "$(( $(grep -c 'new auth token' "$T/driver.err") - NEW1 ))"
ok "(tokens fetched so far: $NEW0 before, $NEW1 after the renewal)" lt "$NEW0" "$NEW1"
etcd_stop >/dev/null 2>&1

# ==== 3. TLS ===============================================================
K=$T/pki
mkdir -p "$K"
pki_ca "$K" ca && pki_leaf "$K" server ca "IP:127.0.0.1" &&
  pki_leaf "$K" client ca "DNS:client" "extendedKeyUsage=clientAuth" ||
  { echo "Bail out! openssl failed"; cat "$K/pki.log"; exit 1; }
cp "$K/server.key" "$K/server-key.pem"
cp "$K/client.key" "$K/client-key.pem"
etcd_use tls
ETCD_TLS_DIR=$K etcd_start "$T/tls" >"$T/etcd-tls.log" 2>&1 || { echo "Bail out! etcd (TLS) did not start"; exit 1; }
ET=$ETCD_ENDPOINT
CA_PEM=$(esc "$K/ca.pem")
d "client tf $ET ca=$K/ca.pem" 'put t x' 'get t'
is "TLS, CA file: put and get" "0 1" "$(val err "$(lines get)") $(val n "$(lines get)")"
like "... over https" "ep=https://" "$R"
d "client tp $ET ca=$CA_PEM" 'get t'
is "TLS, CA as PEM text" "0 1" "$(val err) $(val n)"
d "client tb ${ET#https://} ca=$K/ca.pem" 'get t'
is "TLS, host:port with a CA means https" "0 $ET" "$(val err) $(val ep)"
d "client tn $ET" 'get t'
like "TLS, server not verified (system CAs): ETC_ERR_UNAVAILABLE" '^get err=-1 ' "$R"
d "client ti $ET insecure" 'get t'
is "TLS, insecure" 0 "$(val err)"
d "client tx $ET ca=$T/none.pem"
like "TLS, unreadable CA: etc_new refuses" '^client tx error ' "$R"
d "client e1 ftp://127.0.0.1:1"
like "bad endpoint scheme: etc_new refuses" '^client e1 error ' "$R"
etcd_stop >/dev/null 2>&1

etcd_use mtls
ETCD_TLS_DIR=$K ETCD_TLS_CLIENT_AUTH=1 etcd_start "$T/mtls" >"$T/etcd-mtls.log" 2>&1 ||
  { echo "Bail out! etcd (mutual TLS) did not start"; exit 1; }
EM=$ETCD_ENDPOINT
d "client mf $EM ca=$K/ca.pem cert=$K/client.pem key=$K/client-key.pem" 'put m x' 'get m'
is "mutual TLS, certificate and key files" "0 1" "$(val err "$(lines get)") $(val n "$(lines get)")"
d "client mp $EM ca=$CA_PEM cert=$(esc "$K/client.pem") key=$(esc "$K/client-key.pem")" 'get m'
is "mutual TLS, certificate and key as PEM" "0 1" "$(val err) $(val n)"
d "client mn $EM ca=$K/ca.pem" 'get m'
like "mutual TLS without a client certificate: refused" '^get err=-1 ' "$R"
etcd_stop >/dev/null 2>&1

# ==== the driver ends cleanly ==============================================
exec {DRV[1]}>&-
RC=timeout
for _ in $(seq 1 100); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$DRIVER_PID" 2>/dev/null || { wait "$DRIVER_PID"; RC=$?; }
is "driver exits 0 (every client freed with its watches)" 0 "$RC"
is "driver: no sanitizer report" "" "$(grep -E 'Sanitizer|runtime error' "$T/driver.err" | head -3)"
is "no BAD command, no TIMEOUT" "" "$(grep -E '^(BAD|TIMEOUT)' "$T/driver.out" | head -3)"
echo "# took $(( $(date +%s) - T0 )) s"
t_done
