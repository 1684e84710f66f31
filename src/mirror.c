/*
 * mirror.c — fire-and-forget copies of requests.  See mirror.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "mirror.h"
#include "snapshot.h"
#include "stream.h"
#include "transport.h"
#include "upstream.h"
#include "worker.h"

/** One mirror call. */
struct mr_call {
    struct worker *w;          /* owning worker */
    struct snapshot *snap;     /* reference keeping the server alive */
    struct up_conn *up;        /* the connection to the server */
    struct evbuffer *out;      /* request bytes not yet handed to it */
    struct mr_call *next;      /* the worker's list */
    struct mr_call *prev;
};

/** A worker's open calls. */
struct mr_set {
    struct mr_call *head; /* list */
    size_t n;             /* length (capped by MR_MAX_CALLS) */
};

/* Ends call m: closes its connection, drops its snapshot reference. */
static void mr_end(struct mr_call *m)
{
    struct mr_set *set = m->w->mirrors;

    if (m->prev) m->prev->next = m->next;
    else set->head = m->next;
    if (m->next) m->next->prev = m->prev;
    set->n--;
    up_conn_free(m->up);
    evbuffer_free(m->out);
    snap_unref(m->snap);
    free(m);
}

/* The server's answer: read and thrown away. */
static void mr_read(struct stream *s, void *arg)
{
    (void)arg;
    evbuffer_drain(st_input(s), evbuffer_get_length(st_input(s)));
}

/* Connected, closed, failed or timed out. */
static void mr_event(struct stream *s, short what, void *arg)
{
    struct mr_call *m = arg;

    if (what & ST_CONNECTED) {
        evbuffer_add_buffer(st_output(s), m->out);
        st_enable(s, ST_READ | ST_WRITE);
        return;
    }
    if (what & (ST_TIMEOUT | ST_ERROR))
        log_debug("mirror", "mirror request to %s ended early (%s)",
                  m->up && m->up->key ? m->up->key : "?",
                  (what & ST_TIMEOUT) ? "timeout" : "error");
    mr_end(m);
}

void mr_send(struct worker *w, struct snapshot *snap, const struct snap_server *sv,
             struct evbuffer *req)
{
    struct mr_call *m;
    const struct tr_transport *tr = sv->transport;
    int64_t ms = MR_TIMEOUT_MS;
    struct timeval tv;
    char err[256];

    if (!w->mirrors) {
        w->mirrors = calloc(1, sizeof(*w->mirrors));
        if (!w->mirrors) return;
    }
    if (w->mirrors->n >= MR_MAX_CALLS) {
        log_debug("mirror", "%zu mirror requests open: one for %s dropped", w->mirrors->n, sv->url);
        return;
    }
    m = calloc(1, sizeof(*m));
    if (!m) return;
    m->out = evbuffer_new();
    if (!m->out) {
        free(m);
        return;
    }
    evbuffer_add_buffer(m->out, req);
    m->up = up_connect(w->pool, sv, 1, err, sizeof(err));
    if (!m->up) {
        log_debug("mirror", "cannot connect to mirror server %s: %s", sv->url, err);
        evbuffer_free(m->out);
        free(m);
        return;
    }
    m->w = w;
    m->snap = snap;
    snap_ref(snap);
    m->next = w->mirrors->head;
    if (m->next) m->next->prev = m;
    w->mirrors->head = m;
    w->mirrors->n++;
    if (tr && tr->response_header_timeout_ms > 0 && tr->response_header_timeout_ms < ms)
        ms = tr->response_header_timeout_ms;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    st_setcb(m->up->bev, mr_read, NULL, mr_event, m);
    st_set_timeouts(m->up->bev, &tv, &tv);
    st_enable(m->up->bev, ST_WRITE);
}

size_t mr_count(const struct worker *w)
{
    return w->mirrors ? w->mirrors->n : 0;
}

void mr_close_all(struct worker *w)
{
    if (!w->mirrors) return;
    while (w->mirrors->head) mr_end(w->mirrors->head);
    free(w->mirrors);
    w->mirrors = NULL;
}
