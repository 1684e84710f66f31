/*
 * proxyproto — the PROXY protocol, versions 1 (text) and 2 (binary), as
 * specified by HAProxy's "The PROXY protocol" document.  Module prefix: pp_.
 *
 * pp_parse() reads a header at the start of a caller's buffer (typically
 * bytes peeked or read from a freshly accepted connection on a listener
 * configured to expect the protocol); pp_build() writes one for an
 * upstream connection.  Both work in place: no allocation, no global
 * state.  The parser is strict: anything the specification does not
 * allow is an error, never a guess, and errors are reported as soon as
 * the bytes present prove them.
 *
 * Thread-safety: pure functions over caller-owned memory; any thread.
 */
#ifndef RELAIS_PROXYPROTO_H
#define RELAIS_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Longest v1 line, CRLF included ("PROXY UNKNOWN" + two IPv6 + ports). */
#define PP_V1_MAX 107
/* Fixed part of a v2 header: signature, ver/cmd, family, length. */
#define PP_V2_HDR 16
/* Most address+TLV bytes accepted after the fixed v2 part (the spec's
 * 536-byte minimal segment); a longer v2 header is an error. */
#define PP_MAX_V2 536
/* A buffer of this many bytes always holds a whole valid header, so a
 * caller that peeked this much and got 0 can treat the header as bad. */
#define PP_MAX_HEADER (PP_V2_HDR + PP_MAX_V2)

/* v2 TLV types (pp_info.ntlv counts all of them). */
#define PP2_TYPE_ALPN 0x01      /* application protocol (copied) */
#define PP2_TYPE_AUTHORITY 0x02 /* host name, e.g. the client's SNI (copied) */
#define PP2_TYPE_CRC32C 0x03    /* CRC32c of the header (verified) */
#define PP2_TYPE_NOOP 0x04      /* padding (ignored) */
#define PP2_TYPE_UNIQUE_ID 0x05 /* opaque connection id, <= 128 bytes (copied) */
#define PP2_TYPE_SSL 0x20       /* client TLS information (summarised) */
#define PP2_TYPE_NETNS 0x30     /* network namespace name (ignored) */

/* Bits of the SSL TLV's client field (pp_info.ssl_client). */
#define PP2_CLIENT_SSL 0x01       /* client connected over TLS */
#define PP2_CLIENT_CERT_CONN 0x02 /* it sent a certificate on this connection */
#define PP2_CLIENT_CERT_SESS 0x04 /* it sent one once in this TLS session */

/** What a PROXY header says. */
struct pp_info {
    int version;                 /* 1 or 2 */
    int local;                   /* 1: no usable addresses (v2 LOCAL command,
                                    v1 UNKNOWN, or a v2 PROXY header for a
                                    family other than TCP over IPv4/IPv6,
                                    which the spec says to treat as UNSPEC):
                                    use the real connection endpoints */
    struct sockaddr_storage src; /* client address (AF_INET / AF_INET6),
                                    zeroed (AF_UNSPEC) when local */
    struct sockaddr_storage dst; /* destination address, same family */
    unsigned char v2_fam;        /* v2: family/transport byte as received
                                    (0x11 TCP4, 0x21 TCP6, ...); v1: 0 */
    unsigned ntlv;               /* v2: number of TLVs parsed (0 for LOCAL,
                                    whose payload is skipped unread) */
    char authority[256];         /* v2 AUTHORITY TLV, NUL-terminated;
                                    "" when absent */
    char alpn[256];              /* v2 ALPN TLV, NUL-terminated; "" when absent */
    unsigned char unique_id[128]; /* v2 UNIQUE_ID TLV bytes */
    size_t unique_id_len;        /* bytes in unique_id, 0 when absent */
    int has_ssl;                 /* v2 SSL TLV present */
    unsigned char ssl_client;    /* its client field (PP2_CLIENT_* bits) */
    uint32_t ssl_verify;         /* its verify field (0 = cert verified) */
    int has_crc32c;              /* a CRC32C TLV was present (and matched) */
};

/**
 * Parses a PROXY header at the start of buf[0..len).
 *
 * Returns the header length (> 0) when a whole valid header is there (the
 * payload starts at buf + that length), 0 when every byte present is a
 * valid prefix of a header and more are needed, -1 when buf does not
 * start with a valid header.  A v1 line must end with CRLF within
 * PP_V1_MAX bytes; a v2 header may not announce more than PP_MAX_V2
 * bytes after its fixed part; so 0 is never returned for len >=
 * PP_MAX_HEADER.
 *
 * v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
 * with exactly one space between fields; IPv4 dotted quads of exactly
 * four decimal numbers 0..255 without leading zeros; IPv6 as accepted by
 * inet_pton(AF_INET6) (groups of 1..4 hex digits, one "::", optional
 * trailing dotted quad) of at most 45 characters; ports decimal 0..65535
 * without leading zeros.  "PROXY UNKNOWN" CRLF, or "PROXY UNKNOWN" SP
 * followed by anything but CR/LF up to CRLF, gives local = 1.  A CR not
 * followed by LF, or a lone LF, is an error.
 *
 * v2: the 12-byte signature, version 2, command LOCAL (0) or PROXY (1),
 * a family byte among 0x00 0x11 0x12 0x21 0x22 0x31 0x32 (anything else
 * is -1, even for LOCAL).  LOCAL: local = 1 and the rest of the header is
 * skipped unread, as the spec requires.  PROXY: the length must cover the
 * family's address block (12, 36 or 216 bytes, 0 for UNSPEC); TCP over
 * IPv4/IPv6 fill src/dst, the other families give local = 1; the bytes
 * after the addresses must be a sequence of well-formed TLVs ending
 * exactly at the header's end.  TLV rules: AUTHORITY and ALPN 1..255
 * bytes without NUL or control bytes, UNIQUE_ID 1..128 bytes, CRC32C
 * exactly 4 bytes and equal to the CRC32c of the header (checksum field
 * zeroed), SSL at least 5 bytes with well-formed sub-TLVs; each of these
 * at most once; other types skipped.
 *
 * out is always written (zeroed first); its contents are meaningful only
 * when the return value is > 0.
 */
ssize_t pp_parse(const void *buf, size_t len, struct pp_info *out);

/**
 * Writes a PROXY header for a connection from src to dst into buf (cap
 * bytes): version 1 (text) or 2 (binary, PROXY command, STREAM
 * transport).  src and dst must both be AF_INET or both AF_INET6.
 * v1 writes "PROXY UNKNOWN\r\n" when they are NULL or their families
 * differ or are not IP; v2 writes a LOCAL header (family UNSPEC, no
 * addresses) when both are NULL, and fails otherwise.  Returns the
 * header length, or 0 when it does not fit in cap, the version is not 1
 * or 2, or (v2) the families differ / are not IP.  Nothing is written
 * past cap; buf is not NUL-terminated.
 */
size_t pp_build(int version, const struct sockaddr *src,
                const struct sockaddr *dst, void *buf, size_t cap);

#endif /* RELAIS_PROXYPROTO_H */
