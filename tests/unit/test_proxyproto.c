/*
 * test_proxyproto — unit tests of the PROXY protocol v1/v2 parser and
 * builder (src/proxyproto.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxyproto.h"
#include "tap.h"

static struct pp_info pi; /* result of the last parse */

/** Parses a NUL-terminated string. */
static ssize_t ps(const char *s)
{
    return pp_parse(s, strlen(s), &pi);
}

/** 1 if every strict prefix of buf[0..n) parses as "need more" (0). */
static int prefixes_need_more(const void *buf, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct pp_info tmp;

        if (pp_parse(buf, k, &tmp) != 0) {
            printf("# prefix %zu of %zu did not return 0\n", k, n);
            return 0;
        }
    }
    return 1;
}

/** 1 if ss is AF_INET with the given dotted address and port. */
static int is4(const struct sockaddr_storage *ss, const char *addr,
               unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    struct in_addr a;

    if (inet_pton(AF_INET, addr, &a) != 1) return 0;
    return ss->ss_family == AF_INET && sin->sin_addr.s_addr == a.s_addr &&
           ntohs(sin->sin_port) == port;
}

/** 1 if ss is AF_INET6 with the given address text and port. */
static int is6(const struct sockaddr_storage *ss, const char *addr,
               unsigned port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    struct in6_addr a;

    if (inet_pton(AF_INET6, addr, &a) != 1) return 0;
    return ss->ss_family == AF_INET6 &&
           memcmp(&sin6->sin6_addr, &a, 16) == 0 &&
           ntohs(sin6->sin6_port) == port;
}

/** 1 if ss is all zero (AF_UNSPEC, no address). */
static int is_zero(const struct sockaddr_storage *ss)
{
    static const struct sockaddr_storage z;

    return memcmp(ss, &z, sizeof(z)) == 0;
}

/* ---- v1 ------------------------------------------------------------- */

static void test_v1_valid(void)
{
    static const char *lines[] = {
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
        "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n",
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    };
    char buf[256];

    ok(ps(lines[0]) == 47, "v1 TCP4 length");
    ok(pi.version == 1 && pi.local == 0 && pi.v2_fam == 0 && pi.ntlv == 0,
       "v1 TCP4 version/local");
    ok(is4(&pi.src, "192.168.0.1", 56324), "v1 TCP4 src");
    ok(is4(&pi.dst, "192.168.0.11", 443), "v1 TCP4 dst");

    snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n\r\n", lines[0]);
    ok(ps(buf) == 47, "v1 TCP4 followed by payload: header length only");

    ok(ps(lines[1]) == 56, "v1 TCP4 longest (56)");
    ok(is4(&pi.src, "255.255.255.255", 65535) &&
           is4(&pi.dst, "255.255.255.255", 65535),
       "v1 TCP4 longest addresses");
    ok(ps(lines[2]) == 32 && is4(&pi.src, "0.0.0.0", 0) &&
           is4(&pi.dst, "0.0.0.0", 0),
       "v1 TCP4 zeros (single 0 is not a leading zero)");

    ok(ps(lines[3]) == (ssize_t)strlen(lines[3]), "v1 TCP6 length");
    ok(pi.version == 1 && !pi.local, "v1 TCP6 not local");
    ok(is6(&pi.src, "2001:db8::1", 1) && is6(&pi.dst, "::1", 65535),
       "v1 TCP6 addresses/ports");
    ok(ps(lines[4]) == 104, "v1 TCP6 longest (104)");
    ok(is6(&pi.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
       "v1 TCP6 all-ones address");
    ok(ps("PROXY TCP6 ::ffff:10.1.2.3 FE80::A:b 80 8080\r\n") == 46 &&
           is6(&pi.src, "::ffff:10.1.2.3", 80) &&
           is6(&pi.dst, "fe80::a:b", 8080),
       "v1 TCP6 v4-mapped and upper-case hex");
    ok(ps("PROXY TCP6 :: :: 0 0\r\n") == 22 && is6(&pi.src, "::", 0),
       "v1 TCP6 unspecified addresses");
    ok(ps("PROXY TCP6 1:2:3:4:5:6:7:8 0001:2::3 7 9\r\n") == 42 &&
           is6(&pi.src, "1:2:3:4:5:6:7:8", 7) && is6(&pi.dst, "1:2::3", 9),
       "v1 TCP6 full form, 4-digit group with zeros (inet_pton rules)");

    ok(ps(lines[5]) == 15, "v1 UNKNOWN short form (15)");
    ok(pi.version == 1 && pi.local == 1 && is_zero(&pi.src) &&
           is_zero(&pi.dst),
       "v1 UNKNOWN is local, no addresses");
    ok(ps(lines[6]) == 107, "v1 UNKNOWN worst case (107)");
    ok(pi.local == 1 && is_zero(&pi.src), "v1 UNKNOWN long form local");
    ok(ps("PROXY UNKNOWN whatever \x01\x7f\xff junk\r\nrest") == 33,
       "v1 UNKNOWN ignores anything before CRLF");
    ok(ps("PROXY UNKNOWN \r\n") == 16, "v1 UNKNOWN with a lone space");

    /* 107 is the limit, whatever the content */
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memcpy(buf + 105, "\r\n", 2);
    ok(pp_parse(buf, 200, &pi) == 107, "v1 line of exactly 107 bytes");
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memcpy(buf + 106, "\r\n", 2);
    ok(pp_parse(buf, 200, &pi) == -1, "v1 line of 108 bytes refused");
    ok(pp_parse(buf, 107, &pi) == -1, "v1: 107 bytes without CRLF: -1");
    ok(pp_parse(buf, 106, &pi) == 0, "v1: 106 bytes without CRLF: 0");

    /* every truncation of every valid line asks for more */
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        ok(prefixes_need_more(lines[i], strlen(lines[i])),
           "v1 every prefix of line %zu returns 0", i);
    ok(prefixes_need_more("PROXY TCP6 ::ffff:10.1.2.3 FE80::A:b 80 8080\r\n",
                          46),
       "v1 every prefix of the v4-mapped line returns 0");
}

static void test_v1_bad(void)
{
    static const char *bad[] = {
        /* line endings */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY UNKNOWN\n",
        "PROXY UNKNOWN\r\r\n",
        "PROXY UNKNOWN foo\nbar\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY UNKNOWN\tx\r\n",
        "PROXY\r\n",
        "PROXY \r\n",
        /* spaces */
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
        "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
        " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        /* keywords */
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY unknown\r\n",
        "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        /* IPv4 addresses */
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.00 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.010 1 2\r\n",
        "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.1000 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 .1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3. 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",
        "PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.-4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 16909060 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 ::ffff:5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
        "PROXY TCP4 1.2.3.4\r\n",
        "PROXY TCP4\r\n",
        /* ports */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 4294967297\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n",
        /* IPv6 addresses */
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP6 ::1::2 ::1 1 2\r\n",
        "PROXY TCP6 12345::1 ::1 1 2\r\n",
        "PROXY TCP6 :: g::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",
        "PROXY TCP6 :1 ::1 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n",
        "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0 ::1 1 2\r\n",
        "PROXY TCP6 ::1 1 2\r\n",
        /* not PROXY at all */
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
        "POST / HTTP/1.1\r\n",
        "PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);

    for (size_t i = 0; i < nbad; i++) {
        ssize_t r = ps(bad[i]);

        ok(r == -1, "v1 bad %zu refused: \"%.*s\"", i,
           (int)strcspn(bad[i], "\r\n"), bad[i]);
        ok(pi.version == 0 && pi.local == 0 && is_zero(&pi.src),
           "v1 bad %zu: out zeroed", i);
    }

    /* embedded NUL */
    ok(pp_parse("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, &pi) == -1,
       "v1 NUL inside the line refused");
    ok(pp_parse("PROXY UNKNOWN \0\r\n", 17, &pi) == 17,
       "v1 UNKNOWN ignores even a NUL before CRLF");

    /* errors are reported as soon as the bytes show them */
    ok(ps("G") == -1, "first byte not P/CR: -1 at once");
    ok(ps("PROXZ") == -1, "PROXZ: -1 before the line ends");
    ok(ps("PROXY TCP4 01") == -1, "leading zero: -1 before the line ends");
    ok(ps("PROXY TCP4 256") == -1, "octet > 255: -1 before the line ends");
    ok(ps("PROXY TCP4 1.2.3.4 5.6.7.8 65536") == -1,
       "port > 65535: -1 before the line ends");
    ok(ps("PROXY TCP6 ::1 ::1 1 2\n") == -1, "lone LF: -1");
    ok(ps("PROXY TCP4 1.2.3.4 5.6.7.8 655") == 0, "partial port: 0");
    ok(ps("PROXY TCP4 1.2.3.4 5.6.7.8 0") == 0, "0 then end: 0");
    ok(ps("PROXY TCP4 1.2.3.4 5.6.7.8 0 1\r") == 0, "CR then end: 0");
    ok(ps("PROXY TCP6 ::ffff:1.2.3") == 0, "partial v6 address: 0");
    ok(ps("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0") == -1,
       "v6 text over 45 chars: -1 before the space");
    ok(ps("PROXY TCP") == 0 && ps("PROXY U") == 0 && ps("P") == 0 &&
           ps("") == 0,
       "partial keywords: 0");
    ok(ps("PROXY UNKNOWN") == 0 && ps("PROXY UNKNOWN junk") == 0,
       "UNKNOWN without CRLF yet: 0");
}

/* ---- v2 ------------------------------------------------------------- */

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/** Test-side CRC32c (table driven, independent of the module's). */
static uint32_t crc32c(const unsigned char *b, size_t n)
{
    static uint32_t tab[256];
    uint32_t c = 0xFFFFFFFFu;

    if (!tab[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t v = i;
            for (int k = 0; k < 8; k++)
                v = v & 1 ? (v >> 1) ^ 0x82F63B78u : v >> 1;
            tab[i] = v;
        }
    }
    for (size_t i = 0; i < n; i++) c = tab[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

/** A v2 header under construction. */
struct v2b {
    unsigned char b[1024]; /* bytes */
    size_t n;              /* length so far */
};

/** Starts a header: signature, ver_cmd, fam; length patched by v2_end. */
static void v2_start(struct v2b *h, unsigned char ver_cmd, unsigned char fam)
{
    memcpy(h->b, sig, 12);
    h->b[12] = ver_cmd;
    h->b[13] = fam;
    h->n = 16;
}

/** Appends raw bytes. */
static void v2_raw(struct v2b *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

/** Appends a TLV. */
static void v2_tlv(struct v2b *h, unsigned char type, const void *v,
                   size_t n)
{
    h->b[h->n] = type;
    h->b[h->n + 1] = (unsigned char)(n >> 8);
    h->b[h->n + 2] = (unsigned char)n;
    if (n) memcpy(h->b + h->n + 3, v, n);
    h->n += 3 + n;
}

/** Patches the length field; returns the total length. */
static size_t v2_end(struct v2b *h)
{
    h->b[14] = (unsigned char)((h->n - 16) >> 8);
    h->b[15] = (unsigned char)(h->n - 16);
    return h->n;
}

/** Appends an IPv4 address block 10.0.0.1:12345 -> 192.168.1.2:443. */
static void v2_addr4(struct v2b *h)
{
    static const unsigned char a[12] = {10,   0,    0, 1,    192, 168,
                                        1,    2,    0x30, 0x39, 0x01, 0xBB};
    v2_raw(h, a, sizeof(a));
}

/** Appends an IPv6 address block 2001:db8::1:1000 -> ::1:8443. */
static void v2_addr6(struct v2b *h)
{
    unsigned char a[36] = {0};

    inet_pton(AF_INET6, "2001:db8::1", a);
    inet_pton(AF_INET6, "::1", a + 16);
    a[32] = 1000 >> 8;
    a[33] = 1000 & 0xFF;
    a[34] = 8443 >> 8;
    a[35] = 8443 & 0xFF;
    v2_raw(h, a, sizeof(a));
}

/** Appends a CRC32C TLV over the finished header and fixes its value
 *  (the TLV must be the last thing added). */
static size_t v2_end_crc(struct v2b *h)
{
    static const unsigned char z[4] = {0};
    size_t at, n;
    uint32_t c;

    v2_tlv(h, PP2_TYPE_CRC32C, z, 4);
    at = h->n - 4;
    n = v2_end(h);
    c = crc32c(h->b, n);
    h->b[at] = (unsigned char)(c >> 24);
    h->b[at + 1] = (unsigned char)(c >> 16);
    h->b[at + 2] = (unsigned char)(c >> 8);
    h->b[at + 3] = (unsigned char)c;
    return n;
}

static void test_v2_valid(void)
{
    struct v2b h;
    size_t n;
    unsigned char big[PP_MAX_HEADER + 64];

    ok(crc32c((const unsigned char *)"123456789", 9) == 0xE3069283u,
       "test CRC32c check value");

    /* TCP4 */
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    n = v2_end(&h);
    ok(n == 28 && pp_parse(h.b, n, &pi) == 28, "v2 TCP4 length 28");
    ok(pi.version == 2 && !pi.local && pi.v2_fam == 0x11 && pi.ntlv == 0,
       "v2 TCP4 version/local/fam");
    ok(is4(&pi.src, "10.0.0.1", 12345) && is4(&pi.dst, "192.168.1.2", 443),
       "v2 TCP4 addresses/ports");
    ok(prefixes_need_more(h.b, n), "v2 TCP4 every prefix returns 0");
    memcpy(h.b + n, "\x16\x03\x01", 3);
    ok(pp_parse(h.b, n + 3, &pi) == 28, "v2 TCP4 followed by payload");

    /* TCP6 */
    v2_start(&h, 0x21, 0x21);
    v2_addr6(&h);
    n = v2_end(&h);
    ok(n == 52 && pp_parse(h.b, n, &pi) == 52, "v2 TCP6 length 52");
    ok(pi.version == 2 && !pi.local && pi.v2_fam == 0x21, "v2 TCP6 fam");
    ok(is6(&pi.src, "2001:db8::1", 1000) && is6(&pi.dst, "::1", 8443),
       "v2 TCP6 addresses/ports");
    ok(prefixes_need_more(h.b, n), "v2 TCP6 every prefix returns 0");

    /* LOCAL */
    v2_start(&h, 0x20, 0x00);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 16 && pi.version == 2 && pi.local == 1 &&
           is_zero(&pi.src) && is_zero(&pi.dst),
       "v2 LOCAL UNSPEC, no address");
    ok(prefixes_need_more(h.b, n), "v2 LOCAL every prefix returns 0");
    v2_start(&h, 0x20, 0x11);
    v2_addr4(&h);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 28 && pi.local == 1 && is_zero(&pi.src) &&
           pi.v2_fam == 0x11,
       "v2 LOCAL with TCP4 addresses: addresses ignored");
    v2_start(&h, 0x20, 0x21);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 16 && pi.local == 1,
       "v2 LOCAL with TCP6 family and no address: accepted");
    v2_start(&h, 0x20, 0x00);
    v2_raw(&h, "\x02\x00\x09garbage", 10); /* TLV overrun, not read */
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 26 && pi.local == 1 && pi.ntlv == 0 &&
           pi.authority[0] == '\0',
       "v2 LOCAL payload skipped unread");

    /* PROXY with a family we do not use: local */
    v2_start(&h, 0x21, 0x00);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a.example", 9);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == (ssize_t)n && pi.local == 1 &&
           pi.ntlv == 1 && strcmp(pi.authority, "a.example") == 0,
       "v2 PROXY UNSPEC: local, TLVs parsed from offset 16");
    v2_start(&h, 0x21, 0x12);
    v2_addr4(&h);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 28 && pi.local == 1 && pi.v2_fam == 0x12 &&
           is_zero(&pi.src),
       "v2 PROXY UDP4: falls back to local");
    v2_start(&h, 0x21, 0x22);
    v2_addr6(&h);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == 52 && pi.local == 1 && pi.v2_fam == 0x22,
       "v2 PROXY UDP6: falls back to local");
    for (int f = 0x31; f <= 0x32; f++) {
        unsigned char un[216];

        memset(un, 0, sizeof(un));
        memcpy(un, "/run/a.sock", 11);
        memcpy(un + 108, "/run/b.sock", 11);
        v2_start(&h, 0x21, (unsigned char)f);
        v2_raw(&h, un, sizeof(un));
        v2_tlv(&h, PP2_TYPE_NOOP, NULL, 0);
        n = v2_end(&h);
        ok(pp_parse(h.b, n, &pi) == 235 && pi.local == 1 && pi.ntlv == 1 &&
               pi.v2_fam == f,
           "v2 PROXY UNIX 0x%x: local, TLV after 216 address bytes", f);
    }

    /* TLVs */
    {
        unsigned char uid[128], ssl[64];
        size_t sn = 0;

        for (int i = 0; i < 128; i++) uid[i] = (unsigned char)(i * 7);
        ssl[sn++] = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN;
        memcpy(ssl + sn, "\x00\x00\x00\x00", 4);
        sn += 4;
        memcpy(ssl + sn, "\x21\x00\x07TLSv1.3", 10);
        sn += 10;
        memcpy(ssl + sn, "\x22\x00\x0b" "client.test", 14);
        sn += 14;

        v2_start(&h, 0x21, 0x11);
        v2_addr4(&h);
        v2_tlv(&h, PP2_TYPE_ALPN, "h2", 2);
        v2_tlv(&h, PP2_TYPE_AUTHORITY, "www.Example.com", 15);
        v2_tlv(&h, PP2_TYPE_NOOP, "\0\0\0", 3);
        v2_tlv(&h, PP2_TYPE_UNIQUE_ID, uid, sizeof(uid));
        v2_tlv(&h, PP2_TYPE_SSL, ssl, sn);
        v2_tlv(&h, PP2_TYPE_NETNS, "blue", 4);
        v2_tlv(&h, 0xE0, "custom", 6);
        v2_tlv(&h, 0xF8, NULL, 0);
        n = v2_end_crc(&h);
        ok(pp_parse(h.b, n, &pi) == (ssize_t)n, "v2 TCP4 with 9 TLVs");
        ok(pi.ntlv == 9, "v2 TLV count 9 (got %u)", pi.ntlv);
        ok(is4(&pi.src, "10.0.0.1", 12345), "v2 TLVs: addresses kept");
        ok(strcmp(pi.alpn, "h2") == 0, "v2 ALPN TLV copied");
        ok(strcmp(pi.authority, "www.Example.com") == 0,
           "v2 AUTHORITY TLV copied as sent");
        ok(pi.unique_id_len == 128 && memcmp(pi.unique_id, uid, 128) == 0,
           "v2 UNIQUE_ID TLV (128 bytes) copied");
        ok(pi.has_ssl && pi.ssl_client == 3 && pi.ssl_verify == 0,
           "v2 SSL TLV summarised");
        ok(pi.has_crc32c == 1, "v2 CRC32C TLV verified");
        ok(prefixes_need_more(h.b, n), "v2 TLV header: every prefix 0");

        /* the CRC covers everything: any flipped byte is caught */
        {
            int caught = 1;
            for (size_t i = 16 + 12; i < n; i++) {
                if (i == n - 7) continue; /* the CRC TLV's type: below */
                h.b[i] ^= 0x40;
                if (pp_parse(h.b, n, &pi) != -1) {
                    printf("# flip at %zu not refused\n", i);
                    caught = 0;
                }
                h.b[i] ^= 0x40;
            }
            ok(caught, "v2 any flipped byte after the addresses: -1");
            h.b[n - 7] = 0xE1; /* CRC TLV turned into an unknown type */
            ok(pp_parse(h.b, n, &pi) == (ssize_t)n && !pi.has_crc32c &&
                   pi.ntlv == 9,
               "v2 CRC TLV retyped: skipped, has_crc32c 0");
            h.b[n - 7] = PP2_TYPE_CRC32C;
            h.b[16] ^= 1; /* address byte: only the CRC catches it */
            ok(pp_parse(h.b, n, &pi) == -1,
               "v2 flipped address byte caught by CRC32C");
            h.b[16] ^= 1;
            ok(pp_parse(h.b, n, &pi) == (ssize_t)n, "v2 restored: valid");
        }
    }

    /* SSL TLV with just the fixed part; verify non-zero */
    v2_start(&h, 0x21, 0x21);
    v2_addr6(&h);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\x00\x00\x00\x05", 5);
    n = v2_end(&h);
    ok(pp_parse(h.b, n, &pi) == (ssize_t)n && pi.has_ssl &&
           pi.ssl_client == 1 && pi.ssl_verify == 5 && pi.has_crc32c == 0,
       "v2 SSL TLV of 5 bytes, verify=5");

    /* the largest accepted header: 536 bytes after the fixed part */
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    memset(big, 0, sizeof(big));
    v2_tlv(&h, PP2_TYPE_NOOP, big, PP_MAX_V2 - 12 - 3);
    n = v2_end(&h);
    ok(n == PP_MAX_HEADER && pp_parse(h.b, n, &pi) == (ssize_t)n,
       "v2 header of PP_MAX_HEADER (%d) bytes accepted", PP_MAX_HEADER);
    ok(pp_parse(h.b, n - 1, &pi) == 0, "v2 largest header minus 1: 0");
}

/** Parses a finished v2 header, expecting -1. */
static int v2_bad(struct v2b *h)
{
    size_t n = v2_end(h);

    return pp_parse(h->b, n, &pi) == -1 && pi.version == 0;
}

static void test_v2_bad(void)
{
    struct v2b h;
    unsigned char b[64];
    char s[300];

    /* each signature byte, seen alone, refuses at once */
    for (int i = 0; i < 12; i++) {
        memcpy(b, sig, 12);
        b[i] ^= 0x20;
        if (i == 0) b[0] = 0x0E; /* keep it from being a 'P' */
        ok(pp_parse(b, (size_t)i + 1, &pi) == -1,
           "v2 signature byte %d wrong: -1 with %d bytes", i, i + 1);
    }
    /* version / command */
    {
        static const unsigned char vc[] = {0x00, 0x01, 0x10, 0x11, 0x22,
                                           0x2F, 0x30, 0x31, 0xF1, 0x12};
        for (size_t i = 0; i < sizeof(vc); i++) {
            memcpy(b, sig, 12);
            b[12] = vc[i];
            ok(pp_parse(b, 13, &pi) == -1,
               "v2 version/command 0x%02x: -1 at byte 13", vc[i]);
        }
    }
    /* families */
    {
        static const unsigned char fm[] = {0x01, 0x02, 0x10, 0x13, 0x20,
                                           0x23, 0x30, 0x33, 0x40, 0x41,
                                           0xFF, 0x03, 0x1F};
        for (size_t i = 0; i < sizeof(fm); i++) {
            memcpy(b, sig, 12);
            b[12] = 0x21;
            b[13] = fm[i];
            ok(pp_parse(b, 14, &pi) == -1,
               "v2 family 0x%02x: -1 at byte 14", fm[i]);
            b[12] = 0x20;
            ok(pp_parse(b, 14, &pi) == -1,
               "v2 LOCAL with family 0x%02x: -1 too", fm[i]);
        }
    }
    /* length over the cap, refused with the fixed part alone */
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x11;
    b[14] = (PP_MAX_V2 + 1) >> 8;
    b[15] = (PP_MAX_V2 + 1) & 0xFF;
    ok(pp_parse(b, 16, &pi) == -1, "v2 length %d > PP_MAX_V2: -1",
       PP_MAX_V2 + 1);
    b[14] = b[15] = 0xFF;
    ok(pp_parse(b, 16, &pi) == -1, "v2 length 65535: -1");
    b[12] = 0x20;
    ok(pp_parse(b, 16, &pi) == -1, "v2 LOCAL length 65535: -1");
    b[12] = 0x21;
    b[14] = PP_MAX_V2 >> 8;
    b[15] = PP_MAX_V2 & 0xFF;
    ok(pp_parse(b, 16, &pi) == 0, "v2 length PP_MAX_V2, body missing: 0");

    /* length too small for the family */
    v2_start(&h, 0x21, 0x11);
    v2_raw(&h, "\1\2\3\4\5\6\7\x8\x9\xa\xb", 11);
    ok(v2_bad(&h), "v2 TCP4 with 11 address bytes");
    v2_start(&h, 0x21, 0x11);
    ok(v2_bad(&h), "v2 TCP4 with 0 address bytes");
    v2_start(&h, 0x21, 0x21);
    v2_addr4(&h);
    v2_raw(&h, b, 23);
    ok(v2_bad(&h), "v2 TCP6 with 35 address bytes");
    v2_start(&h, 0x21, 0x12);
    ok(v2_bad(&h), "v2 UDP4 with 0 address bytes");
    v2_start(&h, 0x21, 0x31);
    v2_raw(&h, b, 64);
    ok(v2_bad(&h), "v2 UNIX with 64 address bytes");
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x21;
    b[14] = 0;
    b[15] = 35;
    ok(pp_parse(b, 16, &pi) == -1, "v2 TCP6 length 35: -1 before the body");

    /* TLV framing */
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_raw(&h, "\x04", 1);
    ok(v2_bad(&h), "v2 1 stray byte after the addresses");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_raw(&h, "\x04\x00", 2);
    ok(v2_bad(&h), "v2 TLV header cut (2 bytes)");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_raw(&h, "\x04\x00\x05xxxx", 7);
    ok(v2_bad(&h), "v2 TLV value overruns the header");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_NOOP, "x", 1);
    v2_raw(&h, "\xE0\xFF\xFF", 3);
    ok(v2_bad(&h), "v2 second TLV length 65535");
    v2_start(&h, 0x21, 0x00);
    v2_raw(&h, "\x02\x00", 2);
    ok(v2_bad(&h), "v2 UNSPEC PROXY: TLVs must be well formed");

    /* TLV contents */
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, NULL, 0);
    ok(v2_bad(&h), "v2 empty AUTHORITY");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a\0b", 3);
    ok(v2_bad(&h), "v2 AUTHORITY with NUL");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a\nb", 3);
    ok(v2_bad(&h), "v2 AUTHORITY with LF");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a\x7f", 2);
    ok(v2_bad(&h), "v2 AUTHORITY with DEL");
    memset(s, 'a', sizeof(s));
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, s, 256);
    ok(v2_bad(&h), "v2 AUTHORITY of 256 bytes");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, s, 255);
    v2_end(&h);
    ok(pp_parse(h.b, h.n, &pi) == (ssize_t)h.n &&
           strlen(pi.authority) == 255,
       "v2 AUTHORITY of 255 bytes accepted");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a", 1);
    v2_tlv(&h, PP2_TYPE_AUTHORITY, "a", 1);
    ok(v2_bad(&h), "v2 AUTHORITY twice");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_ALPN, "h2", 2);
    v2_tlv(&h, PP2_TYPE_ALPN, "h2", 2);
    ok(v2_bad(&h), "v2 ALPN twice");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_ALPN, NULL, 0);
    ok(v2_bad(&h), "v2 empty ALPN");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_UNIQUE_ID, s, 129);
    ok(v2_bad(&h), "v2 UNIQUE_ID of 129 bytes");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_UNIQUE_ID, NULL, 0);
    ok(v2_bad(&h), "v2 empty UNIQUE_ID");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_UNIQUE_ID, "x", 1);
    v2_tlv(&h, PP2_TYPE_UNIQUE_ID, "y", 1);
    ok(v2_bad(&h), "v2 UNIQUE_ID twice");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\0\0\0", 4);
    ok(v2_bad(&h), "v2 SSL TLV of 4 bytes");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\0\0\0\0\x21\x00\x09TLS", 11);
    ok(v2_bad(&h), "v2 SSL sub-TLV overrun");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\0\0\0\0\x21\x00", 7);
    ok(v2_bad(&h), "v2 SSL sub-TLV header cut");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\0\0\0\0", 5);
    v2_tlv(&h, PP2_TYPE_SSL, "\x01\0\0\0\0", 5);
    ok(v2_bad(&h), "v2 SSL TLV twice");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0", 3);
    ok(v2_bad(&h), "v2 CRC32C of 3 bytes");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
    ok(v2_bad(&h), "v2 CRC32C zero (wrong)");
    v2_start(&h, 0x21, 0x11);
    v2_addr4(&h);
    v2_end_crc(&h);
    h.b[h.n - 1] ^= 1;
    ok(pp_parse(h.b, h.n, &pi) == -1, "v2 CRC32C off by one bit");
    h.b[h.n - 1] ^= 1;
    ok(pp_parse(h.b, h.n, &pi) == (ssize_t)h.n && pi.has_crc32c,
       "v2 CRC32C restored: valid");
    {
        /* two CRC TLVs, the first one valid for the whole header */
        size_t n;
        uint32_t c;

        v2_start(&h, 0x21, 0x11);
        v2_addr4(&h);
        v2_tlv(&h, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
        v2_tlv(&h, PP2_TYPE_NOOP, "\0\0\0\0", 4);
        n = v2_end(&h);
        c = crc32c(h.b, n);
        h.b[31] = (unsigned char)(c >> 24);
        h.b[32] = (unsigned char)(c >> 16);
        h.b[33] = (unsigned char)(c >> 8);
        h.b[34] = (unsigned char)c;
        ok(pp_parse(h.b, n, &pi) == (ssize_t)n && pi.has_crc32c,
           "v2 CRC32C not last: verified");
        h.b[35] = PP2_TYPE_CRC32C;
        ok(pp_parse(h.b, n, &pi) == -1, "v2 CRC32C twice");
    }

    /* garbage never parses, never reads out of bounds */
    {
        unsigned char g[600];
        int good = 1;

        srand(7);
        for (int it = 0; it < 20000; it++) {
            size_t n = (size_t)(rand() % (int)sizeof(g));
            ssize_t r;

            for (size_t i = 0; i < n; i++) g[i] = (unsigned char)rand();
            if (it % 3 == 0 && n >= 16) {
                memcpy(g, sig, 12);
                g[12] = 0x21;
                g[13] = (it % 2) ? 0x11 : 0x21;
                g[14] = (unsigned char)(rand() % 3);
            }
            r = pp_parse(g, n, &pi);
            if (r < -1 || r > (ssize_t)n) good = 0;
        }
        ok(good, "v2 20000 random inputs: result in [-1, len]");
    }
}

/* ---- building ------------------------------------------------------- */

/** Fills a sockaddr_in. */
static struct sockaddr_in mk4(const char *a, unsigned port)
{
    struct sockaddr_in s;

    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    s.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

/** Fills a sockaddr_in6. */
static struct sockaddr_in6 mk6(const char *a, unsigned port)
{
    struct sockaddr_in6 s;

    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    s.sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, a, &s.sin6_addr);
    return s;
}

/** 1 if pp_build(version, s, d) fails for every cap below its length and
 *  never writes at or past cap. */
static int build_caps_ok(int version, const struct sockaddr *s,
                         const struct sockaddr *d, size_t want)
{
    unsigned char b[200];

    for (size_t cap = 0; cap < want; cap++) {
        memset(b, 0xA5, sizeof(b));
        if (pp_build(version, s, d, b, cap) != 0) return 0;
        for (size_t i = cap; i < sizeof(b); i++)
            if (b[i] != 0xA5) return 0;
    }
    memset(b, 0xA5, sizeof(b));
    if (pp_build(version, s, d, b, want) != want) return 0;
    return b[want] == 0xA5;
}

static void test_build(void)
{
    struct sockaddr_in a4 = mk4("192.0.2.1", 51000), b4 = mk4("10.1.1.1", 80);
    struct sockaddr_in6 a6 = mk6("2001:db8::1", 1234), b6 = mk6("::1", 443);
    struct sockaddr_un un;
    const struct sockaddr *s4 = (const struct sockaddr *)&a4,
                          *d4 = (const struct sockaddr *)&b4,
                          *s6 = (const struct sockaddr *)&a6,
                          *d6 = (const struct sockaddr *)&b6,
                          *su = (const struct sockaddr *)&un;
    unsigned char b[256];
    size_t n;
    static const char l4[] = "PROXY TCP4 192.0.2.1 10.1.1.1 51000 80\r\n";
    static const char l6[] = "PROXY TCP6 2001:db8::1 ::1 1234 443\r\n";
    static const unsigned char v24[28] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
        0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 192,  0,    2,    1,
        10,   1,    1,    1,    0xC7, 0x38, 0x00, 0x50};

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/tmp/x.sock");

    n = pp_build(1, s4, d4, b, sizeof(b));
    ok(n == strlen(l4) && memcmp(b, l4, n) == 0, "build v1 TCP4 exact text");
    ok(build_caps_ok(1, s4, d4, n), "build v1 TCP4: short caps give 0");
    n = pp_build(1, s6, d6, b, sizeof(b));
    ok(n == strlen(l6) && memcmp(b, l6, n) == 0, "build v1 TCP6 exact text");
    ok(build_caps_ok(1, s6, d6, n), "build v1 TCP6: short caps give 0");
    n = pp_build(1, s4, d6, b, sizeof(b));
    ok(n == 15 && memcmp(b, "PROXY UNKNOWN\r\n", 15) == 0,
       "build v1 mixed families: UNKNOWN");
    n = pp_build(1, NULL, NULL, b, sizeof(b));
    ok(n == 15 && memcmp(b, "PROXY UNKNOWN\r\n", 15) == 0,
       "build v1 no addresses: UNKNOWN");
    n = pp_build(1, su, su, b, sizeof(b));
    ok(n == 15 && memcmp(b, "PROXY UNKNOWN\r\n", 15) == 0,
       "build v1 AF_UNIX: UNKNOWN");
    ok(build_caps_ok(1, NULL, NULL, 15), "build v1 UNKNOWN: short caps 0");

    n = pp_build(2, s4, d4, b, sizeof(b));
    ok(n == 28 && memcmp(b, v24, 28) == 0, "build v2 TCP4 exact bytes");
    ok(build_caps_ok(2, s4, d4, 28), "build v2 TCP4: short caps give 0");
    n = pp_build(2, s6, d6, b, sizeof(b));
    ok(n == 52 && memcmp(b, sig, 12) == 0 && b[12] == 0x21 &&
           b[13] == 0x21 && b[14] == 0 && b[15] == 36 &&
           memcmp(b + 16, &a6.sin6_addr, 16) == 0 &&
           memcmp(b + 32, &b6.sin6_addr, 16) == 0 && b[48] == 0x04 &&
           b[49] == 0xD2 && b[50] == 0x01 && b[51] == 0xBB,
       "build v2 TCP6 exact bytes");
    ok(build_caps_ok(2, s6, d6, 52), "build v2 TCP6: short caps give 0");
    n = pp_build(2, NULL, NULL, b, sizeof(b));
    ok(n == 16 && memcmp(b, sig, 12) == 0 && b[12] == 0x20 && b[13] == 0 &&
           b[14] == 0 && b[15] == 0,
       "build v2 LOCAL exact bytes");
    ok(build_caps_ok(2, NULL, NULL, 16), "build v2 LOCAL: short caps 0");
    ok(pp_build(2, s4, d6, b, sizeof(b)) == 0, "build v2 mixed families: 0");
    ok(pp_build(2, s4, NULL, b, sizeof(b)) == 0, "build v2 one NULL: 0");
    ok(pp_build(2, su, su, b, sizeof(b)) == 0, "build v2 AF_UNIX: 0");
    ok(pp_build(0, s4, d4, b, sizeof(b)) == 0 &&
           pp_build(3, s4, d4, b, sizeof(b)) == 0,
       "build bad version: 0");
}

/** One round trip; 1 when parse(build(s, d)) gives back s and d. */
static int round_trip(int version, const struct sockaddr *s,
                      const struct sockaddr *d, size_t alen)
{
    unsigned char b[256];
    size_t n = pp_build(version, s, d, b, sizeof(b));

    if (n == 0) return 0;
    if (pp_parse(b, n, &pi) != (ssize_t)n) return 0;
    if (!prefixes_need_more(b, n)) return 0;
    return pi.version == version && !pi.local &&
           memcmp(&pi.src, s, alen) == 0 && memcmp(&pi.dst, d, alen) == 0;
}

static void test_round_trips(void)
{
    static const char *v4[] = {"0.0.0.0", "255.255.255.255", "1.2.3.4",
                               "10.0.0.255", "100.64.0.1"};
    static const char *v6[] = {
        "::", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1:2:3:4",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1:0:0:1:0:0:0:1",
        "64:ff9b::192.0.2.33"};
    static const unsigned ports[] = {0, 1, 80, 443, 1023, 65535};
    int fails = 0, runs = 0;

    for (int ver = 1; ver <= 2; ver++) {
        for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
            for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++) {
                struct sockaddr_in s = mk4(v4[i], ports[p]);
                struct sockaddr_in d = mk4(v4[(i + 1) % 5], ports[5 - p]);
                runs++;
                if (!round_trip(ver, (struct sockaddr *)&s,
                                (struct sockaddr *)&d, sizeof(s)))
                    fails++;
            }
        for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
            for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++) {
                struct sockaddr_in6 s = mk6(v6[i], ports[p]);
                struct sockaddr_in6 d = mk6(v6[(i + 3) % 8], ports[5 - p]);
                runs++;
                if (!round_trip(ver, (struct sockaddr *)&s,
                                (struct sockaddr *)&d, sizeof(s)))
                    fails++;
            }
    }
    ok(fails == 0, "round trips of listed addresses: %d/%d fail", fails,
       runs);

    /* random addresses */
    srand(12345);
    fails = 0;
    runs = 0;
    for (int it = 0; it < 2000; it++) {
        int ver = 1 + it % 2;

        if (it % 4 < 2) {
            struct sockaddr_in s, d;

            memset(&s, 0, sizeof(s));
            memset(&d, 0, sizeof(d));
            s.sin_family = d.sin_family = AF_INET;
            s.sin_addr.s_addr = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
            d.sin_addr.s_addr = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
            s.sin_port = (uint16_t)rand();
            d.sin_port = (uint16_t)rand();
            runs++;
            if (!round_trip(ver, (struct sockaddr *)&s, (struct sockaddr *)&d,
                            sizeof(s)))
                fails++;
        } else {
            struct sockaddr_in6 s, d;

            memset(&s, 0, sizeof(s));
            memset(&d, 0, sizeof(d));
            s.sin6_family = d.sin6_family = AF_INET6;
            for (int k = 0; k < 16; k++) {
                /* zero runs now and then, to exercise "::" */
                s.sin6_addr.s6_addr[k] =
                    (rand() % 3) ? (unsigned char)rand() : 0;
                d.sin6_addr.s6_addr[k] =
                    (rand() % 3) ? (unsigned char)rand() : 0;
            }
            s.sin6_port = (uint16_t)rand();
            d.sin6_port = (uint16_t)rand();
            runs++;
            if (!round_trip(ver, (struct sockaddr *)&s, (struct sockaddr *)&d,
                            sizeof(s)))
                fails++;
        }
    }
    ok(fails == 0 && runs == 2000, "2000 random round trips: %d fail",
       fails);
}

int main(void)
{
    test_v1_valid();
    test_v1_bad();
    test_v2_valid();
    test_v2_bad();
    test_build();
    test_round_trips();
    return tap_done();
}
