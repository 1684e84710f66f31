#!/usr/bin/env bash
# The ACME client (src/acme.c) end to end against a real Pebble
# (tests/servers/pebble.sh, 5 % of good nonces rejected with badNonce),
# through tests/integration/acme_driver: http-01 for a SAN certificate,
# tls-alpn-01, chains verified against Pebble's issuing root, the storage
# file (mode 0600, Traefik's acme.json layout, other sections kept), a
# second run served from the storage, renewal by the timer, a failed
# challenge reported then retried, a 0644 storage refused.
. "$(dirname "$0")/lib.sh"

command -v pebble >/dev/null || { echo "Bail out! pebble not installed (apt-get install pebble)"; exit 1; }
command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
DRIVER=${ACME_DRIVER:-$RELAIS_BUILDDIR/tests/integration/acme_driver}
[ -x "$DRIVER" ] || { echo "Bail out! $DRIVER not built"; exit 1; }

. "$RELAIS_SRCDIR/tests/servers/pebble.sh"
trap 'pebble_stop; t_cleanup' EXIT
pebble_start "$T/pebble" >"$T/pebble-start.log" 2>&1 \
  || { echo "Bail out! pebble does not start"; cat "$T/pebble-start.log"; exit 1; }

curl -sf --max-time 10 --cacert "$PEBBLE_CA_CERT" "$PEBBLE_MGMT_URL/roots/0" >"$T/root.pem"
curl -sf --max-time 10 --cacert "$PEBBLE_CA_CERT" "$PEBBLE_MGMT_URL/intermediates/0" >"$T/inter.pem"
ok "Pebble's issuing root and intermediate fetched" \
  grep -q "BEGIN CERTIFICATE" "$T/root.pem" "$T/inter.pem"

ST=$T/acme.json
OUT=$T/out
mkdir -p "$OUT"

# drive NAME ARGS...: runs the driver (bounded), stdout in $T/NAME.out,
# log in $T/NAME.log; the exit status in $T/NAME.rc
drive() {
  local name=$1; shift
  timeout 120 "$DRIVER" --dir "$PEBBLE_DIRECTORY_URL" --ca "$PEBBLE_CA_CERT" \
    --http-port "$PEBBLE_HTTP01_PORT" --alpn-port "$PEBBLE_TLSALPN01_PORT" \
    --storage "$ST" --out "$OUT" --timeout 90 --debug "$@" >"$T/$name.out" 2>"$T/$name.log"
  echo $? >"$T/$name.rc"
}
# field FILE MAIN KEY: value of KEY= on the last CERT line for MAIN
field() { awk -v m="$2" -v k="$3=" '$1=="CERT" && $2==m { for (i=3;i<=NF;i++) if (index($i,k)==1) v=substr($i,length(k)+1) } END { print v }' "$1"; }
# verify_chain PEMFILE: the leaf chains to Pebble's root through the file's
# intermediates
verify_chain() {
  openssl x509 -in "$1" -out "$1.leaf" 2>/dev/null &&
    openssl verify -CAfile "$T/root.pem" -untrusted "$1" "$1.leaf" >/dev/null 2>&1
}
# sans PEMFILE: the DNS names of the leaf, sorted, comma-separated
sans() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tr ',' '\n' |
    sed -n 's/.*DNS:\([^ ]*\).*/\1/p' | sort | paste -sd, -
}
count() { grep -c -- "$1" "$2" || true; }

# ---- 1. fresh storage: http-01 (a + b), tls-alpn-01 (c) --------------------
drive run1 --email ops@relais.test --want http01:a.relais.test,b.relais.test \
  --want alpn:c.relais.test --want http01:a.relais.test,b.relais.test,b.relais.test \
  --expect-certs 2
is "run 1: driver exit status" 0 "$(cat "$T/run1.rc")"
is "run 1: all ordered" "WANT a.relais.test ordered,WANT c.relais.test ordered,WANT a.relais.test ordered" \
  "$(grep '^WANT' "$T/run1.out" | paste -sd, -)"
is "run 1: asking twice (a duplicate SAN dropped) is one order" 1 \
  "$(count 'ordering a certificate for a.relais.test' "$T/run1.log")"
A1=$(field "$T/run1.out" a.relais.test file); C1=$(field "$T/run1.out" c.relais.test file)
SA1=$(field "$T/run1.out" a.relais.test serial); SC1=$(field "$T/run1.out" c.relais.test serial)
ok "run 1: a.relais.test chains to Pebble's root" verify_chain "${A1:-/none}"
ok "run 1: c.relais.test chains to Pebble's root" verify_chain "${C1:-/none}"
is "run 1: a.relais.test SANs" "a.relais.test,b.relais.test" "$(sans "${A1:-/none}")"
is "run 1: c.relais.test SANs" "c.relais.test" "$(sans "${C1:-/none}")"
is "run 1: on_cert SAN list" "b.relais.test" "$(field "$T/run1.out" a.relais.test sans)"
like "run 1: tls-alpn-01 validated through the ALPN responder" "alpn01_hits=[1-9]" "$(tail -1 "$T/run1.out")"
like "run 1: http-01 validated through the responder" "http01_hits=[1-9]" "$(tail -1 "$T/run1.out")"
like "run 1: EC256 certificate key" "prime256v1|P-256" \
  "$(openssl x509 -in "${A1:-/none}" -noout -text 2>/dev/null | grep -E 'ASN1 OID|NIST CURVE')"
is "run 1: storage mode" 600 "$(stat -c %a "$ST" 2>/dev/null)"
ok "run 1: no temporary storage file left" test -z "$(ls "$T" | grep 'acme.json.tmp')"

# layout check (Traefik's acme.json)
layout() {
  python3 - "$ST" "$1" "$2" <<'EOF'
import base64, json, sys
path, resolver, chain = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(path))[resolver]
acc = d["Account"]
assert acc["Email"] == "ops@relais.test" or resolver != "le", acc["Email"]
assert acc["Registration"]["uri"].startswith("https://127.0.0.1:"), acc
assert acc["Registration"]["body"]["status"] == "valid", acc
assert isinstance(acc["KeyType"], str) and acc["KeyType"], acc
base64.b64decode(acc["PrivateKey"], validate=True)
certs = {c["domain"]["main"]: c for c in d["Certificates"]}
for c in certs.values():
    assert c["Store"] == "default"
    assert base64.b64decode(c["key"]).startswith(b"-----BEGIN ")
assert base64.b64decode(certs[chain]["certificate"]).startswith(b"-----BEGIN CERTIFICATE-----")
print(" ".join(sorted(certs)), "|", ",".join(certs["a.relais.test"]["domain"].get("sans", [])) if "a.relais.test" in certs else "")
EOF
}
is "run 1: storage layout (Account, Certificates, domain main/sans)" \
  "a.relais.test c.relais.test | b.relais.test" "$(layout le a.relais.test 2>&1)"
is "run 1: KeyType of the account" "P256" \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["le"]["Account"]["KeyType"])' "$ST")"
ACCT1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["le"]["Account"]["Registration"]["uri"])' "$ST")
is "run 1: the stored chain is what on_cert gave" \
  "$(base64 -w0 <"${A1:-/none}")" \
  "$(python3 -c 'import json,sys; print([c for c in json.load(open(sys.argv[1]))["le"]["Certificates"] if c["domain"]["main"]=="a.relais.test"][0]["certificate"])' "$ST")"
BADNONCE=$(count "badNonce" "$T/run1.log")

# ---- 2. same storage: served from it, nothing ordered -----------------------
drive run2 --email ops@relais.test --want http01:a.relais.test,b.relais.test \
  --want alpn:c.relais.test --expect-certs 2
is "run 2: driver exit status" 0 "$(cat "$T/run2.rc")"
is "run 2: both served from the storage" "WANT a.relais.test stored,WANT c.relais.test stored" \
  "$(grep '^WANT' "$T/run2.out" | paste -sd, -)"
is "run 2: no order sent" 0 "$(count 'ordering a certificate' "$T/run2.log")"
is "run 2: same certificate for a.relais.test" "$SA1" "$(field "$T/run2.out" a.relais.test serial)"
is "run 2: same certificate for c.relais.test" "$SC1" "$(field "$T/run2.out" c.relais.test serial)"

# ---- 3. renewal by the timer -------------------------------------------------
# renew_before = (earliest notAfter - now) - 3: both certificates are good
# at start and due about 3 s later; the 1 s timer re-orders them
NA_A=$(field "$T/run1.out" a.relais.test not_after); NA_C=$(field "$T/run1.out" c.relais.test not_after)
NA=$(( NA_A < NA_C ? NA_A : NA_C ))
RB=$(( NA - $(date +%s) - 3 ))
drive run3 --email ops@relais.test --want http01:a.relais.test,b.relais.test \
  --want alpn:c.relais.test --renew-before "$RB" --check-ms 1000 --expect-certs 4
is "run 3: driver exit status" 0 "$(cat "$T/run3.rc")"
is "run 3: both good at start" "WANT a.relais.test stored,WANT c.relais.test stored" \
  "$(grep '^WANT' "$T/run3.out" | paste -sd, -)"
like "run 3: the timer found them due" "expires soon: renewing" "$(cat "$T/run3.log")"
SA3=$(field "$T/run3.out" a.relais.test serial); SC3=$(field "$T/run3.out" c.relais.test serial)
ok "run 3: a.relais.test renewed (new serial $SA3, was $SA1)" test -n "$SA3" -a "$SA3" != "$SA1"
ok "run 3: c.relais.test renewed (new serial $SC3, was $SC1)" test -n "$SC3" -a "$SC3" != "$SC1"
ok "run 3: renewed chain verifies" verify_chain "$(field "$T/run3.out" a.relais.test file)"
like "run 3: stored account reused" "account reused: $ACCT1" "$(cat "$T/run3.log")"
is "run 3: account URL unchanged in the storage" "$ACCT1" \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["le"]["Account"]["Registration"]["uri"])' "$ST")"
SA3S=$(python3 -c 'import base64,json,sys; print(base64.b64decode([c for c in json.load(open(sys.argv[1]))["le"]["Certificates"] if c["domain"]["main"]=="a.relais.test"][0]["certificate"]).decode())' "$ST" |
  openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//')
is "run 3: the storage holds the renewed certificate" "$SA3" "$SA3S"
BADNONCE=$((BADNONCE + $(count "badNonce" "$T/run3.log")))

# ---- 4. a wrong key authorization: on_error, retry, success ------------------
# another resolver in the same file, RSA2048 certificate keys
cp "$ST" "$T/before4.json"
drive run4 --resolver rsa --key-type RSA2048 --want http01:fail.relais.test \
  --wrong-keyauth 1 --expect-certs 1 --expect-errors 1
is "run 4: driver exit status" 0 "$(cat "$T/run4.rc")"
like "run 4: the spoiled challenge fails, reported by on_error" \
  "^ERROR fail.relais.test .*(unauthorized|incorrect|invalid)" "$(grep '^ERROR' "$T/run4.out" | head -1)"
like "run 4: then retried after 1 s" "retry in 1 s" "$(cat "$T/run4.log")"
is "run 4: error before the certificate" "SPOIL ERROR CERT" \
  "$(awk '$1=="SPOIL"||$1=="ERROR"||$1=="CERT"{print $1}' "$T/run4.out" | paste -sd' ' -)"
F4=$(field "$T/run4.out" fail.relais.test file)
ok "run 4: certificate after the retry chains to Pebble's root" verify_chain "${F4:-/none}"
like "run 4: RSA 2048 certificate key" "Public-Key: \(2048 bit\)" \
  "$(openssl x509 -in "${F4:-/none}" -noout -text 2>/dev/null)"
is "run 4: resolver le's section kept as it was" "same" "$(python3 -c '
import json,sys
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
print("same" if a["le"]==b["le"] and "rsa" in b else "differs")' "$T/before4.json" "$ST")"
is "run 4: storage mode still 600" 600 "$(stat -c %a "$ST")"
BADNONCE=$((BADNONCE + $(count "badNonce" "$T/run4.log")))

# ---- 5. wider permissions refused --------------------------------------------
chmod 644 "$ST"
drive run5 --want http01:a.relais.test --expect-certs 1
is "run 5: driver fails to start" 1 "$(cat "$T/run5.rc")"
like "run 5: 0644 storage refused" "NEWFAIL permissions 644 for .* are too open" "$(cat "$T/run5.out")"
chmod 600 "$ST"

echo "# badNonce answers retried over runs 1, 3, 4 (Pebble's default 5 %): $BADNONCE"

# ---- 6. a new Pebble rejecting 40 % of good nonces ---------------------------
# the stored account of resolver le belongs to the first Pebble (another
# port): a new account is registered; every badNonce is retried
pebble_stop
PEBBLE_WFE_NONCEREJECT=40 pebble_start "$T/pebble2" >"$T/pebble-start2.log" 2>&1 \
  || { echo "Bail out! the second pebble does not start"; cat "$T/pebble-start2.log"; exit 1; }
curl -sf --max-time 10 --cacert "$PEBBLE_CA_CERT" "$PEBBLE_MGMT_URL/roots/0" >"$T/root.pem"
drive run6 --email ops@relais.test --want http01:d.relais.test,e.relais.test --expect-certs 3
is "run 6: driver exit status" 0 "$(cat "$T/run6.rc")"
like "run 6: the stored account of another CA is not used" "stored account belongs to 127.0.0.1:" \
  "$(cat "$T/run6.log")"
like "run 6: a new account registered" "account registered" "$(cat "$T/run6.log")"
N6=$(count "badNonce" "$T/run6.log")
# rejections are random (40 % here, 5 % before): over runs 1, 3, 4 and 6
# together at least one is all but certain (run 6 alone saw none once in
# CI); each one seen was retried, since every run ended with its
# certificates
ok "badNonce answers retried (runs 1, 3, 4: $BADNONCE; run 6: $N6)" test $((BADNONCE + N6)) -gt 0
ok "run 6: certificate chains to the new Pebble's root" \
  verify_chain "$(field "$T/run6.out" d.relais.test file)"
is "run 6: the storage keeps the earlier certificates" \
  "a.relais.test c.relais.test d.relais.test" \
  "$(python3 -c 'import json,sys; print(" ".join(sorted(c["domain"]["main"] for c in json.load(open(sys.argv[1]))["le"]["Certificates"])))' "$ST")"

# ---- 7. freed in the middle of an order (RSA 4096 key generation, HTTP) ------
cp "$ST" "$T/before7.json"
drive run7 --resolver mid --key-type RSA4096 --want http01:g.relais.test --timeout 1
is "run 7: stopped by its timeout" 2 "$(cat "$T/run7.rc")"
like "run 7: printed the end" "^TIMEOUT certs=0" "$(tail -1 "$T/run7.out")"
ok "run 7: storage still parses" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$ST"

for n in run1 run2 run3 run4 run5 run6 run7; do
  if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$T/$n.log"; then
    echo "# sanitizer report in $n:"; sed 's/^/#   /' "$T/$n.log" | head -40
    ok "$n: no sanitizer report" false
  fi
done
if [ "$TAP_FAILED" -ne 0 ]; then
  # ---- 7. freed in the middle of an order (RSA 4096 key generation, HTTP) ------
cp "$ST" "$T/before7.json"
drive run7 --resolver mid --key-type RSA4096 --want http01:g.relais.test --timeout 1
is "run 7: stopped by its timeout" 2 "$(cat "$T/run7.rc")"
like "run 7: printed the end" "^TIMEOUT certs=0" "$(tail -1 "$T/run7.out")"
ok "run 7: storage still parses" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$ST"

for n in run1 run2 run3 run4 run5 run6 run7; do
    echo "# ---- $n.out"; sed 's/^/#   /' "$T/$n.out" | tail -20
    echo "# ---- $n.log"; sed 's/^/#   /' "$T/$n.log" | tail -30
  done
fi
t_done
