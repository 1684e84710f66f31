/*
 * worker — worker threads, each with its own event_base, listeners
 * (SO_REUSEPORT), upstream pools and snapshot references.  Module prefix:
 * wk_.
 *
 * The request path never takes a lock and never writes shared memory but
 * for one counter: a worker holds one reference on the snapshot it uses and
 * counts its own in-flight requests per snapshot locally; it picks up a new
 * snapshot when the published generation changes and drops the old one's
 * reference once its last local request ended.
 */
#ifndef RELAIS_WORKER_H
#define RELAIS_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;
struct evconnlistener;
struct snapshot;
struct sc_config;
struct up_pool;
struct tcp_conn;
struct udp_worker;

/** A worker's reference to one snapshot. */
struct wk_snapref {
    struct snapshot *snap;    /* referenced snapshot (one reference) */
    uint64_t inflight;        /* this worker's requests using it */
    struct wk_snapref *next;  /* older ones still in use */
};

struct mr_set;
struct wk_cmd;
struct wk_drain;

/** One worker thread. */
struct worker {
    unsigned index;                   /* 0..count-1 */
    pthread_t thread;                 /* the thread */
    struct event_base *base;          /* its event loop */
    struct evconnlistener **listeners; /* one per entry point slot
                                         (SC_MAX_EPS), NULL when none */
    struct event *wake;               /* control → worker nudge */
    int wake_fd;                      /* its eventfd */
    struct wk_snapref *cur;           /* current snapshot reference */
    struct wk_snapref *old;           /* previous ones still in use */
    uint64_t seen_gen;                /* generation of cur */
    struct up_pool *pool;             /* idle upstream connections */
    const struct sc_config *sc;       /* static configuration: the version
                                         this worker applied last (its
                                         thread switches it, see
                                         wk_change_send) */
    size_t nconns;                    /* client connections open */
    int stopping;                     /* graceful stop begun */
    struct px_conn *conns;            /* list of client connections */
    struct tcp_conn *tcp_conns;       /* relayed TCP connections (tcp.c) */
    struct udp_worker *udp;           /* UDP entry points this worker owns
                                         (udp.c), or NULL */
    struct mr_set *mirrors;           /* open mirror calls (mirror.c), or
                                         NULL before the first */
    struct evconnlistener **extra;    /* listeners of sockets inherited
                                         beyond the worker count (upgrade) */
    int *extra_ep;                    /* their entry points */
    int *extra_fd;                    /* their sockets */
    size_t nextra;                    /* how many */
    unsigned char *paused;            /* paused[ep] = 1 (SC_MAX_EPS): this worker's
                                         listeners of ep wait for a
                                         connection cap to free up */
    int npaused;                      /* entry points paused */
    struct event *resume;             /* re-checks the caps while paused */
    struct relais_req *waitq;         /* requests waiting for a server
                                         under maxConnsPerHost (proxy.c),
                                         oldest first */
    struct relais_req *waitq_tail;    /* newest */
    struct event *waitq_ev;           /* runs the queue (timer, or made
                                         active when a server frees up) */
    int cmd_fd;                       /* eventfd: a change of the static
                                         configuration is queued */
    struct event *cmd;                /* its event */
    struct wk_cmd *cmdq;              /* changes queued for this worker,
                                         oldest first (wk_cmd_lock) */
    struct wk_cmd *cmdq_tail;         /* newest */
    uint64_t draining;                /* bit e: entry point slot e was
                                         removed: its connections close
                                         once their exchange ended (this
                                         worker's thread only) */
    struct wk_drain *drains;          /* grace timers of removed entry
                                         points */
};

/** A change of the entry points for the running workers (static_live.c
 *  makes it with wk_change_new, sends it with wk_change_send). */
struct wk_change {
    const struct sc_config *sc;  /* the new version (the caller keeps it
                                    until done ran) */
    uint64_t added;              /* slots that start listening */
    uint64_t removed;            /* slots that stop accepting and drain */
    int *fds;                    /* [slot * workers + worker]: the sockets
                                    of the added slots, -1 none (a worker
                                    takes its own; the rest is closed by
                                    wk_change_free) */
    unsigned pending;            /* workers that did not apply it yet
                                    (atomic) */
    struct wk_cmd *cmds;         /* one queue entry per worker */
    void (*done)(void *arg);     /* runs once every worker applied it, on
                                    the thread of the last one (or in
                                    wk_stop) */
    void *arg;                   /* its argument */
};

/** 1 once a graceful stop began (ping answers its terminatingStatusCode
 *  while requests are still accepted).  Atomic; set by the control
 *  thread. */
extern int wk_terminating;

/** The calling thread's worker, NULL on the control thread. */
extern __thread struct worker *wk_self;

/** Number of workers started. */
unsigned wk_count(void);

/** Announces the number of workers before they start (plugins size
 *  per-thread state from it).  Control thread, before wk_start. */
void wk_set_count(unsigned n);

/** Creates the listening sockets (in the calling, control thread, so that
 *  a bind error is reported before anything starts) and starts n worker
 *  threads.  0, or -1 after logging. */
int wk_start(const struct sc_config *sc, unsigned n);

/** Every listening socket of the running workers (TCP and UDP; valid
 *  until the stop begins), for an upgrade.  Control thread. */
size_t wk_listen_fds(const int **fds);

/** A client connection on entry point ep was accepted / has ended (any
 *  kind: HTTP, TCP).  At a connection cap (entry point or global) the
 *  worker's listeners pause until a connection ends.  Worker thread. */
void wk_conn_opened(struct worker *w, int ep);
void wk_conn_closed(struct worker *w, int ep);

/** Open client connections on ep (ep < 0: in all).  Any thread. */
int64_t wk_conns(int ep);

/** Opens the listening sockets of slot of sc for every worker into
 *  fds[0..wk_count()) (-1 where a worker gets none: a UDP entry point has
 *  one socket); with like >= 0 (a slot being removed that listens on the
 *  same address and protocol) its sockets are shared instead of bound
 *  again.  0, or -1 with errno set and nothing left open.  Control
 *  thread, workers running. */
int wk_listen_slot(const struct sc_config *sc, int slot, int like, int *fds);

/** A change to version sc: the added slots listen on fds (taken over:
 *  [slot * wk_count() + worker], see wk_listen_slot), the removed ones
 *  stop.  NULL when memory ran out (fds are then still the caller's).
 *  Control thread. */
struct wk_change *wk_change_new(const struct sc_config *sc, uint64_t added, int *fds,
                                uint64_t removed);

/** Queues ch for every worker: each one, on its thread, switches to
 *  ch->sc, starts the added slots' listeners and closes the removed
 *  ones' (their connections drain: they close after their exchange, the
 *  rest when the slot's lifeCycle.graceTimeOut ends); done(arg) runs
 *  once all did.  Control thread. */
void wk_change_send(struct wk_change *ch, void (*done)(void *arg), void *arg);

/** Frees ch once done ran (closes the sockets no worker took).  Control
 *  thread. */
void wk_change_free(struct wk_change *ch);

/** 1 when the connections of slot ep on w drain (their entry point was
 *  removed).  Worker thread. */
static inline int wk_draining(const struct worker *w, int ep)
{
    return ep >= 0 && ep < 64 && (w->draining >> ep & 1);
}

/** Publishes a snapshot (takes over the caller's reference).  Control
 *  thread. */
void wk_publish(struct snapshot *s);

/** The published snapshot with a new reference (control thread, API). */
struct snapshot *wk_current(void);

/** Graceful stop: close listeners, let in-flight requests finish up to
 *  grace_ms, then close everything and join the threads.  Control thread. */
void wk_stop(int64_t grace_ms);

/** The worker's current snapshot reference, counted as one more request in
 *  flight, or NULL when memory ran out before any was taken.  Worker
 *  thread. */
struct wk_snapref *wk_acquire(struct worker *w);

/** Ends one request's use of ref.  Worker thread. */
void wk_release(struct worker *w, struct wk_snapref *ref);

/** Cached monotonic time of the worker's loop in ms (any thread: falls
 *  back to the clock). */
uint64_t wk_now_ms(void);

#endif /* RELAIS_WORKER_H */
