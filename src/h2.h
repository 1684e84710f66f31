/*
 * h2 — HTTP/2 towards clients (RFC 9113), with libnghttp2.  Module
 * prefix: h2_.
 *
 * A client connection that negotiated "h2" (ALPN), opened with the
 * HTTP/2 preface (h2c with prior knowledge) or asked for "Upgrade: h2c"
 * in its HTTP/1.1 request (h2_conn_upgrade) is handed here by proxy.c.
 * This module owns the nghttp2 session and the socket stream's callbacks;
 * each HTTP/2 stream becomes a virtual stream (stream.c) given to proxy.c
 * as a client connection of its own (px_h2_stream_open), so that the
 * exchange (routing, middlewares, load balancing, the server side) is the
 * one HTTP/1 requests go through: the request model plugins see does not
 * depend on the version.
 *
 * Flow control: the connection window is given back as DATA arrives; a
 * stream's window only while proxy.c reads it (a slow server holds the
 * client's stream, not the connection).  Responses are sent from the
 * virtual stream's output as the peer's windows allow.
 *
 * Defences, each with a configurable limit (entryPoints.X.http2): the
 * number of concurrent streams (maxConcurrentStreams: a stream past it is
 * refused with RST_STREAM REFUSED_STREAM, RFC 9113 5.1.2), header bytes
 * and fields per request (the entry point's maxHeaderBytes /
 * maxHeaderCount: 431, so HPACK bombs end there; libnghttp2 ends
 * CONTINUATION floods), streams reset by the client per second (rapid
 * reset, CVE-2023-44487), SETTINGS and PING frames per second: past one
 * of the last two, or on a connection error, the connection gets one
 * GOAWAY (ENHANCE_YOUR_CALM for floods), nothing after it is read, and
 * it closes once the GOAWAY is sent.
 *
 * Thread: the worker's loop that owns the connection.
 */
#ifndef RELAIS_H2_H
#define RELAIS_H2_H

#include <stddef.h>
#include <stdint.h>

struct stream;
struct event_base;
struct px_conn;
struct relais_hdrs;
struct nghttp2_session;

/** Limits of one connection. */
struct h2_limits {
    uint32_t max_streams;       /* SETTINGS_MAX_CONCURRENT_STREAMS */
    size_t max_head;            /* header bytes per request (names + values) */
    size_t max_fields;          /* header fields per request */
    uint32_t max_resets;        /* client resets per second */
    uint32_t max_control;       /* SETTINGS + PING frames per second */
};

struct h2_conn;
struct h2_stream;

/** One request header field as received (names lowercase). */
struct h2_field {
    const char *name;  /* name */
    size_t nlen;       /* its length */
    const char *value; /* value */
    size_t vlen;       /* its length */
};

/** A list of received fields (a head or trailers), copied: the fields
 *  point into blob.  Zeroed = empty. */
struct h2_fields {
    struct h2_field *f;  /* fields */
    size_t n;            /* how many */
    size_t cap;          /* room in f */
    char *blob;          /* their bytes (names and values) */
    size_t blen;         /* bytes used */
    size_t bcap;         /* room in blob */
};

/** Appends a field to fl (copied) unless it would pass max_fields fields
 *  or max_bytes bytes of names and values: 0, 1 over a limit (nothing
 *  added), -1 out of memory. */
int h2_fields_add(struct h2_fields *fl, const uint8_t *name, size_t nlen, const uint8_t *value,
                  size_t vlen, size_t max_fields, size_t max_bytes);

/** Frees fl's memory and empties it. */
void h2_fields_free(struct h2_fields *fl);

/**
 * A DATA frame's payload for stream id, both directions (an nghttp2
 * on_data_chunk_recv hook): the connection window is given back at once;
 * the bytes go to virtual stream vs (NULL: the stream's user is gone, they
 * are dropped and the window given back), and the stream's window only
 * while its user reads (reading), else *unconsumed grows until it does.
 * 0, or an nghttp2 error code.
 */
int h2_stream_data(struct nghttp2_session *s, int32_t id, struct stream *vs, int reading,
                   size_t *unconsumed, const uint8_t *data, size_t len);

/**
 * An HTTP/2 session for client connection c whose socket stream is bev
 * (not started: see h2_conn_begin).  NULL when out of memory.
 */
struct h2_conn *h2_conn_new(struct px_conn *c, struct event_base *base, struct stream *bev,
                            const struct h2_limits *lim);

/**
 * h2c by Upgrade (RFC 7540 3.2), between h2_conn_new and h2_conn_begin:
 * settings[0..slen) is the request's HTTP2-Settings value (base64url
 * SETTINGS payload), taken as the client's first SETTINGS; the request,
 * fields f[0..n) (pseudo-headers first, then the others, as
 * px_h2_request takes them; names are lowercased here), becomes stream 1,
 * half-closed (remote), handed to proxy.c by h2_conn_begin.  "HTTP/1.1
 * 101 Switching Protocols" is written to bev, before the server preface.
 * 0, or -1 (settings not a SETTINGS payload, or out of memory): then
 * nothing was written, and the caller frees hc and answers over HTTP/1.1.
 */
int h2_conn_upgrade(struct h2_conn *hc, const char *settings, size_t slen,
                    const struct h2_field *f, size_t n);

/** Takes over bev's callbacks, sends the server preface and SETTINGS and
 *  reads what bev's input already holds (after an h2c upgrade, stream 1's
 *  request goes to proxy.c first).  When the connection ends,
 *  px_h2_conn_closed(c) is called from the loop (never from inside a
 *  call into this module). */
void h2_conn_begin(struct h2_conn *hc);

/** Frees the connection's session and streams (proxy.c, when c is
 *  freed).  NULL is a no-op. */
void h2_conn_free(struct h2_conn *hc);

/** Graceful stop: GOAWAY with the last stream id; the connection closes
 *  once its streams are done. */
void h2_conn_shutdown(struct h2_conn *hc);

/**
 * Submits the response head of stream hs: status, headers h (hop-by-hop
 * ones are left out, names sent lowercase), a content-length when clen >=
 * 0; the body follows from the virtual stream's output when has_body,
 * until its owner calls st_shutdown_write.  0 / -1.
 */
int h2_respond(struct h2_stream *hs, int status, const struct relais_hdrs *h, int64_t clen,
               int has_body);

/** The response trailers of stream hs (copied; sent in a HEADERS frame
 *  after the body, which must not have ended yet).  An empty list sends
 *  none.  0 / -1. */
int h2_set_trailers(struct h2_stream *hs, const struct relais_hdrs *t);

/** The fields of t (hop-by-hop and pseudo ones left out, names
 *  lowercase) as one malloc'd block of nghttp2_nv followed by their bytes
 *  (free() it), *n of them; NULL with *n = 0 when t is empty or out of
 *  memory.  For trailers (h2up.c too). */
void *h2_trailer_block(const struct relais_hdrs *t, size_t *n);

/** Frees virtual stream vs of a stream of connection hc (proxy.c, when
 *  it frees the stream's client connection): while hc goes on, its memory
 *  is kept for hc's next stream.  NULL hc: st_free. */
void h2_stream_free_vs(struct h2_conn *hc, struct stream *vs);

/** proxy.c is done with stream hs (its client connection is being
 *  freed): a stream whose response did not end is reset. */
void h2_stream_detach(struct h2_stream *hs);

/* ---- implemented by proxy.c ---------------------------------------- */

/** A new stream of connection c: a client connection of its own over
 *  virtual stream vs (which it owns from now on), or NULL (the stream is
 *  refused). */
struct px_conn *px_h2_stream_open(struct px_conn *c, struct stream *vs, struct h2_stream *hs);

/** The request head of stream sub: fields f[0..n) (pseudo-headers first,
 *  as received); end_stream when no body follows.  proxy.c answers
 *  through the usual exchange. */
void px_h2_request(struct px_conn *sub, const struct h2_field *f, size_t n, int end_stream);

/** A trailer field of the request on stream sub (copied into the
 *  exchange).  0, or -1 when the exchange's cap on fields is reached (the
 *  caller resets the stream). */
int px_h2_trailer(struct px_conn *sub, const char *name, size_t nlen, const char *value,
                  size_t vlen);

/** The stream of sub was closed or reset: abort what is in flight and
 *  free sub. */
void px_h2_stream_closed(struct px_conn *sub);

/** The HTTP/2 connection of c ended: close c. */
void px_h2_conn_closed(struct px_conn *c);

#endif /* RELAIS_H2_H */
