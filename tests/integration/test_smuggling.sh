#!/usr/bin/env bash
# test_smuggling.sh — request-smuggling cases of issue 7 that the llhttp
# vectors (test_vectors.sh, which accept any of 400/501/505 and check
# nothing of an accepted body) and the vtc files (14_cl_and_te: CL then
# TE; 03_chunked_request: one extension and one trailer) leave open.
# Raw bytes over a socket through relais to whoami --log (router on every
# path).
#   rejected: TE.CL, TE.TE obfuscations (xchunked, "chunked, identity",
#     "chunked, gzip", TE twice, chunked then identity on two lines, space
#     or tab before the colon, obs-fold, vertical tab, bare CR, NUL,
#     quoted, chunked;param), Transfer-Encoding in HTTP/1.0, chunk sizes
#     with 0x / a sign / 17 hex digits, an obs-folded trailer: the exact
#     status line "HTTP/1.1 400 Bad Request", "Connection: close", relais
#     closes, and nothing of it reaches whoami (no line in its --log, not
#     even the request hidden in the body);
#   accepted: chunk extensions (token, quoted with ';' and '\"', BWS,
#     several), trailers (several, one of them a Content-Length: 100 that
#     must not reframe anything), "CHUNKED", tab OWS, leading zeros: whoami
#     /upload answers "received N bytes sha256=H" with N and H those of
#     the decoded body, and a request pipelined right after the body is
#     answered next (relais and whoami ended the body on the same byte).
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null 2>&1; then
  echo "Bail out! python3 not found (CI installs it: see tests/run.sh)"
  exit 1
fi

start_whoami smug || { echo "Bail out! whoami did not start"; exit 1; }
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: smug
  services:
    smug:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$WHOAMI_PORT"
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
start_relais "$T/relais.yaml" "$RP" || {
  echo "Bail out! relais did not start"; sed 's/^/# /' "$T/relais.log"; exit 1; }

# send.py FILE: sends FILE's bytes to relais on a new connection, reads
# until relais closes (3 s at most) and prints "closed" or "open", then
# per complete response "STATUS-LINE<TAB>BODY" (body with \r \n escaped).
cat >"$T/send.py" <<'EOF'
import socket, sys, time

port, path = int(sys.argv[1]), sys.argv[2]
data = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.sendall(data)
buf, closed, end = b"", False, time.time() + 3
while time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        b = s.recv(65536)
    except socket.timeout:
        break
    except ConnectionResetError:
        closed = "reset"
        break
    if not b:
        closed = True
        break
    buf += b
s.close()
print("closed" if closed is True else ("reset" if closed else "open"))
while b"\r\n\r\n" in buf:
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    cl = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v.strip())
    if len(rest) < cl:
        break
    body = rest[:cl].replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    print(lines[0].decode("latin-1") + "\t" + body.decode("latin-1"))
    buf = rest[cl:]
EOF

# reject NAME HEADERS BODY: POST /smug-bad-NAME with HEADERS (printf %b
# escapes, each line CRLF-terminated by the caller) and BODY; the body
# hides "GET /smug-bad-NAME-inner" so that a desync would show at whoami.
# Expects exactly one answer, 400 Bad Request with Connection: close.
reject() {
  local name=$1 hdrs=$2 body=$3 ver=${4:-1.1} out
  printf "%b" "POST /smug-bad-$name HTTP/$ver\r\nHost: smug.test\r\n$hdrs\r\n$body" >"$T/$name.bin"
  printf "GET /smug-bad-%s-inner HTTP/1.1\r\nHost: smug.test\r\n\r\n" "$name" >>"$T/$name.bin"
  python3 "$T/send.py" "$RP" "$T/$name.bin" >"$T/$name.out" 2>&1
  out=$(cut -f1 "$T/$name.out" | paste -sd'|')
  is "reject $name: one 400 Bad Request, then relais closes" \
    "closed|HTTP/1.1 400 Bad Request" "$out"
}

# accept NAME HEADERS CHUNKED-BODY DECODED: POST /upload with HEADERS and
# CHUNKED-BODY (printf %b escapes), then a pipelined GET; expects
# "received N bytes sha256=H" for the DECODED bytes, then the GET's echo.
N_ACCEPT=0
accept() {
  local name=$1 hdrs=$2 body=$3 decoded=$4 n sum out
  N_ACCEPT=$((N_ACCEPT + 1))
  printf "%b" "POST /upload?case=smug-ok-$name HTTP/1.1\r\nHost: smug.test\r\n$hdrs\r\n$body" \
    >"$T/$name.bin"
  printf "GET /smug-ok-%s-after HTTP/1.1\r\nHost: smug.test\r\nConnection: close\r\n\r\n" \
    "$name" >>"$T/$name.bin"
  printf "%b" "$decoded" >"$T/$name.decoded"
  n=$(wc -c <"$T/$name.decoded")
  sum=$(sha256sum "$T/$name.decoded" | cut -d' ' -f1)
  python3 "$T/send.py" "$RP" "$T/$name.bin" >"$T/$name.out" 2>&1
  out=$(sed -n 2p "$T/$name.out")
  is "accept $name: whoami got exactly the $n decoded body bytes" \
    "HTTP/1.1 200 OK	received $n bytes sha256=$sum\\n" "$out"
  like "accept $name: the pipelined request is answered next (framing in sync)" \
    "^HTTP/1.1 200 OK	.*GET /smug-ok-$name-after HTTP/1.1" "$(sed -n 3p "$T/$name.out")"
}

B='5\r\nhello\r\n0\r\n\r\n'   # a valid chunked body

# ---- TE.CL: Transfer-Encoding first, then Content-Length
reject te_cl 'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n' "$B"
reject te_cl_zero 'Transfer-Encoding: chunked\r\nContent-Length: 0\r\n' "$B"
# ---- TE.TE obfuscations
reject te_xchunked 'Transfer-Encoding: xchunked\r\n' "$B"
reject te_chunked_identity 'Transfer-Encoding: chunked, identity\r\n' "$B"
reject te_chunked_gzip 'Transfer-Encoding: chunked, gzip\r\n' "$B"
reject te_twice 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n' "$B"
reject te_twice_list 'Transfer-Encoding: chunked, chunked\r\n' "$B"
reject te_then_identity 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n' "$B"
reject te_space_colon 'Transfer-Encoding : chunked\r\n' "$B"
reject te_tab_colon 'Transfer-Encoding\t: chunked\r\n' "$B"
reject te_obs_fold 'Transfer-Encoding:\r\n chunked\r\n' "$B"
reject te_line_folded 'X-A: 1\r\n Transfer-Encoding: chunked\r\n' "$B"
reject te_leading_space ' Transfer-Encoding: chunked\r\n' "$B"
reject te_vtab_before 'Transfer-Encoding:\x0bchunked\r\n' "$B"
reject te_vtab_after 'Transfer-Encoding: chunked\x0b\r\n' "$B"
reject te_bare_cr 'Transfer-Encoding: \rchunked\r\n' "$B"
reject te_nul 'Transfer-Encoding: chunked\x00\r\n' "$B"
reject te_quoted 'Transfer-Encoding: "chunked"\r\n' "$B"
reject te_param 'Transfer-Encoding: chunked;q=1\r\n' "$B"
reject te_ff 'Transfer-Encoding:\x0cchunked\r\n' "$B"
# ---- HTTP/1.0 with Transfer-Encoding
reject http10_te 'Transfer-Encoding: chunked\r\n' "$B" 1.0
# ---- chunk sizes and trailers that another parser could read otherwise
reject size_0x 'Transfer-Encoding: chunked\r\n' '0x5\r\nhello\r\n0\r\n\r\n'
reject size_plus 'Transfer-Encoding: chunked\r\n' '+5\r\nhello\r\n0\r\n\r\n'
reject size_minus 'Transfer-Encoding: chunked\r\n' '-5\r\nhello\r\n0\r\n\r\n'
reject size_overflow 'Transfer-Encoding: chunked\r\n' '10000000000000005\r\nhello\r\n0\r\n\r\n'
reject size_bare_lf 'Transfer-Encoding: chunked\r\n' '5\nhello\r\n0\r\n\r\n'
reject trailer_fold 'Transfer-Encoding: chunked\r\n' '5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n'
reject trailer_bare_lf 'Transfer-Encoding: chunked\r\n' '5\r\nhello\r\n0\r\nX-T: a\n\r\n'

# ---- accepted variants: the backend gets exactly the decoded body
TE='Transfer-Encoding: chunked\r\n'
accept ext_token "$TE" '5;a=b\r\nhello\r\n0\r\n\r\n' 'hello'
accept ext_quoted "$TE" '5;a="x;y\\"z"\r\nhello\r\n6;b;c=d\r\n world\r\n0\r\n\r\n' 'hello world'
accept ext_bws "$TE" '5 ;a = b\r\nhello\r\n0;last\r\n\r\n' 'hello'
accept ext_many "$TE" '3;a;b;c;d=1;e="2"\r\nabc\r\n0\r\n\r\n' 'abc'
accept trailers "$TE" '5\r\nhello\r\n0\r\nX-T: 1\r\nContent-Length: 100\r\nX-U:\r\n\r\n' 'hello'
accept trailer_te "$TE" '5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n' 'hello'
accept te_upper 'Transfer-Encoding: CHUNKED\r\n' "$B" 'hello'
accept te_tab_ows 'Transfer-Encoding:\tchunked\t\r\n' "$B" 'hello'
accept te_empty_elements 'Transfer-Encoding: ,chunked,\r\n' "$B" 'hello'
accept size_zeros "$TE" '000A\r\n0123456789\r\n0000\r\n\r\n' '0123456789'
accept crlf_in_data "$TE" '7\r\n0\r\n\r\nGE\r\n0\r\n\r\n' '0\r\n\r\nGE'

# ---- nothing of a rejected request reached whoami
curl -s -o /dev/null --max-time 5 -H 'Host: smug.test' "http://127.0.0.1:$RP/smug-end" || true
for _ in $(seq 1 20); do grep -q '/smug-end' "$T/smug.log" && break; sleep 0.05; done
is "whoami received nothing of the rejected requests" "" \
  "$(grep 'smug-bad' "$T/smug.log" | paste -sd'|')"
is "whoami received each accepted request and its pipelined follower" \
  "$((2 * N_ACCEPT))" \
  "$(grep -c 'smug-ok-' "$T/smug.log")"
ok "relais is still running" kill -0 "$RELAIS_PID"
stop_relais_clean
if [ "$TAP_FAILED" -ne 0 ]; then
  echo "# whoami log:"; sed 's/^/#   /' "$T/smug.log"
  echo "# relais log (warnings, last 20):"
  grep -v ' INF ' "$T/relais.log" | grep -v 'DBG \[config\]' | tail -20 | sed 's/^/#   /'
fi
t_done
