#!/usr/bin/env bash
# test_lb_strategies.sh — the load-balancing strategy plugins p2c, leastconn,
# leasttime, hrw and chash, black box: each is chosen by name from the
# plugin directory (`loadBalancer.strategy: NAME`) like any third-party
# strategy, and its choices are observed through whoami's X-Whoami-Name.
#
#  - p2c, leastconn, leasttime send measurably less to a slow server than
#    wrr does (600 requests, 20 concurrent keep-alive clients);
#  - hrw (client IP) and chash (client IP, header, cookie): the same key
#    always reaches the same server, 300 keys spread over all three
#    servers (each > 20%);
#  - chash bounded loads: 20 simultaneous requests with one hot key and
#    loadFactor 1.25 put at most ceil(1.25 * 20 / 3) = 9 on any server
#    (with loadFactor 100 they all land on one server: the check can fail);
#  - bad strategy options are reported with their key path and disable
#    only their service.
# Servers going down are covered by the unit tests (tests/unit/
# test_lb_strategies.c): this host marks no server down by itself.
#
# Environment: RELAIS_TEST_LB_PLUGINS — extra .so files (space separated)
# linked into the test's plugin directory (for plugins built outside the
# tree); by default the staged plugins are used.
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2086
plugin_dir_own ${RELAIS_TEST_LB_PLUGINS:-}

out=$("$RELAIS" --list-plugins --plugin-dir "$PLUGIN_DIR" 2>/dev/null)
for s in p2c leastconn leasttime hrw chash; do
  like "--list-plugins shows $s" $'\n'"$s"' +[0-9.]+ +lb +'"$s"' +1\.[0-9]+' "$out"
done

# The client: loads, key sweeps and bursts; prints "name count" lines.
cat >"$T/lbc.py" <<'PYEOF'
import http.client, sys, threading, collections

def get(port, host, path, headers=None, src=None):
    """One request on a new connection; returns the X-Whoami-Name or
    ERR:status / ERR:exception."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                       source_address=(src, 0) if src else None)
        h = {"Host": host}
        h.update(headers or {})
        c.request("GET", path, headers=h)
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            return "ERR:%d" % r.status
        return r.getheader("X-Whoami-Name", "-")
    except Exception as e:
        return "ERR:" + type(e).__name__

def load(port, host, total, conns, path):
    """total requests over conns keep-alive connections."""
    lock = threading.Lock()
    left = [total]
    counts = collections.Counter()
    def worker():
        c = None
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("GET", path, headers={"Host": host})
                r = c.getresponse()
                r.read()
                name = r.getheader("X-Whoami-Name", "-") if r.status == 200 else "ERR:%d" % r.status
            except Exception as e:
                name = "ERR:" + type(e).__name__
                if c is not None:
                    c.close()
                c = None
            with lock:
                counts[name] += 1
    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts: t.start()
    for t in ts: t.join()
    return counts

def keys(port, host, mode, n, name):
    """n keys, each sent twice: prints unstable=K then per-server counts
    of the keys' first answers."""
    counts = collections.Counter()
    unstable = 0
    for k in range(n):
        hdrs, src = {}, None
        if mode == "ip":
            src = "127.10.%d.%d" % (k // 200, k % 200 + 1)
        elif mode == "header":
            hdrs = {name: "user-%d" % k}
        else:
            hdrs = {"Cookie": "a=1; %s=sess-%d; z=2" % (name, k)}
        a = get(port, host, "/", hdrs, src)
        b = get(port, host, "/", hdrs, src)
        if a != b or a.startswith("ERR"):
            unstable += 1
        counts[a] += 1
    print("unstable %d" % unstable)
    return counts

def burst(port, host, n, path, hdrs):
    """n simultaneous requests (one connection each, released together)."""
    bar = threading.Barrier(n)
    res = [None] * n
    def one(i):
        bar.wait()
        res[i] = get(port, host, path, hdrs)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    return collections.Counter(res)

mode, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "load":
    c = load(port, host, int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
elif mode == "keys":
    c = keys(port, host, sys.argv[4], int(sys.argv[5]), sys.argv[6])
elif mode == "burst":
    c = burst(port, host, int(sys.argv[4]), sys.argv[5],
              {sys.argv[6]: sys.argv[7]} if len(sys.argv) > 7 else {})
else:
    c = collections.Counter()
    for i in range(int(sys.argv[4])):
        c[get(port, host, sys.argv[5], {sys.argv[6]: sys.argv[7]})] += 1
for k, v in sorted(c.items()):
    print("%s %d" % (k, v))
PYEOF
lbc() { python3 "$T/lbc.py" "$@"; }
# count NAME OUTPUT: the count printed for NAME (0 when absent)
count() { printf '%s\n' "$2" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'; }
# total OUTPUT: requests answered by a whoami (names f1 f2 slow h1 h2 h3)
total() { printf '%s\n' "$1" | awk '$1 ~ /^(f1|f2|slow|h1|h2|h3)$/ { s += $2 } END { print s + 0 }'; }

start_whoami f1; PF1=$WHOAMI_PORT
start_whoami f2; PF2=$WHOAMI_PORT
start_whoami slow --delay 40; PSL=$WHOAMI_PORT
start_whoami h1; PH1=$WHOAMI_PORT
start_whoami h2; PH2=$WHOAMI_PORT
start_whoami h3; PH3=$WHOAMI_PORT

RP=$(free_port)
SLOWSET="[{url: \"http://127.0.0.1:$PF1\"}, {url: \"http://127.0.0.1:$PF2\"}, {url: \"http://127.0.0.1:$PSL\"}]"
HASHSET="[{url: \"http://127.0.0.1:$PH1\"}, {url: \"http://127.0.0.1:$PH2\"}, {url: \"http://127.0.0.1:$PH3\"}]"
{
  echo "http:"
  echo "  routers:"
  for r in wrr p2c leastconn leasttime hrw chip chhdr chcookie chhot chunbound \
           bad1 bad2 bad3 bad4 bad5; do
    printf '    %s:\n      rule: "Host(`%s.test`)"\n      service: %s\n' "$r" "$r" "$r"
  done
  echo "  services:"
  for s in wrr p2c leastconn leasttime; do
    printf '    %s:\n      loadBalancer:\n        strategy: %s\n        servers: %s\n' "$s" "$s" "$SLOWSET"
  done
  cat <<EOF
    hrw:
      loadBalancer: {strategy: hrw, servers: $HASHSET}
    chip:
      loadBalancer: {strategy: chash, servers: $HASHSET}
    chhdr:
      loadBalancer: {strategy: chash, chash: {key: header, name: X-User}, servers: $HASHSET}
    chcookie:
      loadBalancer: {strategy: chash, chash: {key: cookie, name: sid, virtualNodes: 200}, servers: $HASHSET}
    chhot:
      loadBalancer: {strategy: chash, chash: {key: header, name: X-User, loadFactor: 1.25}, servers: $HASHSET}
    chunbound:
      loadBalancer: {strategy: chash, chash: {key: header, name: X-User, loadFactor: 100}, servers: $HASHSET}
    bad1:
      loadBalancer: {strategy: chash, chash: {key: query}, servers: $HASHSET}
    bad2:
      loadBalancer: {strategy: chash, chash: {loadFactor: 0.5}, servers: $HASHSET}
    bad3:
      loadBalancer: {strategy: chash, chash: {key: header}, servers: $HASHSET}
    bad4:
      loadBalancer: {strategy: leasttime, leasttime: {failurePenalty: 1s, bogus: 1}, servers: $HASHSET}
    bad5:
      loadBalancer: {strategy: nosuchstrategy, servers: $HASHSET}
EOF
} >"$T/dyn.yaml"
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
start_relais "$T/relais.yaml" "$RP"
ok "configuration applied" wait_log "configuration [0-9]+ applied"

# --- configuration errors, with key paths; only their service is off
ok "chash key error has its path" grep -q 'http.services.bad1@file.loadBalancer.chash.key: expected clientIP, header or cookie, got "query"' "$T/relais.log"
ok "chash loadFactor error has its path" grep -q 'http.services.bad2@file.loadBalancer.chash.loadFactor: expected a number from 1 to' "$T/relais.log"
ok "chash header without name is refused" grep -q 'http.services.bad3@file.loadBalancer.chash.name: expected the header name' "$T/relais.log"
ok "leasttime unknown option has its path" grep -q 'http.services.bad4@file.loadBalancer.leasttime.bogus: unknown leasttime option' "$T/relais.log"
ok "unknown strategy is reported" grep -q 'http.services.bad5@file.loadBalancer.strategy: no loaded plugin provides the load-balancing strategy "nosuchstrategy"' "$T/relais.log"
for b in bad1 bad2 bad3 bad4 bad5; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $b.test" "http://127.0.0.1:$RP/")
  is "service $b is disabled" 404 "$code"
done

# --- in-flight aware strategies against a slow server
declare -A SLOW
for s in wrr p2c leastconn leasttime; do
  o=$(lbc load "$RP" "$s.test" 600 20 /)
  is "$s: 600 answers from the three servers" 600 "$(total "$o")"
  SLOW[$s]=$(count slow "$o")
  echo "# $s: f1=$(count f1 "$o") f2=$(count f2 "$o") slow=${SLOW[$s]}"
done
ok "wrr gives the slow server its third (${SLOW[wrr]} of 600)" test "${SLOW[wrr]}" -ge 170
for s in p2c leastconn leasttime; do
  ok "$s sends less than half of wrr's share to the slow server (${SLOW[$s]} vs ${SLOW[wrr]})" \
    test $((SLOW[$s] * 2)) -lt "${SLOW[wrr]}"
done

# --- hashing strategies: stable per key, spread over all servers
check_spread() { # LABEL OUTPUT
  local n s c
  is "$1: every key stays on its server" "unstable 0" "$(printf '%s\n' "$2" | grep '^unstable')"
  for s in h1 h2 h3; do
    c=$(count $s "$2")
    ok "$1: $s gets > 20% of 300 keys ($c)" test "$c" -gt 60
  done
  n=$(total "$2")
  is "$1: 300 keys answered" 300 "$n"
}
check_spread "hrw client IP" "$(lbc keys "$RP" hrw.test ip 300 -)"
check_spread "chash client IP" "$(lbc keys "$RP" chip.test ip 300 -)"
check_spread "chash header" "$(lbc keys "$RP" chhdr.test header 300 X-User)"
check_spread "chash cookie" "$(lbc keys "$RP" chcookie.test cookie 300 sid)"

# --- chash bounded loads: one hot key, 20 requests at once, 700 ms each
o=$(lbc seq "$RP" chhot.test 20 / X-User hot)
like "chash: a hot key alone always reaches one server" '^h[123] 20$' "$o"
o=$(lbc burst "$RP" chunbound.test 20 "/?wait=700ms" X-User hot)
like "chash loadFactor 100: all 20 simultaneous hot requests on one server" '^h[123] 20$' "$o"
o=$(lbc burst "$RP" chhot.test 20 "/?wait=700ms" X-User hot)
echo "# bounded: $(echo $o)"
is "chash loadFactor 1.25: 20 simultaneous answers" 20 "$(total "$o")"
max=$(printf '%s\n' "$o" | awk '$1 ~ /^h[123]$/ && $2 > m { m = $2 } END { print m + 0 }')
ok "chash loadFactor 1.25: no server above ceil(1.25*20/3) = 9 ($max)" test "$max" -le 9
ok "chash loadFactor 1.25: the hot server still takes the most (>= 6: $max)" test "$max" -ge 6
o=$(lbc seq "$RP" chhot.test 10 / X-User hot)
like "chash: after the burst the hot key is back on one server" '^h[123] 10$' "$o"

ok "relais still running" kill -0 "$RELAIS_PID"
t_done
