/*
 * proxyproto — PROXY protocol v1/v2 parser and builder (see proxyproto.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

/* The v2 signature: CR LF CR LF NUL CR LF "QUIT" LF. */
static const unsigned char pp_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- version 1 ------------------------------------------------------ */

/* Step results of the v1 scanner. */
#define PP_BAD (-1) /* the bytes seen cannot start a valid line */
#define PP_MORE 0   /* the bytes ran out; valid so far */
#define PP_OK 1     /* the element was read */

/** A cursor over the v1 line: bytes b[i..n). */
struct pp_scan {
    const unsigned char *b; /* start of the buffer */
    size_t i;               /* next byte to read */
    size_t n;               /* bytes that may be read (<= PP_V1_MAX) */
};

/** Consumes the literal lit; PP_MORE when the bytes end inside it. */
static int pp_lit(struct pp_scan *s, const char *lit)
{
    for (; *lit; lit++) {
        if (s->i >= s->n) return PP_MORE;
        if (s->b[s->i] != (unsigned char)*lit) return PP_BAD;
        s->i++;
    }
    return PP_OK;
}

/**
 * Consumes one of the NULL-terminated alternatives (none a prefix of
 * another); *which gets its index.  PP_MORE when the bytes end while one
 * alternative still matches.
 */
static int pp_alt(struct pp_scan *s, const char *const *alts, int *which)
{
    int more = 0;

    for (int k = 0; alts[k]; k++) {
        size_t j = 0;
        const char *a = alts[k];

        while (a[j] && s->i + j < s->n &&
               s->b[s->i + j] == (unsigned char)a[j])
            j++;
        if (!a[j]) {
            s->i += j;
            *which = k;
            return PP_OK;
        }
        if (s->i + j >= s->n) more = 1;
    }
    return more ? PP_MORE : PP_BAD;
}

/**
 * Consumes a decimal number 0..max without leading zeros.  The number
 * must be followed by a non-digit (PP_MORE when the bytes end first).
 */
static int pp_dec(struct pp_scan *s, unsigned max, unsigned *out)
{
    size_t start = s->i;
    unsigned v = 0;

    while (s->i < s->n && s->b[s->i] >= '0' && s->b[s->i] <= '9') {
        if (s->i > start && v == 0) return PP_BAD; /* leading zero */
        v = v * 10 + (unsigned)(s->b[s->i] - '0');
        if (v > max) return PP_BAD;
        s->i++;
    }
    if (s->i >= s->n) return PP_MORE;
    if (s->i == start) return PP_BAD;
    *out = v;
    return PP_OK;
}

/** Consumes a dotted-quad IPv4 address into *a (network order). */
static int pp_ip4(struct pp_scan *s, struct in_addr *a)
{
    unsigned char q[4];

    for (int k = 0; k < 4; k++) {
        unsigned v;
        int r;

        if (k > 0 && (r = pp_lit(s, ".")) != PP_OK) return r;
        if ((r = pp_dec(s, 255, &v)) != PP_OK) return r;
        q[k] = (unsigned char)v;
    }
    memcpy(&a->s_addr, q, 4);
    return PP_OK;
}

/** Consumes an IPv6 address text (<= 45 chars) into *a via inet_pton. */
static int pp_ip6(struct pp_scan *s, struct in6_addr *a)
{
    char tmp[46];
    size_t start = s->i, n;

    while (s->i < s->n) {
        unsigned char c = s->b[s->i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
              (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
            break;
        if (s->i - start >= sizeof(tmp) - 1) return PP_BAD;
        s->i++;
    }
    if (s->i >= s->n) return PP_MORE;
    n = s->i - start;
    if (n == 0) return PP_BAD;
    memcpy(tmp, s->b + start, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, a) == 1 ? PP_OK : PP_BAD;
}

/** Fills a sockaddr_storage with an IPv4 address and port. */
static void pp_set4(struct sockaddr_storage *ss, const void *addr,
                    unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    memcpy(&sin->sin_addr, addr, 4);
}

/** Fills a sockaddr_storage with an IPv6 address and port. */
static void pp_set6(struct sockaddr_storage *ss, const void *addr,
                    unsigned port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, addr, 16);
}

/* Runs one scanner step; leaves the function unless it succeeded. */
#define PP_STEP(expr)                                                         \
    do {                                                                      \
        int r_ = (expr);                                                      \
        if (r_ != PP_OK) return r_ == PP_MORE && len < PP_V1_MAX ? 0 : -1;    \
    } while (0)

/** Parses a v1 line (buf starts with 'P'); see pp_parse. */
static ssize_t pp_parse_v1(const unsigned char *buf, size_t len,
                           struct pp_info *out)
{
    static const char *const fams[] = {"TCP4", "TCP6", "UNKNOWN", NULL};
    struct pp_scan s = {buf, 0, len < PP_V1_MAX ? len : PP_V1_MAX};
    int fam = -1;

    out->version = 1;
    PP_STEP(pp_lit(&s, "PROXY "));
    PP_STEP(pp_alt(&s, fams, &fam));
    if (fam == 2) { /* UNKNOWN: anything up to CRLF is ignored */
        out->local = 1;
        PP_STEP(s.i < s.n ? PP_OK : PP_MORE);
        if (buf[s.i] == ' ') {
            for (s.i++; s.i < s.n && buf[s.i] != '\r'; s.i++)
                if (buf[s.i] == '\n') return -1;
        }
        PP_STEP(pp_lit(&s, "\r\n"));
        return (ssize_t)s.i;
    }
    if (fam == 0) {
        struct in_addr a4[2];
        unsigned p[2];

        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_ip4(&s, &a4[0]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_ip4(&s, &a4[1]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_dec(&s, 65535, &p[0]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_dec(&s, 65535, &p[1]));
        PP_STEP(pp_lit(&s, "\r\n"));
        pp_set4(&out->src, &a4[0], p[0]);
        pp_set4(&out->dst, &a4[1], p[1]);
    } else {
        struct in6_addr a6[2];
        unsigned p[2];

        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_ip6(&s, &a6[0]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_ip6(&s, &a6[1]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_dec(&s, 65535, &p[0]));
        PP_STEP(pp_lit(&s, " "));
        PP_STEP(pp_dec(&s, 65535, &p[1]));
        PP_STEP(pp_lit(&s, "\r\n"));
        pp_set6(&out->src, &a6[0], p[0]);
        pp_set6(&out->dst, &a6[1], p[1]);
    }
    return (ssize_t)s.i;
}

/* ---- version 2 ------------------------------------------------------ */

/** CRC32c (Castagnoli, reflected 0x82F63B78) of b[0..n), the bytes
 *  [zoff, zoff+4) counted as zeros. */
static uint32_t pp_crc32c(const unsigned char *b, size_t n, size_t zoff)
{
    uint32_t crc = 0xFFFFFFFFu;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (i >= zoff && i < zoff + 4) ? 0 : b[i];

        crc ^= c;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/** 1 if v[0..n) is a usable text TLV value: 1..255 bytes, no control
 *  bytes (so it survives as a C string); copies it NUL-terminated. */
static int pp_text_tlv(const unsigned char *v, size_t n, char dst[256])
{
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] == 0x7F) return 0;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 1;
}

/** 1 if b[0..n) is exactly a sequence of well-formed TLVs. */
static int pp_tlv_seq_ok(const unsigned char *b, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t vl;

        if (n - i < 3) return 0;
        vl = (size_t)b[i + 1] << 8 | b[i + 2];
        if (vl > n - i - 3) return 0;
        i += 3 + vl;
    }
    return 1;
}

/**
 * Parses the TLVs in hdr[off..end) of a whole v2 header hdr[0..end).
 * Returns 0 when they are all valid (out filled), -1 otherwise.
 */
static int pp_parse_tlvs(const unsigned char *hdr, size_t off, size_t end,
                         struct pp_info *out)
{
    unsigned seen = 0; /* bit per single-instance type */

    while (off < end) {
        unsigned type;
        size_t vl;
        const unsigned char *v;

        if (end - off < 3) return -1;
        type = hdr[off];
        vl = (size_t)hdr[off + 1] << 8 | hdr[off + 2];
        if (vl > end - off - 3) return -1;
        v = hdr + off + 3;
        switch (type) {
        case PP2_TYPE_ALPN:
            if (seen & 1u || !pp_text_tlv(v, vl, out->alpn)) return -1;
            seen |= 1u;
            break;
        case PP2_TYPE_AUTHORITY:
            if (seen & 2u || !pp_text_tlv(v, vl, out->authority)) return -1;
            seen |= 2u;
            break;
        case PP2_TYPE_CRC32C: {
            uint32_t want;

            if (seen & 4u || vl != 4) return -1;
            seen |= 4u;
            want = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
                   (uint32_t)v[2] << 8 | v[3];
            if (pp_crc32c(hdr, end, off + 3) != want) return -1;
            out->has_crc32c = 1;
            break;
        }
        case PP2_TYPE_UNIQUE_ID:
            if (seen & 8u || vl == 0 || vl > sizeof(out->unique_id))
                return -1;
            seen |= 8u;
            memcpy(out->unique_id, v, vl);
            out->unique_id_len = vl;
            break;
        case PP2_TYPE_SSL:
            if (seen & 16u || vl < 5 || !pp_tlv_seq_ok(v + 5, vl - 5))
                return -1;
            seen |= 16u;
            out->has_ssl = 1;
            out->ssl_client = v[0];
            out->ssl_verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 |
                              (uint32_t)v[3] << 8 | v[4];
            break;
        default: /* NOOP, NETNS, custom, future: skipped */
            break;
        }
        out->ntlv++;
        off += 3 + vl;
    }
    return 0;
}

/** Parses a v2 header (buf starts with CR); see pp_parse. */
static ssize_t pp_parse_v2(const unsigned char *buf, size_t len,
                           struct pp_info *out)
{
    size_t n = len < sizeof(pp_sig) ? len : sizeof(pp_sig);
    size_t plen, alen;
    unsigned char fam;

    out->version = 2;
    if (memcmp(buf, pp_sig, n) != 0) return -1;
    if (len < 13) return 0;
    if (buf[12] != 0x20 && buf[12] != 0x21) return -1; /* version, command */
    if (len < 14) return 0;
    fam = buf[13];
    switch (fam) {
    case 0x00: alen = 0; break;
    case 0x11: case 0x12: alen = 12; break;
    case 0x21: case 0x22: alen = 36; break;
    case 0x31: case 0x32: alen = 216; break;
    default: return -1;
    }
    if (len < PP_V2_HDR) return 0;
    plen = (size_t)buf[14] << 8 | buf[15];
    if (plen > PP_MAX_V2) return -1;
    if (buf[12] == 0x21 && plen < alen) return -1;
    if (len < PP_V2_HDR + plen) return 0;
    out->v2_fam = fam;
    if (buf[12] == 0x20) { /* LOCAL: protocol block discarded */
        out->local = 1;
        return (ssize_t)(PP_V2_HDR + plen);
    }
    if (fam == 0x11) {
        pp_set4(&out->src, buf + 16, (unsigned)buf[24] << 8 | buf[25]);
        pp_set4(&out->dst, buf + 20, (unsigned)buf[26] << 8 | buf[27]);
    } else if (fam == 0x21) {
        pp_set6(&out->src, buf + 16, (unsigned)buf[48] << 8 | buf[49]);
        pp_set6(&out->dst, buf + 32, (unsigned)buf[50] << 8 | buf[51]);
    } else {
        out->local = 1; /* UNSPEC, UDP, UNIX: fall back to UNSPEC */
    }
    if (pp_parse_tlvs(buf, PP_V2_HDR + alen, PP_V2_HDR + plen, out) < 0)
        return -1;
    return (ssize_t)(PP_V2_HDR + plen);
}

ssize_t pp_parse(const void *buf, size_t len, struct pp_info *out)
{
    const unsigned char *b = buf;
    ssize_t r;

    memset(out, 0, sizeof(*out));
    if (len == 0) return 0;
    if (b[0] == 'P') r = pp_parse_v1(b, len, out);
    else if (b[0] == pp_sig[0]) r = pp_parse_v2(b, len, out);
    else r = -1;
    if (r <= 0) memset(out, 0, sizeof(*out));
    return r;
}

/* ---- building -------------------------------------------------------- */

/** Writes the v1 line; see pp_build. */
static size_t pp_build_v1(const struct sockaddr *src,
                          const struct sockaddr *dst, char *buf, size_t cap)
{
    char line[PP_V1_MAX + 1], s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sp, dp;
    const char *proto;
    int n;

    if (!src || !dst || src->sa_family != dst->sa_family ||
        (src->sa_family != AF_INET && src->sa_family != AF_INET6)) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        if (src->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)src;
            const struct sockaddr_in *b = (const struct sockaddr_in *)dst;

            proto = "TCP4";
            inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
            inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
            sp = ntohs(a->sin_port);
            dp = ntohs(b->sin_port);
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
            const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;

            proto = "TCP6";
            inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
            inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
            sp = ntohs(a->sin6_port);
            dp = ntohs(b->sin6_port);
        }
        n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n", proto, s,
                     d, sp, dp);
    }
    if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > cap) return 0;
    memcpy(buf, line, (size_t)n);
    return (size_t)n;
}

/** Writes the v2 header; see pp_build. */
static size_t pp_build_v2(const struct sockaddr *src,
                          const struct sockaddr *dst, unsigned char *buf,
                          size_t cap)
{
    size_t alen;

    if (!src && !dst) { /* LOCAL, UNSPEC, no address */
        if (cap < PP_V2_HDR) return 0;
        memcpy(buf, pp_sig, sizeof(pp_sig));
        buf[12] = 0x20;
        buf[13] = 0x00;
        buf[14] = buf[15] = 0;
        return PP_V2_HDR;
    }
    if (!src || !dst || src->sa_family != dst->sa_family) return 0;
    if (src->sa_family == AF_INET) alen = 12;
    else if (src->sa_family == AF_INET6) alen = 36;
    else return 0;
    if (cap < PP_V2_HDR + alen) return 0;
    memcpy(buf, pp_sig, sizeof(pp_sig));
    buf[12] = 0x21;
    buf[14] = 0;
    buf[15] = (unsigned char)alen;
    if (alen == 12) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)src;
        const struct sockaddr_in *b = (const struct sockaddr_in *)dst;

        buf[13] = 0x11;
        memcpy(buf + 16, &a->sin_addr, 4);
        memcpy(buf + 20, &b->sin_addr, 4);
        memcpy(buf + 24, &a->sin_port, 2); /* already network order */
        memcpy(buf + 26, &b->sin_port, 2);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;

        buf[13] = 0x21;
        memcpy(buf + 16, &a->sin6_addr, 16);
        memcpy(buf + 32, &b->sin6_addr, 16);
        memcpy(buf + 48, &a->sin6_port, 2);
        memcpy(buf + 50, &b->sin6_port, 2);
    }
    return PP_V2_HDR + alen;
}

size_t pp_build(int version, const struct sockaddr *src,
                const struct sockaddr *dst, void *buf, size_t cap)
{
    if (version == 1) return pp_build_v1(src, dst, buf, cap);
    if (version == 2) return pp_build_v2(src, dst, buf, cap);
    return 0;
}
