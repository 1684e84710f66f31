/*
 * netaddr — addresses, CIDR ranges and server URLs.  Module prefix: na_.
 * Pure functions; any thread.
 */
#ifndef RELAIS_NETADDR_H
#define RELAIS_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** An IPv4 or IPv6 range; IPv4 is stored as IPv4-mapped IPv6. */
struct na_cidr {
    uint8_t addr[16]; /* network address (mapped for IPv4) */
    int bits;         /* prefix length over the 128-bit form */
};

/** A parsed server URL. */
struct na_url {
    char scheme[8];    /* "http", "https" or "h2c" */
    char host[256];    /* host name or literal, without brackets */
    int port;          /* explicit or default port */
    char hostport[300]; /* "host:port" as used in Host headers ([v6]:port) */
    char path[1024];   /* path prefix, "" when none */
};

/** Parses a listen address ":8080", "0.0.0.0:80", "[::1]:8443",
 *  "127.0.0.1:80/tcp".  An empty host means every address (IPv6 any with
 *  dual stack).  0 ok, -1 bad (msg filled). */
int na_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                    char *msg, size_t msglen);

/** Parses "192.0.2.0/24", "2001:db8::/32" or a single address.  0 / -1. */
int na_parse_cidr(const char *s, struct na_cidr *c);

/** Address of sa in the 128-bit mapped form. */
void na_to_mapped(const struct sockaddr *sa, uint8_t out[16]);

/** 1 when the mapped address is inside c. */
int na_cidr_contains(const struct na_cidr *c, const uint8_t addr[16]);

/** Parses a server URL "http://127.0.0.1:8080/prefix".  0 / -1 (msg). */
int na_parse_url(const char *s, struct na_url *u, char *msg, size_t msglen);

/** Text form of sa's address (no port) into buf; returns buf. */
char *na_ntop(const struct sockaddr *sa, char *buf, size_t len);

/** Port of sa. */
int na_port(const struct sockaddr *sa);

/** Resolves "host:port" ("[v6]:port") for socktype (SOCK_STREAM,
 *  SOCK_DGRAM) into ss/len: the first address getaddrinfo gives.  May
 *  block on DNS (control thread).  0, or -1 with msg. */
int na_resolve(const char *hostport, int socktype, struct sockaddr_storage *ss,
               socklen_t *len, char *msg, size_t msglen);

#endif /* RELAIS_NETADDR_H */
