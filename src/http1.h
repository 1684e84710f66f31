/*
 * http1 — the strict HTTP/1.1 message-head parser and chunked decoder
 * (RFC 9110/9112).  Module prefix: h1_.
 *
 * The parser works in place over a contiguous buffer: it never copies and
 * never allocates; every piece of the head is a span (offset, length) into
 * the caller's buffer.  It is written for a proxy: anything whose framing
 * two parsers could read differently is an error, never a guess.
 *
 * Thread-safety: pure functions over caller-owned memory; any thread.
 */
#ifndef RELAIS_HTTP1_H
#define RELAIS_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** A piece of the buffer: bytes [off, off+len). */
struct h1_span {
    uint32_t off; /* offset from the start of the parsed buffer */
    uint32_t len; /* length in bytes */
};

/** One header field; value without leading/trailing whitespace. */
struct h1_field {
    struct h1_span name;  /* field name (a token), case as received */
    struct h1_span value; /* field value, OWS trimmed */
};

/** Limits the parser enforces. */
struct h1_limits {
    size_t max_head;    /* bytes of the whole head incl. final CRLF (431) */
    size_t max_fields;  /* number of header fields (431) */
    size_t max_target;  /* bytes of the request-target (414) */
};

/* Flags derived from the head (h1_head.flags). */
#define H1_F_CHUNKED 0x0001u        /* Transfer-Encoding: chunked (final) */
#define H1_F_CONN_CLOSE 0x0002u     /* Connection: close */
#define H1_F_CONN_KEEPALIVE 0x0004u /* Connection: keep-alive */
#define H1_F_CONN_UPGRADE 0x0008u   /* Connection lists "upgrade" */
#define H1_F_UPGRADE 0x0010u        /* an Upgrade header is present */
#define H1_F_EXPECT_CONTINUE 0x0020u /* Expect: 100-continue */
#define H1_F_HAS_HOST 0x0040u       /* a (single) Host header is present */
#define H1_F_TE 0x0080u             /* a Transfer-Encoding header is present */
#define H1_F_HAS_CL 0x0100u         /* a Content-Length header is present */

/** A parsed request or response head. */
struct h1_head {
    /* request line (requests only) */
    struct h1_span method; /* method token */
    struct h1_span target; /* request-target as sent */
    /* status line (responses only) */
    int status;            /* 100..999 */
    struct h1_span reason; /* reason phrase, may be empty */
    /* both */
    int version;            /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    struct h1_field *fields; /* caller-provided array of max_fields entries */
    size_t nfields;         /* fields filled */
    int64_t content_length; /* value of Content-Length, -1 when absent */
    unsigned flags;         /* H1_F_* */
    struct h1_span host;    /* value of Host (requests), len 0 if absent */
    uint32_t head_len;      /* bytes of the head including the final CRLF
                               and any leading empty lines skipped */
};

/* h1_parse_* results: > 0 head complete (its length); 0 need more bytes;
 * < 0 the negated HTTP status to answer with:
 *   -400 malformed or ambiguous, -414 target too long, -431 head too
 *   large or too many fields, -501 unknown transfer coding,
 *   -505 unsupported HTTP version.
 * For responses the caller maps any error to 502.
 *
 * The parse is stateless: after 0, call again from the start of the head
 * with more bytes.  Errors are reported as soon as the bytes present prove
 * them (a bad byte, a bad complete field line, a target over max_target),
 * even before the head is complete; 0 means every byte seen is a valid
 * prefix of a head.  Bytes past max_head are never read. */

/** Parses a request head from buf[0..len).  fields must hold
 *  lim->max_fields entries.  Framing rules enforced: Host present and
 *  unique in HTTP/1.1; Content-Length digits only, duplicates must agree;
 *  Content-Length with Transfer-Encoding is 400; Transfer-Encoding in
 *  HTTP/1.0 is 400; chunked must be the final (and only) coding. */
int h1_parse_request(const char *buf, size_t len, struct h1_head *head,
                     struct h1_field *fields, const struct h1_limits *lim);

/** Parses a response head (status line + fields) from buf[0..len). */
int h1_parse_response(const char *buf, size_t len, struct h1_head *head,
                      struct h1_field *fields, const struct h1_limits *lim);

/** Case-insensitive comparison of a span with a NUL-terminated string. */
int h1_span_eq(const char *buf, struct h1_span s, const char *str);

/**
 * Iterates the comma-separated elements of a list value (RFC 9110 5.6.1):
 * *pos is the cursor (start at 0); on return 1 the element is
 * value[*start, *start+*elen) with OWS trimmed; 0 at the end.  Empty
 * elements are skipped.
 */
int h1_list_next(const char *value, size_t vlen, size_t *pos, size_t *start,
                 size_t *elen);

/** Incremental decoder of a chunked body. */
struct h1_chunk {
    int state;            /* internal state */
    uint64_t remaining;   /* payload bytes left in the current chunk */
    uint64_t size;        /* size of the current chunk while parsing it */
    unsigned digits;      /* hex digits seen in the size */
    size_t line;          /* bytes of the current size/trailer line */
    size_t max_line;      /* cap on a chunk-size line / trailer line */
    size_t trailer_bytes; /* trailer bytes seen */
    size_t max_trailer;   /* cap on all trailer bytes */
};

/** Prepares a decoder; max_line caps one size line (with extensions)
 *  and each trailer line, CRLF included; max_trailer all trailer bytes
 *  (fields and the final CRLF). */
void h1_chunk_init(struct h1_chunk *c, size_t max_line, size_t max_trailer);

/**
 * Consumes chunked-coding bytes from buf[0..len).  Returns the number of
 * bytes consumed (0..len) or -1 on a framing error (then the message must
 * be answered 400 / treated as broken).  When *data_len > 0 on return,
 * buf[*data_off .. *data_off + *data_len) is payload; the call stops after
 * one run of payload, so call again with the rest.  Chunk extensions are
 * validated and dropped; trailer fields are validated and dropped.
 */
ssize_t h1_chunk_parse(struct h1_chunk *c, const char *buf, size_t len,
                       size_t *data_off, size_t *data_len);

/** 1 once the last chunk and the trailer section's final CRLF were read. */
int h1_chunk_done(const struct h1_chunk *c);

#endif /* RELAIS_HTTP1_H */
