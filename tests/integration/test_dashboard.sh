#!/usr/bin/env bash
# test_dashboard.sh — the dashboard at /dashboard/ (issue 8), black box,
# with api {insecure: true, dashboard: true} on entry point "traefik":
#
#  - HTTP: /dashboard redirects to /dashboard/; /dashboard/ is 200
#    text/html; charset=utf-8 with exactly the bytes of
#    src/dashboard/index.html; /dashboard/../../etc/passwd (as is),
#    /dashboard/%2e%2e/%2e%2e/etc/passwd and /dashboard/x never return a
#    file's contents (404 or the page itself); the page names no external
#    URL (no http:// or https:// at all, no src=/href= starting with //)
#    and its script uses no innerHTML, document.write or eval;
#  - headless Chromium loads the page (6 s of virtual time) and the DOM it
#    builds lists every router of the configuration (HTTP and TCP) with the
#    status the API gives it (data-router / data-status), the disabled
#    router (rule error) with its error message, the router with one
#    entry point that does not exist as a warning with its message, a
#    service's dead server DOWN and its live one UP, a router named
#    "<img src=x onerror=alert(1)>" as text and no element injected by it
#    (no img, no on* attribute anywhere), the stats polled at least twice
#    with every rate cell a number and the "web" entry point's request
#    counter at least the requests sent;
#  - the filters taken from the address: ?q=broken leaves broken@file
#    alone, ?status=disabled exactly the disabled routers;
#  - a 1400x1000 screenshot and a 420x900 (narrow) one are PNG files of a
#    reasonable size, kept beside the test's log (path printed).
#
# Chromium never leaves 127.0.0.1: every host name resolves to nothing
# and its background services are off.
. "$(dirname "$0")/lib.sh"

PAGE=$RELAIS_SRCDIR/src/dashboard/index.html
SHOTS=${DASH_SHOT_DIR:-$RELAIS_BUILDDIR/tests/integration}
EVIL='<img src=x onerror=alert(1)>'

start_whoami app; APP=$WHOAMI_PORT
DEAD=$(free_port)   # nothing listens there: the health check fails
WEB=$(free_port); API=$(free_port); TCPP=$(free_port)

cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    app:
      rule: "Host(\`app.test\`)"
      service: app
      entryPoints: [web]
      middlewares: [strip]
    paths:
      rule: "Host(\`app.test\`) && PathPrefix(\`/api\`)"
      service: app
      entryPoints: [web]
      priority: 50
    broken:
      rule: "Host(\`broken.test\`"
      service: app
      entryPoints: [web]
    halfway:
      rule: "Host(\`half.test\`)"
      service: app
      entryPoints: [web, nosuchentrypoint]
    flaky:
      rule: "Host(\`flaky.test\`)"
      service: flaky
      entryPoints: [web]
    "$EVIL":
      rule: "Host(\`evil.test\`)"
      service: app
      entryPoints: [web]
  middlewares:
    strip:
      stripPrefix: {prefixes: [/x]}
  services:
    app:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$APP"}]
    flaky:
      loadBalancer:
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms}
        servers: [{url: "http://127.0.0.1:$APP"}, {url: "http://127.0.0.1:$DEAD"}]
tcp:
  routers:
    db:
      rule: "HostSNI(\`*\`)"
      service: db
      entryPoints: [rawtcp]
  services:
    db:
      loadBalancer:
        servers: [{address: "127.0.0.1:$APP"}]
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WEB"
  traefik:
    address: "127.0.0.1:$API"
  rawtcp:
    address: "127.0.0.1:$TCPP"
api:
  insecure: true
  dashboard: true
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$API"
wait_port "$WEB"
U=http://127.0.0.1:$API
TAB=$'\t'

# ---- served bytes, redirect, no escape from /dashboard/
code_loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$U/dashboard")
like "GET /dashboard redirects to /dashboard/" "^30[12] $U/dashboard/\$" "$code_loc"
hdr=$(curl -s -D - -o "$T/page.html" "$U/dashboard/" | tr -d '\r')
like "GET /dashboard/ is 200" '^HTTP/1\.1 200' "$hdr"
is "GET /dashboard/ is text/html; charset=utf-8" "text/html; charset=utf-8" \
  "$(printf '%s\n' "$hdr" | sed -n 's/^[Cc]ontent-[Tt]ype: *//p')"
ok "GET /dashboard/ sends exactly src/dashboard/index.html" cmp -s "$PAGE" "$T/page.html"

# never_a_file PATH: 404, or 200 with the page itself; never /etc/passwd.
never_a_file() {
  local code
  code=$(curl -s --path-as-is -o "$T/esc.body" -w '%{http_code}' "$U$1")
  if grep -q 'root:' "$T/esc.body"; then echo "# $1: file contents"; return 1; fi
  case $code in
    404) return 0 ;;
    200) cmp -s "$PAGE" "$T/esc.body" || { echo "# $1: 200 but not the page"; return 1; } ;;
    *) echo "# $1: status $code"; return 1 ;;
  esac
}
ok "GET /dashboard/../../etc/passwd: no file" never_a_file "/dashboard/../../etc/passwd"
ok "GET /dashboard/%2e%2e/%2e%2e/etc/passwd: no file" never_a_file "/dashboard/%2e%2e/%2e%2e/etc/passwd"
ok "GET /dashboard/..%2f..%2fetc%2fpasswd: no file" never_a_file "/dashboard/..%2f..%2fetc%2fpasswd"
ok "GET /dashboard/x: 404 or the page" never_a_file "/dashboard/x"
is "the page holds no http:// or https:// URL" "" "$(grep -Eio 'https?://[^ "<>]*' "$PAGE" | head -3)"
is "no src=/href=/action= to another host (//...)" "" \
  "$(grep -Eio '(src|href|action|poster|data)[[:space:]]*=[[:space:]]*["'\'']?//' "$PAGE" | head -3)"
is "no @import or url() in the page" "" "$(grep -Eio '@import|url\(' "$PAGE" | head -3)"
is "the script never turns strings into HTML or code" "" \
  "$(grep -Eo 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' "$PAGE" | head -3)"

# ---- traffic, and the API's own view to compare the page with
for _ in $(seq 1 20); do curl -s -o /dev/null -H 'Host: app.test' "http://127.0.0.1:$WEB/"; done
for _ in $(seq 1 5); do curl -s -o /dev/null -H 'Host: evil.test' "http://127.0.0.1:$WEB/"; done
for _ in $(seq 1 5); do curl -s -o /dev/null -H 'Host: nowhere.test' "http://127.0.0.1:$WEB/"; done
SENT=30

# api_list PATH: "name<TAB>status" per object of /api/PATH (sorted).
api_list() {
  curl -s "$U/api/$1?per_page=1000" | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    print("%s\t%s" % (o.get("name"), o.get("status")))'
}
# dead_is_down: the API reports the dead server DOWN (health checks run
# every 200 ms).
dead_is_down() {
  local _i
  for _i in $(seq 1 50); do
    curl -s "$U/api/http/services/flaky@file" | grep -q "\"http://127.0.0.1:$DEAD\": *\"DOWN\"" && return 0
    sleep 0.1
  done
  return 1
}
ok "the API reports http://127.0.0.1:$DEAD DOWN" dead_is_down
api_list http/routers >"$T/api.routers"
api_list tcp/routers >"$T/api.tcprouters"
is "the API lists the 6 HTTP routers of the file (and maybe internal ones)" 6 "$(grep -c '@file' "$T/api.routers")"
is "the API lists the TCP router" "db@file	enabled" "$(cat "$T/api.tcprouters")"
like "the API has broken@file disabled" $'^broken@file\tdisabled$' "$(grep '^broken@file' "$T/api.routers")"
is "the API has halfway@file warning (one entry point does not exist)" "halfway@file${TAB}warning" \
  "$(grep '^halfway@file' "$T/api.routers")"
BROKEN_ERR=$(curl -s "$U/api/http/routers/broken@file" | python3 -c 'import json,sys; print((json.load(sys.stdin).get("error") or [""])[0])')
like "the API gives broken@file an error message" '.' "$BROKEN_ERR"

# ---- the page in Chromium
# chrome ARGS...: headless Chromium that reaches nothing but 127.0.0.1.
chrome() {
  timeout 90 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$T/chromium" \
    --no-first-run --no-default-browser-check --disable-background-networking \
    --disable-component-update --disable-sync --disable-default-apps --disable-extensions \
    --disable-domain-reliability --disable-client-side-phishing-detection \
    --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' \
    --virtual-time-budget=6000 "$@" 2>>"$T/chromium.log"
}

# dom_facts FILE: what the checks need from a dumped DOM, one fact a line:
#   router KIND NAME STATUS | visible ROUTER (row not filtered out) |
#   error ROUTER MESSAGE | name ROUTER TEXT |
#   server ADDR HEALTH | rate KIND NAME FIELD TEXT | total EP TEXT |
#   body POLLS LOADED | img N | onattr N | script N  (tab-separated)
cat >"$T/dom.py" <<'PYEOF'
import sys
from html.parser import HTMLParser

class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []      # open elements: (tag, attrs dict, text parts)
        self.out = []
        self.img = self.onattr = self.script = 0
        self.router = None   # data-router of the open row
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'img': self.img += 1
        if tag == 'script': self.script += 1
        self.onattr += sum(1 for k, _ in attrs if k.lower().startswith('on'))
        if tag == 'body':
            self.out.append(('body', a.get('data-stats-polls', ''), a.get('data-loaded', '')))
        if tag == 'tr' and 'data-router' in a:
            self.router = a['data-router']
            self.out.append(('router', a.get('data-kind', ''), a['data-router'], a.get('data-status', '')))
            if 'hidden' not in a.get('class', '').split():
                self.out.append(('visible', a['data-router']))
        if tag == 'li' and 'data-server' in a:
            self.out.append(('server', a['data-server'], a.get('data-health', '')))
        if tag in ('br', 'meta', 'link', 'input', 'hr', 'img'):
            return
        self.stack.append((tag, a, []))
    def handle_endtag(self, tag):
        while self.stack:
            t, a, parts = self.stack.pop()
            text = ''.join(parts)
            if self.stack: self.stack[-1][2].append(text)
            if t == 'li' and 'data-error' in a and self.router is not None:
                self.out.append(('error', self.router, text))
            if t == 'span' and a.get('class') == 'n' and self.router is not None:
                self.out.append(('name', self.router, text))
            if t == 'td' and 'rate' in a.get('class', '').split():
                self.out.append(('rate', a.get('data-rate-kind', ''), a.get('data-rate-name', ''),
                                 a.get('data-rate-field', ''), text))
            if t == 'td' and 'live-total' in a.get('class', '').split():
                self.out.append(('total', a.get('data-live-name', ''), text))
            if t == 'tr': self.router = None
            if t == tag: break
    def handle_data(self, d):
        if self.stack: self.stack[-1][2].append(d)

p = P()
p.feed(open(sys.argv[1], encoding='utf-8').read())
p.close()
for f in p.out:
    print('\t'.join(f))
print('img\t%d' % p.img)
print('onattr\t%d' % p.onattr)
print('script\t%d' % p.script)
PYEOF

if ! command -v chromium >/dev/null 2>&1; then
  ok "headless Chromium checks # SKIP chromium is not installed" true
  stop_relais_clean
  t_done
fi

chrome --dump-dom "$U/dashboard/" >"$T/dom.html"
ok "chromium dumped the DOM" test -s "$T/dom.html"
python3 "$T/dom.py" "$T/dom.html" >"$T/facts" 2>"$T/dom.err"
ok "the DOM parses" test -s "$T/facts"
body=$(grep "^body$TAB" "$T/facts" | head -1)
like "the page loaded the configuration" "^body${TAB}[0-9]+${TAB}[1-9][0-9]*\$" "$body"
like "the page polled /api/relais/stats at least twice" "^body$TAB([2-9]|[1-9][0-9]+)$TAB" "$body"

# Every router the API knows, with the same status, in the page.
while IFS=$TAB read -r name st; do
  is "router $name listed as $st" "router${TAB}http$TAB$name$TAB$st" \
    "$(grep -F "router${TAB}http$TAB$name$TAB" "$T/facts" | head -1)"
done <"$T/api.routers"
while IFS=$TAB read -r name st; do
  is "TCP router $name listed as $st" "router${TAB}tcp$TAB$name$TAB$st" \
    "$(grep -F "router${TAB}tcp$TAB$name$TAB" "$T/facts" | head -1)"
done <"$T/api.tcprouters"
is "the configuration's routers are all in the page" 7 \
  "$(grep -cE "^router$TAB(http|tcp)${TAB}[^$TAB]*@file$TAB" "$T/facts")"
is "app@file enabled in the page" "router${TAB}http${TAB}app@file${TAB}enabled" \
  "$(grep -F "${TAB}app@file${TAB}" "$T/facts" | grep '^router')"
is "broken@file disabled in the page" "router${TAB}http${TAB}broken@file${TAB}disabled" \
  "$(grep -F "${TAB}broken@file${TAB}" "$T/facts" | grep '^router')"
is "broken@file's error message shown" "error${TAB}broken@file${TAB}$BROKEN_ERR" \
  "$(grep -F "error${TAB}broken@file${TAB}" "$T/facts" | head -1)"
is "halfway@file warning in the page" "router${TAB}http${TAB}halfway@file${TAB}warning" \
  "$(grep -F "${TAB}halfway@file${TAB}" "$T/facts" | grep '^router')"
like "halfway@file's warning names the missing entry point" "^error${TAB}halfway@file$TAB.*nosuchentrypoint" \
  "$(grep -F "error${TAB}halfway@file${TAB}" "$T/facts" | head -1)"

# The dead server DOWN, the live one UP (the service flaky@file).
is "dead server shown DOWN" "server${TAB}http://127.0.0.1:$DEAD${TAB}DOWN" \
  "$(grep -F "server${TAB}http://127.0.0.1:$DEAD$TAB" "$T/facts")"
like "live server shown UP" "server${TAB}http://127.0.0.1:$APP${TAB}UP" \
  "$(grep -F "server${TAB}http://127.0.0.1:$APP$TAB" "$T/facts")"

# The hostile name: a row and a text, nothing parsed from it.
is "hostile router listed (attribute)" "router${TAB}http${TAB}$EVIL@file${TAB}enabled" \
  "$(grep -F "router${TAB}http${TAB}$EVIL@file$TAB" "$T/facts")"
is "hostile router name rendered as text" "name${TAB}$EVIL@file${TAB}$EVIL@file" \
  "$(grep -F "name${TAB}$EVIL@file$TAB" "$T/facts")"
is "no img element in the page" "img${TAB}0" "$(grep "^img$TAB" "$T/facts")"
is "no on* attribute in the page" "onattr${TAB}0" "$(grep "^onattr$TAB" "$T/facts")"
is "one script element (the page's own)" "script${TAB}1" "$(grep "^script$TAB" "$T/facts")"

# Rates: after two polls, every rate cell of an object that
# /api/relais/stats counts is a number ("-" is left for the others).
curl -s "$U/api/relais/stats" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = {}
for kind in ("entryPoints", "routers", "services"):
    for name in d.get(kind) or {}:
        print("%s\t%s" % (kind, name))' >"$T/stats.names"
like "/api/relais/stats counts app@file" "^routers${TAB}app@file\$" "$(grep -F "routers${TAB}app@file" "$T/stats.names")"
grep "^rate$TAB" "$T/facts" | awk -F'\t' 'NR == FNR { have[$1 "\t" $2] = 1; next }
  ($2 "\t" $3) in have { n++; if ($5 !~ /^[0-9]+(\.[0-9])?$/) print }
  END { print "counted", n + 0 }' "$T/stats.names" - >"$T/rates.check"
like "rate cells of counted objects present" '^counted ([5-9]|[1-9][0-9]+)$' "$(tail -1 "$T/rates.check")"
is "every rate cell of a counted object shows a number" "" "$(sed '$d' "$T/rates.check" | head -3)"
like "app@file's rate shown" "^rate${TAB}routers${TAB}app@file${TAB}requests${TAB}[0-9]" \
  "$(grep -F "rate${TAB}routers${TAB}app@file${TAB}requests$TAB" "$T/facts")"
web_total=$(grep -F "total${TAB}web$TAB" "$T/facts" | cut -f3)
like "web's request counter shown" '^[0-9]+$' "$web_total"
ok "web's request counter >= the $SENT requests sent" test "${web_total:-0}" -ge "$SENT" 2>/dev/null

# ---- the filters, from the address (?q=, ?status=)
# visible_routers QUERY: the routers a filtered page leaves visible.
visible_routers() {
  chrome --dump-dom "$U/dashboard/?$1" >"$T/dom-f.html" &&
  python3 "$T/dom.py" "$T/dom-f.html" | sed -n "s/^visible$TAB//p" | sort | tr '\n' ' '
}
is "?q=broken leaves broken@file alone" "broken@file " "$(visible_routers q=broken)"
is "?status=disabled leaves the disabled routers" \
  "$(awk -F'\t' '$2 == "disabled" { print $1 }' "$T/api.routers" | sort | tr '\n' ' ')" \
  "$(visible_routers status=disabled)"

# ---- screenshots, kept (with some traffic going on: at most 600
# requests, 20 s, stopped once the pictures are taken)
( end=$((SECONDS + 20))
  for _ in $(seq 1 600); do
    [ "$SECONDS" -lt "$end" ] || break
    curl -s -m 2 -o /dev/null -H 'Host: app.test' "http://127.0.0.1:$WEB/" || break
    sleep 0.02
  done ) >/dev/null 2>&1 &
LOAD=$!
PIDS+=("$LOAD")
mkdir -p "$SHOTS"
rm -f "$SHOTS/test_dashboard.png" "$SHOTS/test_dashboard-narrow.png"
chrome --hide-scrollbars --window-size=1400,1000 --screenshot="$SHOTS/test_dashboard.png" "$U/dashboard/" >/dev/null
chrome --hide-scrollbars --window-size=420,900 --screenshot="$SHOTS/test_dashboard-narrow.png" "$U/dashboard/" >/dev/null
for f in test_dashboard.png test_dashboard-narrow.png; do
  is "$f is a PNG" "89504e470d0a1a0a" "$(od -An -tx1 -N8 "$SHOTS/$f" 2>/dev/null | tr -d ' \n')"
  size=$(wc -c <"$SHOTS/$f" 2>/dev/null || echo 0)
  ok "$f is not tiny ($size bytes)" test "$size" -gt 30000
  echo "# screenshot: $SHOTS/$f"
done
kill "$LOAD" 2>/dev/null

stop_relais_clean
t_done
