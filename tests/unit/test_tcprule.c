/*
 * test_tcprule — unit tests of the TCP rules of the rule module
 * (rule_parse_tcp, rule_match_tcp, rule_tcp_catchall, rule_tcp_needs_sni,
 * rule_sni_hosts).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rule.h"
#include "tap.h"

/** A connection as the matcher sees it. */
struct tconn {
    struct rule_tcp_req r;       /* what rule_match_tcp sees */
    struct sockaddr_storage ss;  /* client address */
    const char *alpn[4];         /* offered protocols */
};

/* Fills t: sni (NULL = not TLS), ip, up to two ALPN names. */
static void t_conn(struct tconn *t, const char *sni, const char *ip, const char *a1,
                   const char *a2)
{
    memset(t, 0, sizeof(*t));
    t->r.sni = sni;
    t->r.sni_len = sni ? strlen(sni) : 0;
    if (a1) t->alpn[t->r.nalpn++] = a1;
    if (a2) t->alpn[t->r.nalpn++] = a2;
    t->r.alpn = t->alpn;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&t->ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
    }
    t->r.client = (struct sockaddr *)&t->ss;
}

/* 1 when rule text matches the connection (the rule must parse). */
static int m(const char *text, const char *sni, const char *ip, const char *a1, const char *a2)
{
    struct rule_error err;
    struct tconn t;
    rule_t *r = rule_parse_tcp(text, &err);
    int v;

    if (!r) {
        printf("# parse error in %s: column %d: %s\n", text, err.column, err.msg);
        return -1;
    }
    t_conn(&t, sni, ip, a1, a2);
    v = rule_match_tcp(r, &t.r);
    rule_free(r);
    return v;
}

/* The parse error of text as "column: msg" in buf (or "" when it parses). */
static const char *perr(const char *text, char *buf, size_t len)
{
    struct rule_error err;
    rule_t *r = rule_parse_tcp(text, &err);

    if (r) {
        rule_free(r);
        buf[0] = '\0';
    } else {
        snprintf(buf, len, "%d: %s", err.column, err.msg);
    }
    return buf;
}

/** Collected names of rule_sni_hosts. */
struct hosts {
    char s[256]; /* "name,*.suffix," */
};

static void t_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct hosts *h = arg;
    size_t n = strlen(h->s);

    snprintf(h->s + n, sizeof(h->s) - n, "%s%.*s,", wildcard ? "*." : "", (int)len, host);
}

int main(void)
{
    char b[300];
    rule_t *r;
    struct hosts h;

    /* HostSNI */
    ok(m("HostSNI(`*`)", NULL, "192.0.2.1", NULL, NULL) == 1, "HostSNI(*) matches a non-TLS connection");
    ok(m("HostSNI(`*`)", "a.test", "192.0.2.1", NULL, NULL) == 1, "HostSNI(*) matches TLS");
    ok(m("HostSNI(`a.test`)", "a.test", "192.0.2.1", NULL, NULL) == 1, "HostSNI exact");
    ok(m("HostSNI(`A.Test`)", "a.test", "192.0.2.1", NULL, NULL) == 1, "HostSNI any case");
    ok(m("HostSNI(`a.test`)", "b.test", "192.0.2.1", NULL, NULL) == 0, "HostSNI other name");
    ok(m("HostSNI(`a.test`)", NULL, "192.0.2.1", NULL, NULL) == 0, "HostSNI name without SNI");
    ok(m("HostSNI(`a.test`, `b.test`)", "b.test", "192.0.2.1", NULL, NULL) == 1,
       "HostSNI with two names");
    ok(m("HostSNI(`*.w.test`)", "x.w.test", "192.0.2.1", NULL, NULL) == 1, "HostSNI wildcard");
    ok(m("HostSNI(`*.w.test`)", "w.test", "192.0.2.1", NULL, NULL) == 0,
       "HostSNI wildcard needs a label");
    /* HostSNIRegexp */
    ok(m("HostSNIRegexp(`^[a-z]+\\.r\\.test$`)", "abc.r.test", "192.0.2.1", NULL, NULL) == 1,
       "HostSNIRegexp match");
    ok(m("HostSNIRegexp(`^[a-z]+\\.r\\.test$`)", "a1.r.test", "192.0.2.1", NULL, NULL) == 0,
       "HostSNIRegexp no match");
    ok(m("HostSNIRegexp(`.*`)", NULL, "192.0.2.1", NULL, NULL) == 0,
       "HostSNIRegexp never matches without SNI");
    /* ClientIP */
    ok(m("ClientIP(`10.0.0.0/8`)", NULL, "10.1.2.3", NULL, NULL) == 1, "ClientIP in range");
    ok(m("ClientIP(`10.0.0.0/8`)", NULL, "11.1.2.3", NULL, NULL) == 0, "ClientIP out of range");
    ok(m("ClientIP(`10.0.0.0/8`)", NULL, "::ffff:10.9.9.9", NULL, NULL) == 1,
       "ClientIP mapped IPv4");
    ok(m("ClientIP(`2001:db8::/32`)", NULL, "2001:db8::1", NULL, NULL) == 1, "ClientIP IPv6");
    /* ALPN */
    ok(m("ALPN(`h2`)", "a.test", "192.0.2.1", "http/1.1", "h2") == 1, "ALPN offered");
    ok(m("ALPN(`h2`)", "a.test", "192.0.2.1", "http/1.1", NULL) == 0, "ALPN not offered");
    ok(m("ALPN(`x`, `h2`)", "a.test", "192.0.2.1", "h2", NULL) == 1, "ALPN list");
    /* operators */
    ok(m("HostSNI(`a.test`) && ClientIP(`192.0.2.0/24`)", "a.test", "192.0.2.9", NULL, NULL) == 1,
       "&& both");
    ok(m("HostSNI(`a.test`) && ClientIP(`192.0.2.0/24`)", "a.test", "198.51.100.1", NULL, NULL) ==
           0,
       "&& one false");
    ok(m("HostSNI(`a.test`) || ALPN(`h2`)", "z.test", "192.0.2.9", "h2", NULL) == 1, "|| second");
    ok(m("!ClientIP(`192.0.2.0/24`)", NULL, "192.0.2.9", NULL, NULL) == 0, "! true");
    ok(m("!ClientIP(`192.0.2.0/24`)", NULL, "198.51.100.1", NULL, NULL) == 1, "! false");
    ok(m("(HostSNI(`a.test`) || HostSNI(`b.test`)) && !ALPN(`h2`)", "b.test", "192.0.2.9",
         "http/1.1", NULL) == 1,
       "parentheses");
    ok(m("(HostSNI(`a.test`) || HostSNI(`b.test`)) && !ALPN(`h2`)", "b.test", "192.0.2.9", "h2",
         NULL) == 0,
       "parentheses, negated ALPN");
    /* errors with columns */
    ok(!strcmp(perr("Host(`a.test`)", b, sizeof(b)),
               "1: unknown matcher \"Host\" (TCP rules use HostSNI, HostSNIRegexp, ClientIP and "
               "ALPN)"),
       "HTTP matcher refused: %s", b);
    ok(!strcmp(perr("HostSNI(`a`) && hostsni(`b`)", b, sizeof(b)),
               "17: unknown matcher \"hostsni\" (matcher names are case-sensitive: did you mean "
               "\"HostSNI\"?)"),
       "case hint: %s", b);
    ok(!strcmp(perr("HostSNI(`a`", b, sizeof(b)), "12: expected ')' or ',' after argument"),
       "unclosed: %s", b);
    ok(!strcmp(perr("ClientIP(`300.1.1.1`)", b, sizeof(b)),
               "10: ClientIP: invalid IP address or CIDR \"300.1.1.1\""),
       "bad ClientIP: %s", b);
    ok(!strcmp(perr("HostSNIRegexp(`(`)", b, sizeof(b)),
               "15: HostSNIRegexp: invalid regular expression: missing closing parenthesis at "
               "offset 1"),
       "bad regexp: %s", b);
    ok(!strcmp(perr("ALPN(`acme-tls/1`)", b, sizeof(b)),
               "6: ALPN: \"acme-tls/1\" is reserved for ACME challenges"),
       "acme-tls/1 refused: %s", b);
    ok(!strcmp(perr("HostSNI(`*`, `a`)", b, sizeof(b)), "9: HostSNI: `*` must be the only argument"),
       "* alone: %s", b);
    ok(!strcmp(perr("HostSNI(``)", b, sizeof(b)), "9: HostSNI: empty host"), "empty: %s", b);
    /* the HTTP parser does not know the TCP matchers */
    ok(rule_parse("HostSNI(`a`)", NULL) == NULL, "HostSNI is not an HTTP matcher");
    /* catch-all and needs-SNI */
    r = rule_parse_tcp("HostSNI(`*`)", NULL);
    ok(r && rule_tcp_catchall(r) && !rule_tcp_needs_sni(r), "HostSNI(*) is the catch-all");
    rule_free(r);
    r = rule_parse_tcp("HostSNI(`*`) && ClientIP(`10.0.0.0/8`)", NULL);
    ok(r && !rule_tcp_catchall(r) && !rule_tcp_needs_sni(r), "HostSNI(*) && ClientIP: not catch-all");
    rule_free(r);
    r = rule_parse_tcp("ClientIP(`10.0.0.0/8`) || HostSNIRegexp(`x`)", NULL);
    ok(r && rule_tcp_needs_sni(r), "HostSNIRegexp needs SNI");
    rule_free(r);
    /* names for the TLS options map */
    r = rule_parse_tcp("(HostSNI(`B.test`) || HostSNI(`*.w.test`)) && ALPN(`h2`)", NULL);
    memset(&h, 0, sizeof(h));
    ok(r && rule_sni_hosts(r, t_host, &h) == 1 && !strcmp(h.s, "b.test,*.w.test,"),
       "rule_sni_hosts: %s", h.s);
    rule_free(r);
    r = rule_parse_tcp("HostSNI(`*`)", NULL);
    memset(&h, 0, sizeof(h));
    ok(r && rule_sni_hosts(r, t_host, &h) == 0 && !h.s[0], "rule_sni_hosts: none for *");
    rule_free(r);
    return tap_done();
}
