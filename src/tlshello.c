/*
 * tlshello — ClientHello inspection for SNI/ALPN routing (see tlshello.h).
 *
 * th_parse works in two passes over the caller's bytes.  The first walks
 * the record headers only, to decide "need more" / "not TLS" / "whole
 * hello present" without looking inside the hello.  The second reads the
 * hello strictly forward through a cursor that steps over the record
 * headers, so a hello fragmented over several records is parsed in place.
 */
#include "config.h"

#include <string.h>

#include "tlshello.h"

#define TH_REC_HDR 5          /* type, version (2), length (2) */
#define TH_REC_MAX 16384      /* largest record payload, 2^14 */
#define TH_CT_HANDSHAKE 0x16  /* record content type handshake */
#define TH_HS_CLIENT_HELLO 1  /* handshake type client_hello */
#define TH_EXT_SNI 0          /* server_name */
#define TH_EXT_ALPN 16        /* application_layer_protocol_negotiation */
#define TH_EXT_PSK 41         /* pre_shared_key (must be last) */

/** Forward cursor over the handshake bytes spread across records. */
struct th_rd {
    const unsigned char *b; /* the caller's buffer */
    size_t off;             /* buffer offset of the next byte, or of the
                               next record header when rec_left is 0 */
    size_t rec_left;        /* payload bytes left in the current record */
    size_t pos;             /* handshake bytes consumed so far */
};

/**
 * Takes n handshake bytes, copying them to dst unless it is NULL, if
 * they all lie before handshake offset lim; -1 (nothing taken) otherwise.
 * The records were validated by the first pass, so headers are trusted.
 */
static int th_take(struct th_rd *r, size_t lim, void *dst, size_t n)
{
    unsigned char *d = dst;

    if (r->pos > lim || n > lim - r->pos) return -1;
    while (n > 0) {
        size_t k;

        if (r->rec_left == 0) {
            r->rec_left = (size_t)r->b[r->off + 3] << 8 | r->b[r->off + 4];
            r->off += TH_REC_HDR;
        }
        k = n < r->rec_left ? n : r->rec_left;
        if (d) {
            memcpy(d, r->b + r->off, k);
            d += k;
        }
        r->off += k;
        r->rec_left -= k;
        r->pos += k;
        n -= k;
    }
    return 0;
}

/** Reads a big-endian integer of n (1..3) bytes before lim into *v. */
static int th_uint(struct th_rd *r, size_t lim, size_t n, size_t *v)
{
    unsigned char b[3];

    if (th_take(r, lim, b, n) < 0) return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++) *v = *v << 8 | b[i];
    return 0;
}

/** 1 if name[0..n) is a DNS name we route on (see th_parse); lowercases
 *  it in place. */
static int th_dns_ok(char *name, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (c == '.') {
            if (label == 0) return 0; /* leading dot or ".." */
            label = 0;
            continue;
        }
        if (c >= 'A' && c <= 'Z') name[i] = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return 0;
        if (++label > 63) return 0;
    }
    return label > 0; /* no trailing dot */
}

/** Parses a server_name extension ending at handshake offset end. */
static int th_ext_sni(struct th_rd *r, size_t end, struct th_hello *out)
{
    size_t list;

    if (th_uint(r, end, 2, &list) < 0) return -1;
    if (list == 0 || list != end - r->pos) return -1;
    while (r->pos < end) {
        size_t type, nl;

        if (th_uint(r, end, 1, &type) < 0 || th_uint(r, end, 2, &nl) < 0)
            return -1;
        if (nl == 0 || nl > end - r->pos) return -1;
        if (type != 0) { /* not host_name: skipped */
            if (th_take(r, end, NULL, nl) < 0) return -1;
            continue;
        }
        if (out->has_sni || nl >= sizeof(out->sni)) return -1;
        if (th_take(r, end, out->sni, nl) < 0) return -1;
        out->sni[nl] = '\0';
        if (!th_dns_ok(out->sni, nl)) return -1;
        out->has_sni = 1;
    }
    return 0;
}

/** Parses an ALPN extension ending at handshake offset end. */
static int th_ext_alpn(struct th_rd *r, size_t end, struct th_hello *out)
{
    size_t list, used = 0;

    if (th_uint(r, end, 2, &list) < 0) return -1;
    if (list == 0 || list != end - r->pos) return -1;
    out->has_alpn = 1;
    while (r->pos < end) {
        size_t nl;

        if (th_uint(r, end, 1, &nl) < 0 || nl == 0) return -1;
        if (nl > end - r->pos) return -1;
        out->nalpn_offered++;
        if (out->nalpn < TH_MAX_ALPN && used + nl + 1 <= TH_ALPN_BUF) {
            if (th_take(r, end, out->alpn_buf + used, nl) < 0) return -1;
            out->alpn_buf[used + nl] = '\0';
            out->alpn_off[out->nalpn] = (uint16_t)used;
            out->alpn_len[out->nalpn] = (uint8_t)nl;
            out->nalpn++;
            used += nl + 1;
        } else if (th_take(r, end, NULL, nl) < 0) {
            return -1;
        }
    }
    return 0;
}

/** Parses the whole hello (end handshake bytes, header included). */
static int th_body(struct th_rd *r, size_t end, struct th_hello *out)
{
    uint16_t seen[TH_MAX_EXT];
    size_t nseen = 0, v, n;
    int after_psk = 0;

    if (th_take(r, end, NULL, 4) < 0) return -1; /* handshake header */
    if (th_uint(r, end, 2, &v) < 0 || v >> 8 != 3) return -1;
    out->version = (unsigned)v;
    if (th_take(r, end, NULL, 32) < 0) return -1; /* random */
    if (th_uint(r, end, 1, &n) < 0 || n > 32 || th_take(r, end, NULL, n) < 0)
        return -1; /* legacy_session_id */
    if (th_uint(r, end, 2, &n) < 0 || n == 0 || n % 2 != 0 ||
        th_take(r, end, NULL, n) < 0)
        return -1; /* cipher_suites */
    if (th_uint(r, end, 1, &n) < 0 || n == 0 || th_take(r, end, NULL, n) < 0)
        return -1; /* legacy_compression_methods */
    if (r->pos == end) return 0; /* no extensions (TLS <= 1.2) */
    if (th_uint(r, end, 2, &n) < 0 || n != end - r->pos) return -1;
    while (r->pos < end) {
        size_t type, elen, eend;

        if (after_psk) return -1; /* pre_shared_key must be last */
        if (th_uint(r, end, 2, &type) < 0 || th_uint(r, end, 2, &elen) < 0)
            return -1;
        if (elen > end - r->pos) return -1;
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == type) return -1;
        if (nseen == TH_MAX_EXT) return -1;
        seen[nseen++] = (uint16_t)type;
        eend = r->pos + elen;
        if (type == TH_EXT_SNI) {
            if (th_ext_sni(r, eend, out) < 0) return -1;
        } else if (type == TH_EXT_ALPN) {
            if (th_ext_alpn(r, eend, out) < 0) return -1;
        } else {
            if (type == TH_EXT_PSK) after_psk = 1;
            if (th_take(r, eend, NULL, elen) < 0) return -1;
        }
    }
    return 0;
}

/**
 * First pass: walks the record headers.  Returns 1 with *total (hello
 * bytes, handshake header included) and *used (buffer bytes of its
 * records) when the hello's records are all present, 0 when more bytes
 * are needed, -1 when the records cannot hold a valid hello.
 */
static int th_records(const unsigned char *b, size_t len, size_t *total,
                      size_t *used)
{
    unsigned char hh[4]; /* handshake header, gathered across records */
    size_t off = 0, hs = 0, nh = 0, want = 0;
    unsigned nrec = 0;

    for (;;) {
        size_t rlen, avail;

        if (len - off < 1) return 0;
        if (b[off] != TH_CT_HANDSHAKE) return -1;
        if (len - off < 2) return 0;
        if (b[off + 1] != 3) return -1;
        if (len - off < TH_REC_HDR) return 0;
        rlen = (size_t)b[off + 3] << 8 | b[off + 4];
        if (rlen == 0 || rlen > TH_REC_MAX) return -1;
        if (++nrec > TH_MAX_RECORDS) return -1;
        avail = len - off - TH_REC_HDR;
        if (avail > rlen) avail = rlen;
        for (size_t i = 0; nh < 4 && i < avail; i++)
            hh[nh++] = b[off + TH_REC_HDR + i];
        if (nh >= 1 && hh[0] != TH_HS_CLIENT_HELLO) return -1;
        if (nh == 4 && want == 0) {
            size_t body = (size_t)hh[1] << 16 | (size_t)hh[2] << 8 | hh[3];

            if (body > TH_MAX_HELLO) return -1;
            want = 4 + body;
        }
        if (want && hs + rlen > want) return -1; /* bytes past the hello */
        if (avail < rlen) return 0;
        hs += rlen;
        off += TH_REC_HDR + rlen;
        if (want && hs == want) {
            *total = want;
            *used = off;
            return 1;
        }
    }
}

int th_parse(const void *buf, size_t len, struct th_hello *out)
{
    struct th_rd r;
    size_t total = 0, used = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = th_records(buf, len, &total, &used);
    if (rc <= 0) return rc;
    r.b = buf;
    r.off = 0;
    r.rec_left = 0;
    r.pos = 0;
    if (th_body(&r, total, out) < 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    out->hello_bytes = used;
    return 1;
}

const char *th_alpn(const struct th_hello *h, size_t i)
{
    if (i >= h->nalpn) return NULL;
    return h->alpn_buf + h->alpn_off[i];
}
