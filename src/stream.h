/*
 * stream — a socket with an input and an output buffer, driven by the
 * worker's event loop.  Module prefix: st_.
 *
 * It replaces libevent's bufferevent_socket on the data path, whose 2.1
 * series reads at most 4 KiB per call after a FIONREAD ioctl and re-arms
 * write interest with epoll_ctl on every response.  Here:
 *  - a read takes up to ST_READ_CHUNK bytes (about 32 KiB) in one recv
 *    into the input buffer, or ST_READ_SMALL (about 4 KiB) after a read
 *    that brought less than that (no 32 KiB chain per small exchange);
 *  - bytes appended to the output buffer are written at the end of the
 *    current loop turn (coalesced, one sendmsg), and write interest is
 *    registered only when the socket would block;
 *  - read interest stays registered while reading is enabled, so a
 *    keep-alive connection costs no epoll_ctl per request.
 * The API follows bufferevent's (callbacks, watermarks, timeouts).
 *
 * TLS (st_tls_connect / st_tls_accept): the same buffers carry plaintext;
 * OpenSSL reads and writes the socket itself (SSL_read / SSL_write on the
 * fd).  The handshake drives its own read and write interest; a client
 * stream reports ST_CONNECTED once the handshake is done, a server stream
 * starts delivering plaintext to the read callback.  A TLS failure is an
 * ST_ERROR event with errno EPROTO; st_tls_error says why.
 *
 * Callbacks run on the loop's thread.  A callback may free the stream
 * (st_free): the stream never touches itself after calling back.
 * Thread-safety: one stream belongs to one event loop.
 */
#ifndef RELAIS_STREAM_H
#define RELAIS_STREAM_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/util.h>

struct event_base;
struct evbuffer;
struct stream;

/* Event flags given to the event callback. */
#define ST_READING 0x01   /* the event happened while reading */
#define ST_WRITING 0x02   /* ... while writing (or connecting) */
#define ST_EOF 0x10       /* the peer closed its side */
#define ST_ERROR 0x20     /* a socket error (errno is set) */
#define ST_TIMEOUT 0x40   /* a read or write timeout */
#define ST_CONNECTED 0x80 /* st_connect completed */

/* Directions for st_enable / st_disable / st_setwatermark. */
#define ST_READ 0x02
#define ST_WRITE 0x04

/** Data arrived (read) or output drained to the low watermark (write). */
typedef void (*st_data_cb)(struct stream *s, void *arg);
/** Something happened: ST_* flags. */
typedef void (*st_event_cb)(struct stream *s, short what, void *arg);

/** Wraps a connected or connecting non-blocking socket (the stream owns
 *  and closes it).  Reading starts disabled.  NULL on allocation
 *  failure. */
struct stream *st_new(struct event_base *base, evutil_socket_t fd);

/** Closes the socket and frees; NULL is a no-op. */
void st_free(struct stream *s);

/** Sets the callbacks and their argument. */
void st_setcb(struct stream *s, st_data_cb readcb, st_data_cb writecb,
              st_event_cb eventcb, void *arg);

/** The input buffer (bytes read, for the owner to drain). */
struct evbuffer *st_input(struct stream *s);

/** The output buffer (what the owner appends is written out). */
struct evbuffer *st_output(struct stream *s);

/** Enables reading (ST_READ) and/or writing (ST_WRITE; on by default). */
void st_enable(struct stream *s, short what);

/** Disables reading and/or writing. */
void st_disable(struct stream *s, short what);

/** Watermarks: ST_READ high (stop reading while the input holds that
 *  much; 0 = no cap); ST_WRITE low (the write callback runs once the
 *  output drained to that level).  low/high as for bufferevent. */
void st_setwatermark(struct stream *s, short what, size_t low, size_t high);

/** Read / write inactivity timeouts (NULL = none).  The write timeout
 *  also bounds a connect. */
void st_set_timeouts(struct stream *s, const struct timeval *rd,
                     const struct timeval *wr);

/** Starts a connect; ST_CONNECTED (or ST_ERROR / ST_TIMEOUT with
 *  ST_WRITING) follows.  0, or -1 when it failed at once. */
int st_connect(struct stream *s, const struct sockaddr *sa, socklen_t len);

/** The socket. */
evutil_socket_t st_fd(const struct stream *s);

/** The owner has nothing in flight on s (an idle keep-alive connection):
 *  its empty buffers are freed, and made again when st_input/st_output
 *  or a read needs them (an idle connection then costs a few hundred
 *  bytes less).  No-op with data buffered, a write pending or TLS. */
void st_idle(struct stream *s);

/** Writes what the output holds now, without waiting for the end of the
 *  loop turn (used before a shutdown).  Never calls back. */
void st_flush(struct stream *s);

/** Half-closes the write side after flushing: TLS sends its close_notify,
 *  then the socket is shut down for writing.  Never calls back. */
void st_shutdown_write(struct stream *s);

typedef struct ssl_st SSL;

/** Client TLS on s (call after st_new, before or after st_connect): the
 *  stream takes ownership of ssl; the handshake runs once the socket is
 *  connected and ST_CONNECTED is reported after it.  0, or -1 (ssl is
 *  then still the caller's). */
int st_tls_connect(struct stream *s, SSL *ssl);

/** Server TLS on an accepted socket: the stream takes ownership of ssl
 *  and runs the handshake (its interest is its own, whatever reading is
 *  enabled); plaintext then reaches the read callback.  0 / -1 as above. */
int st_tls_accept(struct stream *s, SSL *ssl);

/** The TLS object (NULL for plain streams), e.g. for SNI and ALPN. */
SSL *st_ssl(const struct stream *s);

/** 1 while a TLS handshake is in progress. */
int st_tls_handshaking(const struct stream *s);

/** Why the last TLS operation failed ("" when none did). */
const char *st_tls_error(const struct stream *s);

/* ---- virtual streams: one HTTP/2 stream seen as a stream ------------
 *
 * A virtual stream has no socket: its owner (h2.c, one per HTTP/2 stream
 * of a connection) appends the peer's bytes to st_input and takes the
 * user's bytes from st_output when the protocol lets it (flow control).
 * The user (proxy.c) drives it with the same calls as a socket stream:
 * st_enable / st_disable of ST_READ tell the owner to open or hold the
 * peer's window; output is offered to the owner at the end of the loop
 * turn; the write callback runs once the owner took the output down to
 * the low watermark.  Of the timeouts, only the read one applies: a
 * timer re-armed by every input (ST_READING | ST_TIMEOUT). */

/** What the owner of a virtual stream does (loop thread). */
struct st_vops {
    /** Output is waiting in st_output(s): take what the protocol allows
     *  now (the rest later: st_virtual_taken when more may go).  0, or -1
     *  when the stream is dead (the user gets ST_WRITING | ST_ERROR). */
    int (*output)(struct stream *s, void *ctx);
    /** The user wants the peer's bytes (on = 1) or holds them (0). */
    void (*read_interest)(struct stream *s, void *ctx, int on);
    /** The user ended its output (st_shutdown_write). */
    void (*end_output)(struct stream *s, void *ctx);
};

/** A virtual stream of owner ops / ctx (borrowed; they outlive it).
 *  Reading starts disabled.  NULL when out of memory. */
struct stream *st_new_virtual(struct event_base *base, const struct st_vops *ops, void *ctx);

/** Freed virtual streams kept for reuse by one owner on one loop (an
 *  HTTP/2 connection's), so that a stream's memory, buffers and events
 *  serve the next one.  Zeroed with a cap = empty; st_vcache_clear frees
 *  what it holds. */
struct st_vcache {
    struct stream *list; /* kept streams (linked through the stream) */
    unsigned n;          /* how many */
    unsigned cap;        /* most kept (0: none, st_free_cached frees) */
};

/** As st_new_virtual, taking a stream kept in vc when there is one (on
 *  loop base).  NULL when out of memory. */
struct stream *st_new_virtual_cached(struct st_vcache *vc, struct event_base *base,
                                     const struct st_vops *ops, void *ctx);

/** As st_free for a virtual stream s (its owner detached or not; NULL is
 *  a no-op), except that while vc has room s is emptied and kept there:
 *  its buffered bytes are dropped, its timers stopped, nobody is called
 *  back.  A socket stream is freed. */
void st_free_cached(struct st_vcache *vc, struct stream *s);

/** Frees the streams vc keeps (vc is then empty, its cap unchanged). */
void st_vcache_clear(struct st_vcache *vc);

/** Owner: bytes were appended to st_input(s); the read callback runs if
 *  the user reads.  May call back (the user may free s). */
void st_virtual_input(struct stream *s);

/** Owner: something the user reads outside the input buffer arrived
 *  (an HTTP/2 response head): the read callback runs if the user reads,
 *  even with no input bytes.  May call back. */
void st_virtual_wake(struct stream *s);

/** Owner: the peer ended its side (no more input): the user gets
 *  ST_READING | ST_EOF.  May call back. */
void st_virtual_eof(struct stream *s);

/** Owner: the stream failed (reset): the user gets ST_ERROR.  May call
 *  back. */
void st_virtual_error(struct stream *s);

/** Owner: output was taken; the write callback runs when the output is
 *  at or below the low watermark.  May call back. */
void st_virtual_taken(struct stream *s);

/** Owner: it is gone (its context is freed); s's user may still call
 *  anything on s until it frees it: output then fails. */
void st_virtual_detach(struct stream *s);

/** 1 when s is a virtual stream. */
int st_is_virtual(const struct stream *s);

/** 1 when the peer ended its side (ST_EOF was or would be reported). */
int st_eof(const struct stream *s);

#endif /* RELAIS_STREAM_H */
