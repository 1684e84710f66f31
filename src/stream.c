/*
 * stream — see stream.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "stream.h"
#include "tls.h"

/* bytes one read may bring in: 32 KiB less room for libevent's chain
   header, so that the chain it allocates is 32 KiB, not 64 */
#define ST_READ_CHUNK (32 * 1024 - 256)
/* a read after one that brought less than this asks for this much (a 4 KiB
   chain): small exchanges do not make and free 32 KiB chains each time */
#define ST_READ_SMALL (4 * 1024 - 256)
#define ST_TLS_WRITE (16 * 1024)  /* plaintext per SSL_write (one record) */
#define ST_WRITE_IOV 64           /* output extents per send */
#define ST_TLS_DIRECT 4096        /* a first chunk this big is written as is */

/** A stream. */
struct stream {
    struct event_base *base;  /* owning loop */
    evutil_socket_t fd;       /* the socket (owned) */
    struct evbuffer *in;      /* bytes read */
    struct evbuffer *out;     /* bytes to write */
    struct evbuffer_cb_entry *in_cb;  /* watches input drains, only while
                                         suspended (a buffer with no
                                         callback skips libevent's
                                         callback run on every change) */
    struct evbuffer_cb_entry *out_cb; /* watches output appends */
    struct event *ev_read;    /* read readiness (persistent) */
    struct event *ev_write;   /* write readiness (persistent) */
    struct event *ev_flush;   /* end-of-turn write (activated) */
    st_data_cb readcb;        /* owner's callbacks */
    st_data_cb writecb;
    st_event_cb eventcb;
    void *arg;                /* their argument */
    size_t rd_high;           /* input cap (0 = none) */
    size_t wr_low;            /* write callback level */
    struct timeval rd_tmo;    /* read timeout */
    struct timeval wr_tmo;    /* write timeout */
    unsigned has_rd_tmo : 1;  /* rd_tmo set */
    unsigned has_wr_tmo : 1;  /* wr_tmo set */
    unsigned reading : 1;     /* the owner wants to read */
    unsigned writing : 1;     /* the owner lets output go out */
    unsigned suspended : 1;   /* reading held by the input cap */
    unsigned rd_added : 1;    /* ev_read registered */
    unsigned wr_added : 1;    /* ev_write registered */
    unsigned flush_pending : 1; /* ev_flush activated */
    unsigned connecting : 1;  /* connect in progress */
    unsigned eof : 1;         /* read side closed */
    unsigned idle_wanted : 1; /* st_idle asked: release the buffers once
                                 the output is written */
    unsigned rd_big : 1;      /* the last read brought ST_READ_SMALL or
                                 more: the next asks for ST_READ_CHUNK */
    SSL *ssl;                 /* TLS session (owned), or NULL */
    char *tls_err;            /* why TLS failed (allocated), or NULL */
    unsigned tls_hs : 1;      /* handshake in progress */
    unsigned tls_server : 1;  /* server side */
    unsigned tls_dead : 1;    /* a fatal TLS error: no close_notify */
    unsigned hs_want_w : 1;   /* the handshake waits for writability */
    unsigned rd_want_w : 1;   /* SSL_read waits for writability */
    unsigned wr_want_r : 1;   /* SSL_write waits for readability */
    const struct st_vops *vops; /* virtual stream: its owner's operations
                                   (NULL for a socket stream) */
    void *vctx;                 /* their context */
    struct stream *vnext;       /* next kept stream (struct st_vcache) */
};

static void st_on_read(evutil_socket_t fd, short what, void *arg);
static void st_in_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                          void *arg);
static void st_out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                           void *arg);

static void st_release_bufs(struct stream *s);
static void st_on_flush(evutil_socket_t fd, short what, void *arg);

/* Schedules the end-of-turn write (the flush event is made again if an
 * idle stream gave it back).  Out of memory: the write waits for the
 * owner's next one. */
static void st_flush_soon(struct stream *s)
{
    if (!s->ev_flush) s->ev_flush = event_new(s->base, -1, 0, st_on_flush, s);
    if (!s->ev_flush) return;
    s->flush_pending = 1;
    event_active(s->ev_flush, EV_WRITE, 1);
}

/* How much the next read asks for (see ST_READ_SMALL). */
static size_t st_read_size(const struct stream *s)
{
    return s->rd_big ? ST_READ_CHUNK : ST_READ_SMALL;
}

/* Bytes in b; 0 for a buffer released while idle (NULL). */
static size_t st_len(const struct evbuffer *b)
{
    return b ? evbuffer_get_length(b) : 0;
}

/* Makes s's buffers again after st_idle released them.  0 / -1 (out of
 * memory: the caller reports an error). */
static int st_bufs(struct stream *s)
{
    if (!s->in) {
        s->in = evbuffer_new();
        if (!s->in) return -1;
    }
    if (!s->out) {
        s->out = evbuffer_new();
        if (!s->out) return -1;
        s->out_cb = evbuffer_add_cb(s->out, st_out_changed, s);
    }
    return s->out_cb ? 0 : -1;
}

/* Registers or drops read interest according to the flags (a virtual
 * stream tells its owner when that changes). */
static void st_update_read(struct stream *s)
{
    int want = s->reading && !s->suspended && !s->eof;

    if (s->vops) {
        if (want != (int)s->rd_added) {
            s->rd_added = want ? 1 : 0;
            s->vops->read_interest(s, s->vctx, want);
        }
        return;
    }

    if (s->ssl && ((s->tls_hs && !s->hs_want_w) || s->wr_want_r)) want = 1;
    if (want && !s->rd_added) {
        event_add(s->ev_read, s->has_rd_tmo ? &s->rd_tmo : NULL);
        s->rd_added = 1;
        /* plaintext OpenSSL already decrypted makes no socket event */
        if (s->ssl && !s->tls_hs && SSL_has_pending(s->ssl)) event_active(s->ev_read, EV_READ, 1);
    } else if (!want && s->rd_added) {
        event_del(s->ev_read);
        s->rd_added = 0;
    }
}

/* Holds reading: the input reached its cap.  The drain watch that lifts
 * the hold is attached now (out of memory: no hold; the input then grows
 * past the cap rather than never being read again). */
static void st_suspend(struct stream *s)
{
    if (!s->in_cb) s->in_cb = evbuffer_add_cb(s->in, st_in_changed, s);
    if (!s->in_cb) return;
    s->suspended = 1;
    st_update_read(s);
}

/* Lifts the hold of st_suspend and detaches its drain watch. */
static void st_resume(struct stream *s)
{
    s->suspended = 0;
    if (s->in_cb) {
        evbuffer_remove_cb_entry(s->in, s->in_cb);
        s->in_cb = NULL;
    }
    st_update_read(s);
}

static void st_on_write(evutil_socket_t fd, short what, void *arg);

/* Registers write interest (re-arming its timeout: progress was made).
 * The write event is made the first time a write has to wait: most
 * connections never need it, and an idle one keeps none. */
static void st_want_write(struct stream *s)
{
    if (!s->ev_write) {
        s->ev_write = event_new(s->base, s->fd, EV_WRITE | EV_PERSIST, st_on_write, s);
        if (!s->ev_write) return; /* out of memory: the write timeout or the
                                     owner's next write retries */
    }
    event_add(s->ev_write, s->has_wr_tmo ? &s->wr_tmo : NULL);
    s->wr_added = 1;
}

/* Drops write interest. */
static void st_drop_write(struct stream *s)
{
    if (s->wr_added) {
        event_del(s->ev_write);
        s->wr_added = 0;
    }
}

/* Records why TLS failed on s (the OpenSSL error queue is cleared). */
static void st_tls_fail(struct stream *s)
{
    char buf[200];

    tls_describe_error(s->ssl, buf, sizeof(buf));
    free(s->tls_err);
    s->tls_err = strdup(buf);
    s->tls_dead = 1;
    errno = EPROTO;
}

/* TLS: writes what it can through SSL_write.  Returns bytes written (>= 0)
 * or -1 on a failure.  Interest for a retry is registered here. */
static ssize_t st_tls_write(struct stream *s)
{
    ssize_t total = 0;
    size_t len, n, w;
    struct evbuffer_iovec v;
    const void *p;
    int rc;

    while ((len = st_len(s->out)) > 0) {
        if (evbuffer_peek(s->out, -1, NULL, &v, 1) < 1) break;
        if (v.iov_len >= ST_TLS_DIRECT || v.iov_len == len) {
            p = v.iov_base;
            n = v.iov_len < ST_TLS_WRITE ? v.iov_len : ST_TLS_WRITE;
        } else {
            n = len < ST_TLS_WRITE ? len : ST_TLS_WRITE;
            p = evbuffer_pullup(s->out, (ev_ssize_t)n);
            if (!p) return -1;
        }
        rc = SSL_write_ex(s->ssl, p, n, &w);
        if (rc == 1) {
            evbuffer_drain(s->out, w);
            total += (ssize_t)w;
            continue;
        }
        switch (SSL_get_error(s->ssl, rc)) {
        case SSL_ERROR_WANT_WRITE:
            if (!s->wr_added) st_want_write(s);
            return total;
        case SSL_ERROR_WANT_READ:
            s->wr_want_r = 1;
            st_update_read(s);
            return total;
        case SSL_ERROR_SYSCALL:
            if (errno == EAGAIN || errno == EINTR) {
                if (!s->wr_added) st_want_write(s);
                return total;
            }
            /* fall through */
        default:
            st_tls_fail(s);
            return -1;
        }
    }
    return total;
}

/* Plain socket: sends the output's first ST_WRITE_IOV extents in one
 * send/sendmsg (a socket's own calls: writev goes through the file layer,
 * its position lock and iterators) and drains what went.  Returns the
 * bytes sent, or -1 with errno. */
static ssize_t st_sock_write(struct stream *s)
{
    struct evbuffer_iovec v[ST_WRITE_IOV];
    struct iovec iov[ST_WRITE_IOV];
    struct msghdr m;
    ssize_t w;
    int nv = evbuffer_peek(s->out, -1, NULL, v, ST_WRITE_IOV);

    if (nv <= 0) return 0;
    if (nv > ST_WRITE_IOV) nv = ST_WRITE_IOV;
    if (nv == 1) {
        w = send(s->fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL);
    } else {
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        memset(&m, 0, sizeof(m));
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)nv;
        w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
    }
    if (w > 0) evbuffer_drain(s->out, (size_t)w);
    return w;
}

/* Writes what it can.  Returns 1 when bytes went out and the output is
 * now at or below the low watermark, 0 otherwise, -1 on a socket error. */
static int st_do_write(struct stream *s)
{
    size_t before = st_len(s->out), after;
    ssize_t n;

    if (before == 0) {
        st_drop_write(s);
        return 0;
    }
    if (s->vops) {
        if (s->vops->output(s, s->vctx) < 0) return -1;
        after = st_len(s->out);
        return (after < before && after <= s->wr_low) ? 1 : 0;
    }
    if (s->ssl) {
        ssize_t w;
        if (s->tls_hs) return 0; /* the output waits for the handshake */
        w = st_tls_write(s);
        if (w < 0) return -1;
        after = st_len(s->out);
        if (after == 0) st_drop_write(s);
        return (w > 0 && after <= s->wr_low) ? 1 : 0;
    }
    n = st_sock_write(s);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (!s->wr_added) st_want_write(s);
            return 0;
        }
        return -1;
    }
    after = st_len(s->out);
    if (after > 0) st_want_write(s);
    else st_drop_write(s);
    return (n > 0 && after <= s->wr_low) ? 1 : 0;
}

/* Writes and tells the owner (last thing: the owner may free s). */
static void st_write_notify(struct stream *s)
{
    int rc;

    if (!s->writing || s->connecting || s->tls_hs) return;
    rc = st_do_write(s);
    if (rc >= 0 && s->idle_wanted && !s->wr_added && !s->flush_pending && !st_len(s->in) &&
        !st_len(s->out))
        st_release_bufs(s); /* before writecb, which may free s */
    if (rc < 0) {
        st_drop_write(s);
        if (s->eventcb) s->eventcb(s, ST_WRITING | ST_ERROR, s->arg);
    } else if (rc == 1 && s->writecb) {
        s->writecb(s, s->arg);
    }
}

/* Output grew: write at the end of this loop turn. */
static void st_out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                           void *arg)
{
    struct stream *s = arg;

    (void)buf;
    if (info->n_added == 0 || s->flush_pending || s->connecting || s->wr_added) return;
    st_flush_soon(s);
}

/* Input shrank: lift the cap when it is no longer reached. */
static void st_in_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                          void *arg)
{
    struct stream *s = arg;

    if (info->n_deleted == 0 || !s->suspended) return;
    /* st_resume removes this callback: libevent allows it */
    if (evbuffer_get_length(buf) < s->rd_high) st_resume(s);
}

/* End of the loop turn: the coalesced write. */
static void st_on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;

    (void)fd;
    (void)what;
    s->flush_pending = 0;
    st_write_notify(s);
}

/* Schedules the end-of-turn write when output is waiting. */
static void st_schedule_flush(struct stream *s)
{
    if (st_len(s->out) > 0 && !s->flush_pending && s->writing) {
        st_flush_soon(s);
    }
}

/* Runs the TLS handshake as far as the socket allows; reports its end
 * (client: ST_CONNECTED) or failure.  Last thing: may call back. */
static void st_tls_handshake(struct stream *s)
{
    int rc = SSL_do_handshake(s->ssl);

    if (rc == 1) {
        s->tls_hs = 0;
        s->hs_want_w = 0;
        st_drop_write(s);
        st_update_read(s);
        st_schedule_flush(s);
        if (SSL_has_pending(s->ssl) && s->rd_added) event_active(s->ev_read, EV_READ, 1);
        if (!s->tls_server && s->eventcb) s->eventcb(s, ST_CONNECTED, s->arg);
        return;
    }
    switch (SSL_get_error(s->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        s->hs_want_w = 0;
        st_drop_write(s);
        st_update_read(s);
        return;
    case SSL_ERROR_WANT_WRITE:
        s->hs_want_w = 1;
        st_update_read(s);
        if (!s->wr_added) st_want_write(s);
        return;
    default:
        st_tls_fail(s);
        s->tls_hs = 0;
        s->eof = 1;
        st_drop_write(s);
        st_update_read(s);
        if (s->eventcb)
            s->eventcb(s, (s->tls_server ? ST_READING : ST_WRITING) | ST_ERROR, s->arg);
        return;
    }
}

/* TLS: socket readable.  Decrypts up to ST_READ_CHUNK bytes into the
 * input, then calls back like the plain path.  Last thing: may call back. */
static void st_tls_read(struct stream *s)
{
    struct evbuffer_iovec v[2];
    size_t got = 0, r;
    int nv, i, rc = 1, err = SSL_ERROR_NONE;

    if (s->wr_want_r) { /* a write waited for this */
        s->wr_want_r = 0;
        st_update_read(s);
        st_write_notify(s);
        return; /* level-triggered: a read, if any, comes next turn */
    }
    nv = st_bufs(s) < 0 ? -1 : evbuffer_reserve_space(s->in, st_read_size(s), v, 2);
    if (nv <= 0) {
        if (s->eventcb) s->eventcb(s, ST_READING | ST_ERROR, s->arg);
        return;
    }
    for (i = 0; i < nv; i++) {
        size_t fill = 0;
        while (rc == 1 && fill < v[i].iov_len) {
            rc = SSL_read_ex(s->ssl, (char *)v[i].iov_base + fill, v[i].iov_len - fill, &r);
            if (rc != 1) {
                err = SSL_get_error(s->ssl, rc);
                break;
            }
            fill += r;
        }
        v[i].iov_len = fill;
        got += fill;
    }
    evbuffer_commit_space(s->in, v, nv);
    s->rd_big = got >= ST_READ_SMALL;
    if (err == SSL_ERROR_WANT_WRITE) {
        s->rd_want_w = 1;
        if (!s->wr_added) st_want_write(s);
    } else if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR)) {
        err = SSL_ERROR_WANT_READ;
    }
    if (got > 0) {
        if (s->rd_high && st_len(s->in) >= s->rd_high) {
            st_suspend(s);
        } else if (err == SSL_ERROR_NONE && SSL_has_pending(s->ssl)) {
            event_active(s->ev_read, EV_READ, 1); /* the chunk was full */
        }
        /* an end or error after the data is seen on the next turn */
        if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ &&
            err != SSL_ERROR_WANT_WRITE && s->rd_added)
            event_active(s->ev_read, EV_READ, 1);
        ERR_clear_error();
        if (s->readcb) s->readcb(s, s->arg);
        return;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_NONE)
        return;
    s->eof = 1;
    st_update_read(s);
    if (err == SSL_ERROR_ZERO_RETURN ||
        (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        ERR_clear_error();
        if (err == SSL_ERROR_SYSCALL) s->tls_dead = 1;
        if (s->eventcb) s->eventcb(s, ST_READING | ST_EOF, s->arg);
        return;
    }
    st_tls_fail(s);
    if (s->eventcb) s->eventcb(s, ST_READING | ST_ERROR, s->arg);
}

/* Socket readable (or read timeout). */
static void st_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t n;
    int nv, i;

    s->idle_wanted = 0; /* the client speaks again */
    if (what & EV_TIMEOUT) {
        if (s->eventcb) s->eventcb(s, ST_READING | ST_TIMEOUT, s->arg);
        return;
    }
    if (s->ssl) {
        if (s->tls_hs) st_tls_handshake(s);
        else st_tls_read(s);
        return;
    }
    nv = st_bufs(s) < 0 ? -1 : evbuffer_reserve_space(s->in, st_read_size(s), v, 2);
    if (nv <= 0) {
        if (s->eventcb) s->eventcb(s, ST_READING | ST_ERROR, s->arg);
        return;
    }
    /* recv/recvmsg: a socket's own calls (readv goes through the file
       layer) */
    if (nv == 1) {
        n = recv(fd, v[0].iov_base, v[0].iov_len, 0);
    } else {
        struct msghdr m;
        for (i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        memset(&m, 0, sizeof(m));
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)nv;
        n = recvmsg(fd, &m, 0);
    }
    if (n > 0) {
        size_t left = (size_t)n;
        for (i = 0; i < nv; i++) {
            if (v[i].iov_len > left) v[i].iov_len = left;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(s->in, v, nv);
        s->rd_big = (size_t)n >= ST_READ_SMALL;
        if (s->rd_high && st_len(s->in) >= s->rd_high) st_suspend(s);
        if (s->readcb) s->readcb(s, s->arg);
        return;
    }
    evbuffer_commit_space(s->in, v, 0);
    if (n == 0) {
        s->eof = 1;
        st_update_read(s);
        if (s->eventcb) s->eventcb(s, ST_READING | ST_EOF, s->arg);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    s->eof = 1;
    st_update_read(s);
    if (s->eventcb) s->eventcb(s, ST_READING | ST_ERROR, s->arg);
}

/* Socket writable (or write timeout), or a connect finished. */
static void st_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    if (what & EV_TIMEOUT) {
        st_drop_write(s);
        if (s->eventcb) s->eventcb(s, ST_WRITING | ST_TIMEOUT, s->arg);
        return;
    }
    if (s->connecting) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        st_drop_write(s);
        if (err) {
            errno = err;
            if (s->eventcb) s->eventcb(s, ST_WRITING | ST_ERROR, s->arg);
            return;
        }
        s->connecting = 0;
        if (s->ssl) {
            st_tls_handshake(s);
            return;
        }
        if (st_len(s->out) > 0 && !s->flush_pending) {
            st_flush_soon(s);
        }
        if (s->eventcb) s->eventcb(s, ST_CONNECTED, s->arg);
        return;
    }
    if (s->ssl && s->tls_hs) {
        st_tls_handshake(s);
        return;
    }
    if (s->ssl && s->rd_want_w) { /* a read waited for this */
        s->rd_want_w = 0;
        if (!st_len(s->out)) st_drop_write(s);
        st_on_read(fd, EV_READ, s);
        return;
    }
    st_write_notify(s);
}

struct stream *st_new(struct event_base *base, evutil_socket_t fd)
{
    struct stream *s = calloc(1, sizeof(*s));

    if (!s) return NULL;
    s->base = base;
    s->fd = fd;
    s->writing = 1;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, st_on_read, s);
    s->ev_flush = event_new(base, -1, 0, st_on_flush, s);
    if (!s->in || !s->out || !s->ev_read || !s->ev_flush) {
        s->fd = -1; /* the caller still owns fd on failure */
        st_free(s);
        return NULL;
    }
    s->out_cb = evbuffer_add_cb(s->out, st_out_changed, s);
    if (!s->out_cb) {
        s->fd = -1; /* a socket stream's caller still owns fd on failure */
        st_free(s);
        return NULL;
    }
    return s;
}

void st_free(struct stream *s)
{
    if (!s) return;
    if (s->ev_read) event_free(s->ev_read);
    if (s->ev_write) event_free(s->ev_write);
    if (s->ev_flush) event_free(s->ev_flush);
    if (s->in) {
        if (s->in_cb) evbuffer_remove_cb_entry(s->in, s->in_cb);
        evbuffer_free(s->in);
    }
    if (s->out) {
        if (s->out_cb) evbuffer_remove_cb_entry(s->out, s->out_cb);
        evbuffer_free(s->out);
    }
    if (s->ssl) {
        /* a courtesy close_notify (never waited for) */
        if (!s->tls_hs && !s->tls_dead && s->fd >= 0) SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        ERR_clear_error();
    }
    free(s->tls_err);
    if (s->fd >= 0) evutil_closesocket(s->fd);
    free(s);
}

void st_setcb(struct stream *s, st_data_cb readcb, st_data_cb writecb,
              st_event_cb eventcb, void *arg)
{
    s->readcb = readcb;
    s->writecb = writecb;
    s->eventcb = eventcb;
    s->arg = arg;
}

struct evbuffer *st_input(struct stream *s)
{
    if (!s->in) st_bufs(s); /* a released buffer comes back on use */
    return s->in;
}

struct evbuffer *st_output(struct stream *s)
{
    if (!s->out) st_bufs(s);
    return s->out;
}

/* Frees s's empty buffers and its flush event (see st_idle). */
static void st_release_bufs(struct stream *s)
{
    s->idle_wanted = 0;
    if (s->ev_flush && !s->flush_pending) {
        event_free(s->ev_flush);
        s->ev_flush = NULL;
    }
    if (s->in) {
        if (s->in_cb) evbuffer_remove_cb_entry(s->in, s->in_cb);
        evbuffer_free(s->in);
    }
    if (s->out) {
        if (s->out_cb) evbuffer_remove_cb_entry(s->out, s->out_cb);
        evbuffer_free(s->out);
    }
    s->in = s->out = NULL;
    s->in_cb = s->out_cb = NULL;
}

void st_idle(struct stream *s)
{
    if (!s || s->ssl) return;
    if (s->flush_pending || s->wr_added || st_len(s->in) || st_len(s->out)) {
        s->idle_wanted = 1; /* once the response is out (st_write_notify) */
        return;
    }
    st_release_bufs(s);
}

evutil_socket_t st_fd(const struct stream *s)
{
    return s->fd;
}

void st_enable(struct stream *s, short what)
{
    if (what & ST_READ) {
        s->reading = 1;
        st_update_read(s);
    }
    if ((what & ST_WRITE) && !s->writing) {
        s->writing = 1;
        if (st_len(s->out) && !s->flush_pending && !s->connecting) {
            st_flush_soon(s);
        }
    }
}

void st_disable(struct stream *s, short what)
{
    if (what & ST_READ) {
        s->reading = 0;
        st_update_read(s);
    }
    if (what & ST_WRITE) {
        s->writing = 0;
        if (!s->connecting) st_drop_write(s);
    }
}

void st_setwatermark(struct stream *s, short what, size_t low, size_t high)
{
    if (what & ST_READ) {
        s->rd_high = high;
        if (s->suspended && (!high || st_len(s->in) < high)) st_resume(s);
    }
    if (what & ST_WRITE) s->wr_low = low;
}

/* 1 when the timeout (has, tv) equals the one given (NULL = none). */
static int st_same_tmo(int has, const struct timeval *cur, const struct timeval *tv)
{
    if (!has || !tv) return !has && !tv;
    return cur->tv_sec == tv->tv_sec && cur->tv_usec == tv->tv_usec;
}

/* A virtual stream's read timeout fired: no input for rd_tmo. */
static void st_vtimeout(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;

    (void)fd;
    (void)what;
    if (s->eventcb) s->eventcb(s, ST_READING | ST_TIMEOUT, s->arg);
}

/* A virtual stream's timeouts: only the read one, a timer re-armed by
 * every input (there is no socket to wait on; writes are the owner's). */
static void st_virtual_timeouts(struct stream *s, const struct timeval *rd)
{
    s->has_rd_tmo = rd != NULL;
    if (!rd) {
        if (s->ev_read) evtimer_del(s->ev_read);
        return;
    }
    s->rd_tmo = *rd;
    if (!s->ev_read) s->ev_read = evtimer_new(s->base, st_vtimeout, s);
    if (s->ev_read) evtimer_add(s->ev_read, &s->rd_tmo);
}

void st_set_timeouts(struct stream *s, const struct timeval *rd,
                     const struct timeval *wr)
{
    if (s->vops) {
        st_virtual_timeouts(s, rd);
        return;
    }
    /* the common case, nothing changes, costs no system call */
    if (st_same_tmo(s->has_rd_tmo, &s->rd_tmo, rd) &&
        st_same_tmo(s->has_wr_tmo, &s->wr_tmo, wr))
        return;
    s->has_rd_tmo = rd != NULL;
    if (rd) s->rd_tmo = *rd;
    s->has_wr_tmo = wr != NULL;
    if (wr) s->wr_tmo = *wr;
    /* A persistent event remembers its last timeout and re-arms it on
     * every activation, even after event_add(ev, NULL): re-assign the
     * events so that clearing a timeout really clears it. */
    event_del(s->ev_read);
    event_assign(s->ev_read, s->base, s->fd, EV_READ | EV_PERSIST, st_on_read, s);
    if (s->rd_added) event_add(s->ev_read, rd ? &s->rd_tmo : NULL);
    if (s->ev_write) {
        event_del(s->ev_write);
        event_assign(s->ev_write, s->base, s->fd, EV_WRITE | EV_PERSIST, st_on_write, s);
        if (s->wr_added) event_add(s->ev_write, wr ? &s->wr_tmo : NULL);
    }
}

int st_connect(struct stream *s, const struct sockaddr *sa, socklen_t len)
{
    if (s->vops) return -1;
    if (connect(s->fd, sa, len) < 0 && errno != EINPROGRESS) return -1;
    /* done or in progress: writability tells (and SO_ERROR says how) */
    s->connecting = 1;
    st_want_write(s);
    return 0;
}

void st_flush(struct stream *s)
{
    if (!s->connecting && !s->tls_hs && s->writing && st_do_write(s) < 0) st_drop_write(s);
}

void st_shutdown_write(struct stream *s)
{
    st_flush(s);
    if (s->vops) {
        s->vops->end_output(s, s->vctx);
        return;
    }
    if (s->ssl && !s->tls_hs && !s->tls_dead) {
        SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    shutdown(s->fd, SHUT_WR);
}

/* Attaches ssl to s (either side). */
static int st_tls_attach(struct stream *s, SSL *ssl, int server)
{
    if (s->ssl || !ssl || SSL_set_fd(ssl, s->fd) != 1) {
        ERR_clear_error();
        return -1;
    }
    s->ssl = ssl;
    s->tls_hs = 1;
    s->tls_server = server ? 1 : 0;
    if (server) SSL_set_accept_state(ssl);
    else SSL_set_connect_state(ssl);
    return 0;
}

int st_tls_connect(struct stream *s, SSL *ssl)
{
    if (st_tls_attach(s, ssl, 0) < 0) return -1;
    /* not connecting yet or already connected: the handshake starts when
     * the socket is writable (st_on_write's connect branch or here) */
    if (!s->connecting) {
        s->hs_want_w = 1;
        st_want_write(s);
    }
    return 0;
}

int st_tls_accept(struct stream *s, SSL *ssl)
{
    if (st_tls_attach(s, ssl, 1) < 0) return -1;
    st_update_read(s);
    return 0;
}

SSL *st_ssl(const struct stream *s)
{
    return s->ssl;
}

int st_tls_handshaking(const struct stream *s)
{
    return s->ssl && s->tls_hs;
}

const char *st_tls_error(const struct stream *s)
{
    return s->tls_err ? s->tls_err : "";
}

/* A detached virtual stream's owner: gone (output fails, the rest is
 * ignored). */
static int st_gone_output(struct stream *s, void *ctx)
{
    (void)s;
    (void)ctx;
    return -1;
}

static void st_gone_interest(struct stream *s, void *ctx, int on)
{
    (void)s;
    (void)ctx;
    (void)on;
}

static void st_gone_end(struct stream *s, void *ctx)
{
    (void)s;
    (void)ctx;
}

static const struct st_vops st_gone = {st_gone_output, st_gone_interest, st_gone_end};

void st_virtual_detach(struct stream *s)
{
    s->vops = &st_gone;
    s->vctx = NULL;
}

struct stream *st_new_virtual(struct event_base *base, const struct st_vops *ops, void *ctx)
{
    struct stream *s = calloc(1, sizeof(*s));

    if (!s) return NULL;
    s->base = base;
    s->fd = -1;
    s->writing = 1;
    s->vops = ops;
    s->vctx = ctx;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->ev_flush = event_new(base, -1, 0, st_on_flush, s);
    if (!s->in || !s->out || !s->ev_flush) {
        st_free(s);
        return NULL;
    }
    s->out_cb = evbuffer_add_cb(s->out, st_out_changed, s);
    if (!s->out_cb) {
        s->fd = -1; /* a socket stream's caller still owns fd on failure */
        st_free(s);
        return NULL;
    }
    return s;
}

struct stream *st_new_virtual_cached(struct st_vcache *vc, struct event_base *base,
                                     const struct st_vops *ops, void *ctx)
{
    struct stream *s = vc->list;

    if (!s || s->base != base) return st_new_virtual(base, ops, ctx);
    vc->list = s->vnext;
    vc->n--;
    s->vnext = NULL;
    s->vops = ops;
    s->vctx = ctx;
    return s;
}

void st_free_cached(struct st_vcache *vc, struct stream *s)
{
    struct stream keep;

    if (!s) return;
    if (!s->vops || s->ev_write || s->ssl || vc->n >= vc->cap) {
        st_free(s);
        return;
    }
    /* no owner any more: the drains below call nobody back */
    s->vops = &st_gone;
    s->vctx = NULL;
    if (s->suspended) {
        s->suspended = 0;
        if (s->in_cb) evbuffer_remove_cb_entry(s->in, s->in_cb);
        s->in_cb = NULL;
    }
    /* the read timer runs only with a timeout, the flush event only
       while flush_pending */
    if (s->ev_read && s->has_rd_tmo) evtimer_del(s->ev_read);
    if (s->ev_flush && s->flush_pending) event_del(s->ev_flush);
    if (st_len(s->in)) evbuffer_drain(s->in, st_len(s->in));
    if (st_len(s->out)) evbuffer_drain(s->out, st_len(s->out));
    /* as st_new_virtual leaves a stream, with its buffers, their
       callbacks and its events (same loop, same stream: their arguments
       hold) */
    keep = *s;
    memset(s, 0, sizeof(*s));
    s->base = keep.base;
    s->fd = -1;
    s->writing = 1;
    s->in = keep.in;
    s->out = keep.out;
    s->out_cb = keep.out_cb;
    s->ev_read = keep.ev_read;
    s->ev_flush = keep.ev_flush;
    s->vops = &st_gone;
    s->vnext = vc->list;
    vc->list = s;
    vc->n++;
}

void st_vcache_clear(struct st_vcache *vc)
{
    while (vc->list) {
        struct stream *s = vc->list;
        vc->list = s->vnext;
        st_free(s);
    }
    vc->n = 0;
}

void st_virtual_input(struct stream *s)
{
    if (s->has_rd_tmo && s->ev_read) evtimer_add(s->ev_read, &s->rd_tmo);
    if (s->rd_high && st_len(s->in) >= s->rd_high) st_suspend(s);
    if (s->reading && st_len(s->in) && s->readcb) s->readcb(s, s->arg);
}

void st_virtual_wake(struct stream *s)
{
    if (s->has_rd_tmo && s->ev_read) evtimer_add(s->ev_read, &s->rd_tmo);
    if (s->reading && s->readcb) s->readcb(s, s->arg);
}

void st_virtual_eof(struct stream *s)
{
    s->eof = 1;
    st_update_read(s);
    if (s->eventcb) s->eventcb(s, ST_READING | ST_EOF, s->arg);
}

void st_virtual_error(struct stream *s)
{
    errno = ECONNRESET;
    if (s->eventcb) s->eventcb(s, ST_ERROR, s->arg);
}

void st_virtual_taken(struct stream *s)
{
    if (s->writing && s->writecb && st_len(s->out) <= s->wr_low) s->writecb(s, s->arg);
}

int st_is_virtual(const struct stream *s)
{
    return s->vops != NULL;
}

int st_eof(const struct stream *s)
{
    return s->eof;
}
