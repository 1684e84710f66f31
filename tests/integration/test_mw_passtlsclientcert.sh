#!/usr/bin/env bash
# The passTLSClientCert middleware (plugin passtlsclientcert.so) behind TLS
# termination with client certificates.  A PKI made here with the openssl
# CLI: a root CA, an intermediate with a rich, repetitive subject, a client
# certificate (C, ST, L, O, OU, CN twice, serialNumber, DC, UTF-8 values,
# a multi-valued RDN, SANs of every kind in mixed order) that the client
# sends with the intermediate.  whoami echoes the headers; the expected
# values are computed independently in python3 (ssl, base64, ipaddress,
# urllib.parse) from the PEM files: pem, info with every field, info with
# some fields, only the leaf sent, forged incoming headers removed, no
# client certificate and plain HTTP add nothing, bad options disable the
# middleware and its router with the key path in the log.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $PASSTLSCLIENTCERT_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }

plugin_dir_own ${PASSTLSCLIENTCERT_SO:+"$PASSTLSCLIENTCERT_SO"}
[ -e "$PLUGIN_DIR/passtlsclientcert.so" ] ||
  { echo "Bail out! no passtlsclientcert.so in $RELAIS_PLUGIN_DIR (or PASSTLSCLIENTCERT_SO)"; exit 1; }

# ---- the PKI
K=$T/pki
mkdir -p "$K"
(
  set -e
  cd "$K"
  key() { printf '%s\n' -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes; }
  openssl req -x509 $(key) -days 30 -utf8 \
    -subj "/DC=test/DC=relais/C=FR/ST=Root State/L=Root City/O=Relais Root/CN=Relais Root CA/serialNumber=ROOT-1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout root.key -out root.pem
  openssl req $(key) -utf8 \
    -subj "/DC=org/DC=relais/DC=ca/C=FR/C=DE/ST=Occitanie/ST=Bayern/L=Toulouse/L=München/O=Relais CA/O=Relais & Sons, \"Ltd\"/OU=Signing Section/CN=Old Intermediate Name/CN=Relais Intermediate CA/serialNumber=INT-0042" \
    -keyout int.key -out int.csr
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >int.ext
  openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -set_serial 4242 -days 20 \
    -extfile int.ext -out int.pem
  openssl req $(key) -utf8 \
    -subj "/DC=test/DC=relais/DC=clients/C=FR/C=US/ST=Île-de-France/L=Paris/L=Lyon/O=Relais/O=Relais Clients+OU=Proxy Team/OU=QA ~ tests/CN=first cn/CN=client.relais.test/serialNumber=SN-1234567890/emailAddress=who@relais.test" \
    -keyout client.key -out client.csr
  printf '%s\n' 'basicConstraints=CA:FALSE' 'extendedKeyUsage=clientAuth' \
    'subjectAltName=email:client@relais.test,DNS:client.relais.test,IP:127.0.0.1,DNS:*.wild.relais.test,IP:2001:db8:0:0:1:0:0:1,URI:spiffe://relais.test/client,IP:::ffff:10.1.2.3,email:other@relais.test' \
    >client.ext
  openssl x509 -req -in client.csr -CA int.pem -CAkey int.key \
    -set_serial 0x00E3A1B2C3D4E5F60718293A4B5C6D7E -days 10 -extfile client.ext -out client.pem
  cat client.pem int.pem >chain.pem
  openssl req $(key) -subj "/CN=server" -keyout server.key -out server.csr
  printf 'subjectAltName=%s\n' DNS:pem.test,DNS:all.test,DNS:some.test,DNS:opt.test,DNS:anyc.test,DNS:bad1.test,DNS:bad2.test,DNS:bad3.test,DNS:bad4.test,DNS:bad5.test >server.ext
  openssl x509 -req -in server.csr -CA root.pem -CAkey root.key -set_serial 7 -days 10 \
    -extfile server.ext -out server.pem
) >"$T/pki.log" 2>&1 || { echo "Bail out! openssl could not make the test PKI"; exit 1; }

# ---- the expected values, independently of the plugin
cat >"$T/expect.py" <<'PY'
"""expect.py MODE JSON-OPTIONS PEM...: the header value passTLSClientCert
should send for the certificates in the PEM files (in order).
MODE pem: base64 of each DER joined by ",".  MODE info: Traefik's info
string for the options (the YAML map as JSON), URL-query-escaped."""
import base64, ipaddress, json, ssl, sys, urllib.parse

mode, opts, files = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]

def dn(rdns, sel, issuer):
    flat = [kv for rdn in rdns for kv in rdn]
    out = []
    if sel.get("domainComponent"):
        out += ["DC=" + v for k, v in flat if k == "domainComponent"]
    for opt, attr, pre in (("country", "countryName", "C"),
                           ("province", "stateOrProvinceName", "ST"),
                           ("locality", "localityName", "L"),
                           ("organization", "organizationName", "O"),
                           ("organizationalUnit", "organizationalUnitName", "OU")):
        if opt == "organizationalUnit" and issuer:
            continue
        if sel.get(opt):
            out += [pre + "=" + v for k, v in flat if k == attr and v]
    for opt, attr, pre in (("serialNumber", "serialNumber", "SN"),
                           ("commonName", "commonName", "CN")):
        vals = [v for k, v in flat if k == attr]
        if sel.get(opt) and vals and vals[-1]:
            out.append(pre + "=" + vals[-1])   # single-valued: the last wins
    return ",".join(out)

def ip(text):
    a = ipaddress.ip_address(text)
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    return str(a)

def info(c):
    fields = []
    for key, label, issuer in (("subject", "Subject", False), ("issuer", "Issuer", True)):
        if key in opts:
            v = dn(c[key], opts[key], issuer)
            if v:
                fields.append('%s="%s"' % (label, v))
    if opts.get("serialNumber"):
        fields.append('SerialNumber="%d"' % int(c["serialNumber"], 16))
    if opts.get("notBefore"):
        fields.append('NB="%d"' % ssl.cert_time_to_seconds(c["notBefore"]))
    if opts.get("notAfter"):
        fields.append('NA="%d"' % ssl.cert_time_to_seconds(c["notAfter"]))
    if opts.get("sans"):
        san = c.get("subjectAltName", ())
        vals = ([v for k, v in san if k == "DNS"] + [v for k, v in san if k == "email"] +
                [ip(v.strip()) for k, v in san if k == "IP Address"] +
                [v for k, v in san if k == "URI"])
        if vals:
            fields.append('SAN="%s"' % ",".join(vals))
    return ";".join(fields)

if mode == "pem":
    ders = [ssl.PEM_cert_to_DER_cert(open(f).read()) for f in files]
    print(",".join(base64.b64encode(d).decode() for d in ders))
else:
    certs = [ssl._ssl._test_decode_cert(f) for f in files]
    raw = ",".join(info(c) for c in certs)
    if mode == "raw":
        print(raw)
    else:
        print(urllib.parse.quote_plus(raw, safe=""))
PY
expect() { python3 "$T/expect.py" "$@"; }

ALL='{"notAfter": true, "notBefore": true, "sans": true, "serialNumber": true,
  "subject": {"country": true, "province": true, "locality": true, "organization": true,
              "organizationalUnit": true, "commonName": true, "serialNumber": true,
              "domainComponent": true},
  "issuer": {"country": true, "province": true, "locality": true, "organization": true,
             "commonName": true, "serialNumber": true, "domainComponent": true}}'
SOME='{"notBefore": true, "subject": {"commonName": true, "organizationalUnit": true},
  "issuer": {"country": true, "domainComponent": true}}'
BOTH='{"serialNumber": true, "sans": true}'

# ---- relais
start_whoami w1; P1=$WHOAMI_PORT
WS=$(free_port); WEB=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    pem:   {rule: Host(\`pem.test\`),  service: s, middlewares: [pem],      tls: {options: mtls}}
    all:   {rule: Host(\`all.test\`),  service: s, middlewares: [infoall],  tls: {options: mtls}}
    some:  {rule: Host(\`some.test\`), service: s, middlewares: [infosome], tls: {options: mtls}}
    opt:   {rule: Host(\`opt.test\`),  service: s, middlewares: [both],     tls: {options: optional}}
    anyc:  {rule: Host(\`anyc.test\`), service: s, middlewares: [both],     tls: {options: anycert}}
    plain: {rule: Host(\`plain.test\`), service: s, middlewares: [both], entryPoints: [web]}
    badr1: {rule: Host(\`bad1.test\`), service: s, middlewares: [bad1], tls: {options: mtls}}
    badr2: {rule: Host(\`bad2.test\`), service: s, middlewares: [bad2], tls: {options: mtls}}
    badr3: {rule: Host(\`bad3.test\`), service: s, middlewares: [bad3], tls: {options: mtls}}
    badr4: {rule: Host(\`bad4.test\`), service: s, middlewares: [bad4], tls: {options: mtls}}
    badr5: {rule: Host(\`bad5.test\`), service: s, middlewares: [bad5], tls: {options: mtls}}
  middlewares:
    pem: {passTLSClientCert: {pem: true}}
    infoall: {passTLSClientCert: {info: $(echo $ALL)}}
    infosome: {passTLSClientCert: {pem: false, info: $(echo $SOME)}}
    both: {passTLSClientCert: {pem: true, info: $BOTH}}
    bad1: {passTLSClientCert: {pem: maybe}}
    bad2: {passTLSClientCert: {info: {subject: {organisation: true}}}}
    bad3: {passTLSClientCert: {info: true}}
    bad4: {passTLSClientCert: {info: {issuer: {organizationalUnit: true}}}}
    bad5: {passTLSClientCert: {info: {notAfter: 3, subject: [commonName]}}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
tls:
  certificates:
    - {certFile: "$K/server.pem", keyFile: "$K/server.key"}
  options:
    mtls: {clientAuth: {caFiles: ["$K/root.pem"], clientAuthType: RequireAndVerifyClientCert}}
    optional: {clientAuth: {caFiles: ["$K/root.pem"], clientAuthType: VerifyClientCertIfGiven}}
    anycert: {clientAuth: {clientAuthType: RequireAnyClientCert}}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  websecure:
    address: "127.0.0.1:$WS"
  web:
    address: "127.0.0.1:$WEB"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$WS"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

FORGE=(-H 'X-Forwarded-Tls-Client-Cert: forged' -H 'X-Forwarded-Tls-Client-Cert-Info: forged'
       -H 'x-forwarded-tls-client-cert: forged again')
CHAIN=(--cert "$K/chain.pem" --key "$K/client.key")
LEAF=(--cert "$K/client.pem" --key "$K/client.key")
# fetch NAME [CURL-ARGS...]: the echo body of GET https://NAME/ into $T/body,
# prints the status
fetch() {
  local n=$1; shift
  curl -s -o "$T/body" -w '%{http_code}' --max-time 5 --cacert "$K/root.pem" \
    --resolve "$n:$WS:127.0.0.1" "$@" "https://$n:$WS/"
}
# hval NAME: the value of the echoed header NAME (exact case), one per line
hval() { sed -n "s/^$1: //p" "$T/body"; }
# hcount: how many echoed X-Forwarded-Tls-Client-Cert* headers (any case)
hcount() { grep -ci '^x-forwarded-tls-client-cert' "$T/body"; }

# ---- pem: the leaf and the intermediate, base64 DER joined by ","
is "pem: 200" 200 "$(fetch pem.test "${CHAIN[@]}" "${FORGE[@]}")"
is "pem: X-Forwarded-Tls-Client-Cert = base64(leaf DER),base64(intermediate DER)" \
  "$(expect pem '{}' "$K/client.pem" "$K/int.pem")" "$(hval X-Forwarded-Tls-Client-Cert)"
is "pem: forged headers removed, exactly one header left" 1 "$(hcount)"
ok "pem: two certificates, separated by one comma" \
  test "$(hval X-Forwarded-Tls-Client-Cert | tr -cd ',' | wc -c)" = 1

# ---- info with every field
is "info (all): 200" 200 "$(fetch all.test "${CHAIN[@]}" "${FORGE[@]}")"
is "info (all): X-Forwarded-Tls-Client-Cert-Info, escaped, both certificates" \
  "$(expect info "$ALL" "$K/client.pem" "$K/int.pem")" "$(hval X-Forwarded-Tls-Client-Cert-Info)"
is "info (all): no pem header, forged ones removed" 1 "$(hcount)"
# the same, unescaped, against a hand-written literal for the leaf (guards
# the python model itself: field order, last CN/SN, SAN grouping, IPs)
nb=$(python3 -c 'import ssl,sys; c=ssl._ssl._test_decode_cert(sys.argv[1]); print(int(ssl.cert_time_to_seconds(c["notBefore"])), int(ssl.cert_time_to_seconds(c["notAfter"])))' "$K/client.pem")
leaf_lit="Subject=\"DC=test,DC=relais,DC=clients,C=FR,C=US,ST=Île-de-France,L=Paris,L=Lyon,O=Relais,O=Relais Clients,OU=Proxy Team,OU=QA ~ tests,SN=SN-1234567890,CN=client.relais.test\";Issuer=\"DC=org,DC=relais,DC=ca,C=FR,C=DE,ST=Occitanie,ST=Bayern,L=Toulouse,L=München,O=Relais CA,O=Relais & Sons, \"Ltd\",SN=INT-0042,CN=Relais Intermediate CA\";SerialNumber=\"$(python3 -c 'print(0xE3A1B2C3D4E5F60718293A4B5C6D7E)')\";NB=\"${nb% *}\";NA=\"${nb#* }\";SAN=\"client.relais.test,*.wild.relais.test,client@relais.test,other@relais.test,127.0.0.1,2001:db8::1:0:0:1,10.1.2.3,spiffe://relais.test/client\""
got_raw=$(hval X-Forwarded-Tls-Client-Cert-Info | python3 -c 'import sys,urllib.parse; print(urllib.parse.unquote_plus(sys.stdin.read().strip()))')
is "info (all): the leaf's part, unescaped, as written by hand" "$leaf_lit" "${got_raw%%\",Subject=*}\""
ok "info (all): the escaping keeps only A-Za-z0-9-_.~ (space as +)" \
  test -z "$(hval X-Forwarded-Tls-Client-Cert-Info | tr -d 'A-Za-z0-9_.~+%-')"
like "info (all): the intermediate follows after a comma, without SAN" \
  '%22%2CSubject%3D%22DC%3Dorg%2CDC%3Drelais%2CDC%3Dca%2CC%3DFR%2CC%3DDE%2C.*%22%3BNA%3D%22[0-9]+%22$' \
  "$(hval X-Forwarded-Tls-Client-Cert-Info)"

# ---- info with some fields (pem: false)
is "info (some): 200" 200 "$(fetch some.test "${CHAIN[@]}")"
is "info (some): only the selected fields" \
  "$(expect info "$SOME" "$K/client.pem" "$K/int.pem")" "$(hval X-Forwarded-Tls-Client-Cert-Info)"
is "info (some): unescaped" \
  "Subject=\"OU=Proxy Team,OU=QA ~ tests,CN=client.relais.test\";Issuer=\"DC=org,DC=relais,DC=ca,C=FR,C=DE\";NB=\"${nb% *}\",Subject=\"OU=Signing Section,CN=Relais Intermediate CA\";Issuer=\"DC=test,DC=relais,C=FR\";NB=\"$(python3 -c 'import ssl,sys; print(int(ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(sys.argv[1])["notBefore"])))' "$K/int.pem")\"" \
  "$(expect raw "$SOME" "$K/client.pem" "$K/int.pem")"
is "info (some): one header" 1 "$(hcount)"

# ---- pem and info together; only the leaf sent (RequireAnyClientCert)
is "leaf only: 200" 200 "$(fetch anyc.test "${LEAF[@]}" "${FORGE[@]}")"
is "leaf only: pem of one certificate" "$(expect pem '{}' "$K/client.pem")" \
  "$(hval X-Forwarded-Tls-Client-Cert)"
is "leaf only: info of one certificate" "$(expect info "$BOTH" "$K/client.pem")" \
  "$(hval X-Forwarded-Tls-Client-Cert-Info)"
is "leaf only: two headers" 2 "$(hcount)"
is "optional client certificate, given: pem" "$(expect pem '{}' "$K/client.pem" "$K/int.pem")" \
  "$(fetch opt.test "${CHAIN[@]}" >/dev/null; hval X-Forwarded-Tls-Client-Cert)"
is "optional client certificate, given: info (serial, SANs)" \
  "$(expect info "$BOTH" "$K/client.pem" "$K/int.pem")" "$(hval X-Forwarded-Tls-Client-Cert-Info)"

# ---- nothing added without a client certificate; forged ones removed
is "no client certificate: 200" 200 "$(fetch opt.test "${FORGE[@]}")"
is "no client certificate: no X-Forwarded-Tls-Client-Cert* header at all" 0 "$(hcount)"
ok "no client certificate: the other headers still pass" grep -q '^User-Agent: curl' "$T/body"
is "plain HTTP: 200" 200 "$(curl -s -o "$T/body" -w '%{http_code}' --max-time 5 \
  -H 'Host: plain.test' "${FORGE[@]}" "http://127.0.0.1:$WEB/")"
is "plain HTTP: no X-Forwarded-Tls-Client-Cert* header at all" 0 "$(hcount)"
is "required client certificate missing: handshake refused" 000 "$(fetch pem.test)"

# ---- bad options: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad[0-9]@file\.passTLSClientCert'
ok "pem: maybe -> wrong type, with its key path" \
  wait_log "middleware bad1@file disabled: ${P/\[0-9\]/1}\.pem: "
ok "info.subject.organisation -> unknown option, with its key path" \
  wait_log "middleware bad2@file disabled: ${P/\[0-9\]/2}\.info\.subject\.organisation: unknown option"
ok "info: true -> expected a map, with its key path" \
  wait_log "middleware bad3@file disabled: ${P/\[0-9\]/3}\.info: expected a map"
ok "info.issuer.organizationalUnit (not in Traefik) -> unknown option" \
  wait_log "middleware bad4@file disabled: ${P/\[0-9\]/4}\.info\.issuer\.organizationalUnit: unknown option"
ok "info.notAfter: 3 -> wrong type, with its key path" \
  wait_log "middleware bad5@file disabled: ${P/\[0-9\]/5}\.info\.notAfter: "
ok "info.subject: a list -> expected a map (reported too)" \
  wait_log "middleware bad5@file disabled: ${P/\[0-9\]/5}\.info\.subject: expected a map"
for i in 1 2 3 4 5; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(fetch bad$i.test "${CHAIN[@]}")"
done
ok "the good routers still serve" test "$(fetch pem.test "${CHAIN[@]}")" = 200
t_done
