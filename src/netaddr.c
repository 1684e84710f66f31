/*
 * netaddr — see netaddr.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netaddr.h"

/* Parses a decimal port 1..65535 from s[0..len).  -1 when bad. */
static int na_port_parse(const char *s, size_t len)
{
    long v = 0;
    size_t i;

    if (len == 0 || len > 5) return -1;
    for (i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return (v >= 1 && v <= 65535) ? (int)v : -1;
}

int na_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                    char *msg, size_t msglen)
{
    char host[256];
    const char *colon, *end;
    size_t hl;
    int port;

    memset(ss, 0, sizeof(*ss));
    end = strchr(s, '/');
    if (!end) end = s + strlen(s);
    else if (strcasecmp(end, "/tcp") != 0) {
        snprintf(msg, msglen, "only /tcp is supported in \"%s\"", s);
        return -1;
    }
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', (size_t)(end - s));
        if (!rb || rb[1] != ':') goto bad;
        hl = (size_t)(rb - s - 1);
        if (hl >= sizeof(host)) goto bad;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = NULL;
        for (const char *p = s; p < end; p++)
            if (*p == ':') colon = p;
        if (!colon) goto bad;
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host)) goto bad;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    port = na_port_parse(colon + 1, (size_t)(end - colon - 1));
    if (port < 0) goto bad;
    if (host[0] == '\0') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_any;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons((uint16_t)port);
            *len = sizeof(*a4);
            return 0;
        }
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)port);
            *len = sizeof(*a6);
            return 0;
        }
        if (!strcasecmp(host, "localhost")) {
            a4->sin_family = AF_INET;
            a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a4->sin_port = htons((uint16_t)port);
            *len = sizeof(*a4);
            return 0;
        }
    }
bad:
    snprintf(msg, msglen,
             "expected an address such as \":8080\", \"127.0.0.1:80\" or "
             "\"[::1]:443\", got \"%s\"", s);
    return -1;
}

void na_to_mapped(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &a4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

int na_parse_cidr(const char *s, struct na_cidr *c)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    struct in_addr a4;
    int bits = -1, is4;

    if (hl >= sizeof(buf)) return -1;
    memcpy(buf, s, hl);
    buf[hl] = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        is4 = 1;
        c->addr[10] = 0xff;
        c->addr[11] = 0xff;
        memcpy(c->addr + 12, &a4, 4);
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        is4 = 0;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || v < 0 || v > (is4 ? 32 : 128))
            return -1;
        bits = (int)v;
    } else {
        bits = is4 ? 32 : 128;
    }
    c->bits = is4 ? bits + 96 : bits;
    /* clear host bits so that contains() compares networks */
    for (int i = c->bits; i < 128; i++)
        c->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return 0;
}

int na_cidr_contains(const struct na_cidr *c, const uint8_t addr[16])
{
    int full = c->bits / 8, rest = c->bits % 8;

    if (memcmp(c->addr, addr, (size_t)full) != 0) return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff00u >> rest);
        if ((c->addr[full] & mask) != (addr[full] & mask)) return 0;
    }
    return 1;
}

int na_parse_url(const char *s, struct na_url *u, char *msg, size_t msglen)
{
    const char *p, *hs, *he, *ps = NULL;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (!strncasecmp(s, "http://", 7)) {
        strcpy(u->scheme, "http");
        u->port = 80;
        p = s + 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        strcpy(u->scheme, "https");
        u->port = 443;
        p = s + 8;
    } else if (!strncasecmp(s, "h2c://", 6)) {
        /* HTTP/2 with prior knowledge, no TLS (Traefik's scheme for gRPC) */
        strcpy(u->scheme, "h2c");
        u->port = 80;
        p = s + 6;
    } else {
        snprintf(msg, msglen, "expected a URL such as \"http://127.0.0.1:8080\", got \"%s\"", s);
        return -1;
    }
    hs = p;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) goto bad;
        hs = p + 1;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#') p++;
        he = p;
    }
    n = (size_t)(he - hs);
    if (n == 0 || n >= sizeof(u->host)) goto bad;
    memcpy(u->host, hs, n);
    u->host[n] = '\0';
    if (*p == ':') {
        const char *q = ++p;
        while (*p && *p != '/' && *p != '?') p++;
        u->port = na_port_parse(q, (size_t)(p - q));
        if (u->port < 0) goto bad;
    }
    if (*p == '/') {
        ps = p;
        n = strlen(ps);
        if (n >= sizeof(u->path)) goto bad;
        memcpy(u->path, ps, n + 1);
        /* a path of "/" adds nothing */
        if (!strcmp(u->path, "/")) u->path[0] = '\0';
    } else if (*p) {
        goto bad;
    }
    if (strchr(u->host, ':'))
        snprintf(u->hostport, sizeof(u->hostport), "[%s]:%d", u->host, u->port);
    else
        snprintf(u->hostport, sizeof(u->hostport), "%s:%d", u->host, u->port);
    return 0;
bad:
    snprintf(msg, msglen, "invalid server URL \"%s\"", s);
    return -1;
}

char *na_ntop(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, &a6->sin6_addr, buf, (socklen_t)len);
    } else
        snprintf(buf, len, "unknown");
    return buf;
}

int na_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

int na_resolve(const char *hostport, int socktype, struct sockaddr_storage *ss,
                socklen_t *len, char *msg, size_t msglen)
{
    char host[256];
    const char *colon, *port;
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int rc;

    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (!rb || rb[1] != ':') goto bad;
        hl = (size_t)(rb - hostport - 1);
        if (hl >= sizeof(host)) goto bad;
        memcpy(host, hostport + 1, hl);
        port = rb + 2;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon || colon == hostport) goto bad;
        hl = (size_t)(colon - hostport);
        if (hl >= sizeof(host) || memchr(hostport, ':', hl)) goto bad;
        memcpy(host, hostport, hl);
        port = colon + 1;
    }
    host[hl] = '\0';
    if (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 ||
        atoi(port) > 65535)
        goto bad;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(msg, msglen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(msg, msglen, "expected an address such as \"127.0.0.1:8080\", got \"%s\"", hostport);
    return -1;
}
