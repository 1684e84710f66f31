/*
 * h2up — HTTP/2 towards servers (RFC 9113), with libnghttp2.  Module
 * prefix: h2u_.
 *
 * A server is spoken to in HTTP/2 when its URL says h2c:// (prior
 * knowledge over plain TCP, Traefik's scheme for gRPC without TLS) or when
 * an https:// server selects "h2" by ALPN (offered unless the
 * serversTransport says disableHTTP2).  upstream.c connects the socket as
 * for HTTP/1.1 (dialTimeout, TLS, peer checks); once it is up, this module
 * takes it over (struct h2u_conn) and each request becomes one stream of
 * it, seen by proxy.c as a virtual stream (stream.c) inside an up_conn:
 *  - the head goes with h2u_submit (built from the version-independent
 *    request model, never from HTTP/1.1 bytes);
 *  - proxy.c writes the body's payload bytes to st_output and ends it with
 *    st_shutdown_write (trailers first, h2u_set_trailers);
 *  - the response head is read with h2u_response when the read callback
 *    runs (st_virtual_wake), the body from st_input until ST_EOF (the
 *    server's END_STREAM), the trailers with h2u_trailers at that point;
 *  - a reset or a dead connection is ST_ERROR.
 * Back-pressure: a stream's window is given back only as proxy.c reads
 * (reading disabled holds the server), the connection's at once.
 *
 * The connections of a worker's pool are listed by the pool (one list per
 * pool, see h2u_conn_new); a connection takes new streams while it has
 * room under the server's SETTINGS_MAX_CONCURRENT_STREAMS and no GOAWAY,
 * and closes after its idle timeout once it has none.
 *
 * Thread: the worker's loop that owns the pool.
 */
#ifndef RELAIS_H2UP_H
#define RELAIS_H2UP_H

#include <stddef.h>
#include <stdint.h>

struct up_conn;
struct relais_hdrs;
struct h2_field;
struct h2u_conn;
struct h2u_stream;

/** The request head of one stream (all borrowed for the call). */
struct h2u_head {
    const char *method;    size_t method_len;    /* :method */
    const char *scheme;                          /* :scheme ("http"/"https") */
    const char *authority; size_t authority_len; /* :authority */
    const char *path;      size_t path_len;      /* :path (with the query) */
    const struct relais_hdrs *hdrs;              /* regular fields (hop-by-hop
                                                    and Host are skipped; "te"
                                                    only as "trailers") */
    int end_stream;                              /* no body follows */
};

/**
 * Takes over sock (a connected socket up_conn, TLS done) as an HTTP/2
 * connection linked first in *list (the pool's list, which must outlive
 * it).  idle_ms closes it once it has carried no stream that long (0 =
 * never).  Sends the preface and SETTINGS.  NULL when out of memory (sock
 * is then freed).
 */
struct h2u_conn *h2u_conn_new(struct h2u_conn **list, struct up_conn *sock, int64_t idle_ms);

/** Closes the connection now: its streams get ST_ERROR (from inside this
 *  call) and it is unlinked and freed.  NULL is a no-op. */
void h2u_conn_free(struct h2u_conn *hc);

/** The first connection of list for pool key key that can take a new
 *  stream, or NULL. */
struct h2u_conn *h2u_find(struct h2u_conn *list, const char *key);

/**
 * A new stream of hc wrapped in an up_conn (calloc'd, owned by the caller,
 * freed with up_conn_free, which resets the stream if it is not finished).
 * The stream is opened on the wire by h2u_submit.  NULL when out of
 * memory.
 */
struct up_conn *h2u_open(struct h2u_conn *hc);

/** Sends the request head of stream c (an up_conn from h2u_open).  0, or
 *  -1 (the connection is gone or nghttp2 refused the head). */
int h2u_submit(struct up_conn *c, const struct h2u_head *head);

/** The request's trailers (copied), sent when the body ends
 *  (st_shutdown_write); an empty list sends none.  0 / -1. */
int h2u_set_trailers(struct up_conn *c, const struct relais_hdrs *t);

/**
 * The final response head of stream c: 1 with *status and the fields
 * (names lowercase, pseudo-headers removed, valid until the stream is
 * freed), 0 when it has not arrived.  *interim counts the 100 Continue
 * heads seen so far (the caller relays new ones); *ended is 1 when that
 * head came with END_STREAM (no body follows: gRPC's Trailers-Only).
 */
int h2u_response(struct up_conn *c, int *status, const struct h2_field **f, size_t *n,
                 unsigned *interim, int *ended);

/** The response trailers of stream c (complete at ST_EOF), valid until
 *  the stream is freed; *n = 0 when none. */
const struct h2_field *h2u_trailers(struct up_conn *c, size_t *n);

/** Frees stream c's state (up_conn_free calls it): RST_STREAM CANCEL when
 *  it is still open. */
void h2u_close(struct up_conn *c);

/** Streams open on hc (tests). */
unsigned h2u_streams(const struct h2u_conn *hc);

#endif /* RELAIS_H2UP_H */
