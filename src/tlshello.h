/*
 * tlshello — read-only inspection of a TLS ClientHello (RFC 8446 4.1.2,
 * RFC 5246 7.4.1.2) to route a TCP connection by SNI (RFC 6066 3) and
 * ALPN (RFC 7301) before deciding to terminate or pass TLS through.
 * Module prefix: th_.
 *
 * The bytes are typically MSG_PEEKed from the socket: th_parse() never
 * writes to them, never allocates and keeps no state between calls; the
 * hello may span several handshake records and is followed across them
 * without copying.  Only what routing needs is extracted (server name,
 * ALPN list, legacy_version); the framing of the whole hello and the
 * contents of those two extensions are checked strictly.
 *
 * Thread-safety: pure functions over caller-owned memory; any thread.
 */
#ifndef RELAIS_TLSHELLO_H
#define RELAIS_TLSHELLO_H

#include <stddef.h>
#include <stdint.h>

/* ALPN protocol names kept (more are counted in nalpn_offered only). */
#define TH_MAX_ALPN 16
/* Bytes for the kept ALPN names, NUL terminators included; a name that
 * does not fit any more is counted but not kept. */
#define TH_ALPN_BUF 1024
/* Largest ClientHello body accepted (the handshake length field); a
 * longer hello is an error. */
#define TH_MAX_HELLO 16384
/* Most TLS records the hello may be spread over; more is an error. */
#define TH_MAX_RECORDS 16
/* Most extensions in a hello (duplicates are detected among them). */
#define TH_MAX_EXT 128
/* A buffer this large always yields 1 or -1 from th_parse (never 0):
 * handshake header + body + one record header per record. */
#define TH_MAX_PEEK (4 + TH_MAX_HELLO + 5 * TH_MAX_RECORDS)

/** What a ClientHello offers. */
struct th_hello {
    int has_sni;         /* a server_name extension with a host_name */
    char sni[256];       /* that name, lowercased, NUL-terminated ("" if none) */
    int has_alpn;        /* an ALPN extension was present */
    size_t nalpn;        /* ALPN names kept (<= TH_MAX_ALPN), see th_alpn() */
    size_t nalpn_offered; /* ALPN names in the extension (>= nalpn) */
    uint16_t alpn_off[TH_MAX_ALPN]; /* offset of kept name i in alpn_buf */
    uint8_t alpn_len[TH_MAX_ALPN];  /* its length in bytes (1..255) */
    char alpn_buf[TH_ALPN_BUF];     /* kept names, each NUL-terminated,
                                       in the client's order */
    unsigned version;    /* legacy_version of the ClientHello (0x0303 ...) */
    size_t hello_bytes;  /* bytes of buf holding the hello's records */
};

/**
 * Looks at the TLS records at the start of buf[0..len).
 *
 * Returns 1 when a whole ClientHello was found and parsed (out filled;
 * bytes after its last record are not looked at), 0 when every byte
 * present is a valid prefix and more are needed, -1 when this is not
 * TLS or the hello is malformed.  Reported as -1 as soon as the bytes
 * present show it:
 *   - a record that is not handshake (0x16), a record version whose
 *     major byte is not 3, a record length of 0 or over 2^14, more than
 *     TH_MAX_RECORDS records;
 *   - a first handshake message that is not client_hello (1), a body over
 *     TH_MAX_HELLO, a record carrying bytes past the end of the hello;
 *   - once whole: legacy_version major not 3, session_id over 32 bytes,
 *     cipher_suites empty or odd, compression_methods empty, extensions
 *     block not ending exactly at the end of the hello, an extension
 *     running past the block, a duplicated extension type, over
 *     TH_MAX_EXT extensions, pre_shared_key not last;
 *   - server_name: the list empty or not filling the extension, a name
 *     entry empty, a second host_name; a host_name that is not a DNS name
 *     made of letters, digits, '-', '_' and '.', with labels of 1..63
 *     bytes, at most 253 bytes, no trailing dot.  (Go's crypto/tls, which
 *     Traefik uses, only refuses an empty name or a trailing dot; this
 *     parser is stricter because the name is a routing key and goes to
 *     logs.)  Entries of other name types are skipped, as Go does;
 *   - ALPN: the list empty or not filling the extension, an empty name.
 * The contents of other extensions are not interpreted.
 *
 * out is always written (zeroed first); meaningful only on 1.
 */
int th_parse(const void *buf, size_t len, struct th_hello *out);

/** Kept ALPN name i (< h->nalpn), NUL-terminated; NULL when out of range.
 *  Names holding a NUL byte are complete only with h->alpn_len[i]. */
const char *th_alpn(const struct th_hello *h, size_t i);

#endif /* RELAIS_TLSHELLO_H */
