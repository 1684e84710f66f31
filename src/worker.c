/*
 * worker — see worker.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "arena.h"
#include "log.h"
#include "proxy.h"
#include "snapshot.h"
#include "static_config.h"
#include "tcp.h"
#include "udp.h"
#include "upgrade.h"
#include "upstream.h"
#include "mirror.h"
#include "worker.h"

__thread struct worker *wk_self;
int wk_terminating;

/** A queued change, one per worker (wk_change_send). */
struct wk_cmd {
    struct wk_change *ch; /* the change */
    struct wk_cmd *next;  /* next queued for the same worker */
};

/** The grace of a removed entry point on one worker. */
struct wk_drain {
    struct worker *w;     /* the worker */
    int ep;               /* the removed slot */
    struct event *ev;     /* fires at the end of the grace */
    struct wk_drain *next; /* the worker's other drains */
};

static struct worker *wk_all;       /* the workers */
static unsigned wk_n;               /* how many */
static int **wk_fds;                /* listening fds [worker][ep] */
static int *wk_sfd[SC_MAX_EPS];     /* control thread: each slot's listening
                                       sockets [worker] (-1 none), NULL for
                                       a slot that does not listen */
static int *wk_xfd;                 /* control thread: sockets inherited
                                       beyond the worker count (extra
                                       listeners) */
static int *wk_xep;                 /* their slots */
static size_t wk_nx;                /* how many */
static int *wk_lfds;                /* every listening socket (TCP and
                                       UDP), for an upgrade */
static size_t wk_nlfds;             /* how many */
static pthread_mutex_t wk_cmd_lock = PTHREAD_MUTEX_INITIALIZER; /* guards
                                       the workers' cmdq */
static int64_t *wk_ep_conns;        /* open client connections per entry
                                       point (atomic) */
static int64_t wk_all_conns;        /* in all (atomic) */
static struct snapshot *wk_snap;    /* published snapshot (one reference) */
static uint64_t wk_gen;             /* its generation (atomic) */
static pthread_mutex_t wk_lock = PTHREAD_MUTEX_INITIALIZER; /* guards wk_snap */

unsigned wk_count(void)
{
    return wk_n;
}

void wk_set_count(unsigned n)
{
    if (!wk_all) wk_n = n;
}

uint64_t wk_now_ms(void)
{
    struct timeval tv;
    struct timespec ts;

    if (wk_self && event_base_gettimeofday_cached(wk_self->base, &tv) == 0)
        return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Opens one listening socket for ep with SO_REUSEPORT.  fd or -1. */
static int wk_listen(const struct sc_entrypoint *ep)
{
    int fd, one = 1, zero = 0;

    fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ep->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ep->addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0 ||
        listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void wk_close_listeners(struct worker *w);

/* Listener callback: a client connected. */
static void wk_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct worker *w = wk_self;
    int ep = (int)(intptr_t)arg, one = 1;

    (void)l;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    px_accept(w, ep, fd, sa, salen);
}

/* Control → worker nudge (eventfd readable): the first begins the
 * graceful stop, the second ends the grace. */
static void wk_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) return;
    if (!w->stopping) {
        w->stopping = 1;
        wk_close_listeners(w);
        udp_stop(w);
        px_shutdown(w);
    } else {
        /* second nudge: grace is over */
        px_close_all(w);
        tcp_close_all(w);
        event_base_loopexit(w->base, NULL);
    }
}

/* Thread body: run the loop until stopped. */
static void *wk_main(void *arg)
{
    struct worker *w = arg;

    wk_self = w;
    event_base_dispatch(w->base);
    px_close_all(w);
    tcp_close_all(w);
    udp_stop(w);
    mr_close_all(w); /* before the snapshots and the pool */
    /* drop snapshot references */
    while (w->old) {
        struct wk_snapref *o = w->old;
        w->old = o->next;
        snap_unref(o->snap);
        free(o);
    }
    if (w->cur) {
        snap_unref(w->cur->snap);
        free(w->cur);
        w->cur = NULL;
    }
    up_pool_free(w->pool);
    w->pool = NULL;
    while (w->drains) {
        struct wk_drain *d = w->drains;
        w->drains = d->next;
        event_free(d->ev);
        free(d);
    }
    arena_cache_clear();
    return NULL;
}

/* Notes an inherited listening socket beyond the worker count for w
 * (its listener is made with w's loop).  0 / -1. */
static int wk_extra_add(struct worker *w, int ep, int fd)
{
    struct evconnlistener **l = realloc(w->extra, (w->nextra + 1) * sizeof(*l));
    int *fe, *fd2;

    if (!l) return -1;
    w->extra = l;
    fe = realloc(w->extra_ep, (w->nextra + 1) * sizeof(*fe));
    if (!fe) return -1;
    w->extra_ep = fe;
    fd2 = realloc(w->extra_fd, (w->nextra + 1) * sizeof(*fd2));
    if (!fd2) return -1;
    w->extra_fd = fd2;
    w->extra[w->nextra] = NULL;
    w->extra_ep[w->nextra] = ep;
    w->extra_fd[w->nextra] = fd;
    w->nextra++;
    return 0;
}

/* Pauses (on = 0) or resumes (on = 1) w's listeners of entry point ep. */
static void wk_listeners_set(struct worker *w, size_t ep, int on)
{
    if (w->stopping) return;
    if (w->listeners[ep]) {
        if (on) evconnlistener_enable(w->listeners[ep]);
        else evconnlistener_disable(w->listeners[ep]);
    }
    for (size_t k = 0; k < w->nextra; k++) {
        if (w->extra_ep[k] != (int)ep || !w->extra[k]) continue;
        if (on) evconnlistener_enable(w->extra[k]);
        else evconnlistener_disable(w->extra[k]);
    }
}

/* 1 when entry point ep is at a connection cap. */
static int wk_at_cap(const struct sc_config *sc, size_t ep)
{
    int64_t m = sc->eps[ep].max_conns;

    if (__atomic_load_n(&wk_all_conns, __ATOMIC_RELAXED) >= sc->max_conns) return 1;
    return m > 0 && __atomic_load_n(&wk_ep_conns[ep], __ATOMIC_RELAXED) >= m;
}

/* Resumes the paused entry points that are below their caps again; keeps
 * polling (every 20 ms) while some are still paused (a connection that
 * ends on another worker frees this one's place too). */
static void wk_recheck(struct worker *w)
{
    struct timeval tv = {0, 20000};

    for (size_t e = 0; w->npaused && e < w->sc->neps; e++) {
        if (!w->paused[e] || wk_at_cap(w->sc, e)) continue;
        w->paused[e] = 0;
        w->npaused--;
        wk_listeners_set(w, e, 1);
    }
    if (w->npaused && w->resume) evtimer_add(w->resume, &tv);
}

/* Timer: see wk_recheck. */
static void wk_on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wk_recheck(arg);
}

void wk_conn_opened(struct worker *w, int ep)
{
    __atomic_add_fetch(&wk_ep_conns[ep], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&wk_all_conns, 1, __ATOMIC_RELAXED);
    for (size_t e = 0; e < w->sc->neps; e++) {
        if (w->paused[e] || !sc_ep_live(w->sc, e) || w->sc->eps[e].udp || !wk_at_cap(w->sc, e))
            continue;
        if (!w->npaused)
            log_warn("entrypoint", "%s: %lld connections open (%lld here): new ones wait",
                     w->sc->eps[e].name, (long long)wk_conns(-1), (long long)wk_conns((int)e));
        w->paused[e] = 1;
        w->npaused++;
        wk_listeners_set(w, e, 0);
    }
    if (w->npaused) wk_recheck(w);
}

void wk_conn_closed(struct worker *w, int ep)
{
    __atomic_sub_fetch(&wk_ep_conns[ep], 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&wk_all_conns, 1, __ATOMIC_RELAXED);
    if (w->npaused) wk_recheck(w);
}

int64_t wk_conns(int ep)
{
    if (ep < 0) return __atomic_load_n(&wk_all_conns, __ATOMIC_RELAXED);
    return wk_ep_conns ? __atomic_load_n(&wk_ep_conns[ep], __ATOMIC_RELAXED) : 0;
}

/* Frees w's listeners (its sockets close; an upgraded process holds its
 * own descriptors of them). */
static void wk_close_listeners(struct worker *w)
{
    for (size_t e = 0; w->listeners && e < SC_MAX_EPS; e++) {
        if (w->listeners[e]) evconnlistener_free(w->listeners[e]);
        w->listeners[e] = NULL;
    }
    for (size_t k = 0; k < w->nextra; k++) {
        if (w->extra[k]) evconnlistener_free(w->extra[k]);
        w->extra[k] = NULL;
    }
}

size_t wk_listen_fds(const int **fds)
{
    *fds = wk_lfds;
    return wk_nlfds;
}

/* Rebuilds wk_lfds from the slots' sockets and the extra ones of the
 * slots that are entry points of sc (control thread).  0 / -1. */
static int wk_lfds_rebuild(const struct sc_config *sc)
{
    size_t n = wk_nx, k = 0;
    int *l;

    for (size_t e = 0; e < SC_MAX_EPS; e++)
        if (wk_sfd[e]) n += wk_n;
    l = malloc((n ? n : 1) * sizeof(*l));
    if (!l) return -1;
    for (size_t e = 0; e < SC_MAX_EPS; e++)
        for (unsigned i = 0; wk_sfd[e] && i < wk_n; i++)
            if (wk_sfd[e][i] >= 0) l[k++] = wk_sfd[e][i];
    for (size_t x = 0; x < wk_nx; x++)
        if (sc_ep_live(sc, (size_t)wk_xep[x])) l[k++] = wk_xfd[x];
    free(wk_lfds);
    wk_lfds = l;
    wk_nlfds = k;
    return 0;
}

/* Control → worker: a change is queued (eventfd readable). */
static void wk_on_cmd(evutil_socket_t fd, short what, void *arg);

int wk_start(const struct sc_config *sc, unsigned n)
{
    unsigned i;
    size_t e;

    evthread_use_pthreads();
    wk_all = calloc(n, sizeof(*wk_all));
    wk_fds = calloc(n, sizeof(*wk_fds));
    if (!wk_all || !wk_fds) return -1;
    wk_n = n;
    for (i = 0; i < n; i++) {
        wk_all[i].wake_fd = wk_all[i].cmd_fd = -1;
        wk_fds[i] = malloc(SC_MAX_EPS * sizeof(int));
        if (!wk_fds[i]) return -1;
        for (e = 0; e < SC_MAX_EPS; e++) wk_fds[i][e] = -1;
    }
    /* sockets first: a bind error stops the start before any thread.
       Sockets an upgrading parent passed on are used first: worker i
       takes the i-th of its entry point, the ones beyond the worker
       count become extra listeners (their backlogs must be served) */
    wk_ep_conns = calloc(SC_MAX_EPS, sizeof(*wk_ep_conns));
    if (!wk_ep_conns) return -1;
    for (e = 0; e < sc->neps; e++) {
        int inh[UG_MAX_FDS];
        size_t ninh;
        if (!sc_ep_live(sc, e)) continue;
        ninh = ug_take((const struct sockaddr *)&sc->eps[e].addr, sc->eps[e].addrlen,
                       sc->eps[e].udp ? SOCK_DGRAM : SOCK_STREAM, inh, UG_MAX_FDS);
        if (ninh)
            log_info("entrypoint", "%s: %zu listening socket(s) taken over from the old process",
                     sc->eps[e].name, ninh);
        wk_sfd[e] = malloc(n * sizeof(int));
        if (!wk_sfd[e]) return -1;
        for (i = 0; i < n; i++) {
            wk_sfd[e][i] = -1;
            /* a UDP entry point has one socket, owned by one worker */
            if (sc->eps[e].udp && e % n != i) continue;
            if (sc->eps[e].udp) wk_fds[i][e] = ninh ? inh[0] : udp_listen(&sc->eps[e]);
            else wk_fds[i][e] = i < ninh ? inh[i] : wk_listen(&sc->eps[e]);
            if (wk_fds[i][e] < 0) {
                log_error("entrypoint", "%s: cannot listen on %s: %s", sc->eps[e].name,
                          sc->eps[e].address, strerror(errno));
                return -1;
            }
            wk_sfd[e][i] = wk_fds[i][e];
        }
        for (size_t k = sc->eps[e].udp ? 1 : n; k < ninh; k++) {
            int *xf, *xe;
            if (sc->eps[e].udp) {
                close(inh[k]);
                continue;
            }
            if (wk_extra_add(&wk_all[k % n], (int)e, inh[k]) < 0) return -1;
            xf = realloc(wk_xfd, (wk_nx + 1) * sizeof(*xf));
            if (!xf) return -1;
            wk_xfd = xf;
            xe = realloc(wk_xep, (wk_nx + 1) * sizeof(*xe));
            if (!xe) return -1;
            wk_xep = xe;
            wk_xfd[wk_nx] = inh[k];
            wk_xep[wk_nx++] = (int)e;
        }
    }
    if (wk_lfds_rebuild(sc) < 0) return -1;
    ug_close_rest();
    for (i = 0; i < n; i++) {
        struct worker *w = &wk_all[i];
        struct event_config *cfg = event_config_new();
        w->index = i;
        w->sc = sc;
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!w->base) {
            /* NOLOCK is refused on some backends: take the default */
            w->base = event_base_new();
        }
        w->listeners = calloc(SC_MAX_EPS, sizeof(*w->listeners));
        w->paused = calloc(SC_MAX_EPS, 1);
        w->pool = up_pool_new(w->base, sc->transport.max_idle_per_host,
                              sc->transport.idle_conn_timeout_ms);
        /* the worker base has no locks (NOLOCK), so another thread
         * cannot event_active() it: nudges go through an eventfd */
        w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->wake = w->wake_fd >= 0
                      ? event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wk_wake, w)
                      : NULL;
        if (w->wake) event_add(w->wake, NULL);
        w->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->cmd = w->cmd_fd >= 0 && w->base
                     ? event_new(w->base, w->cmd_fd, EV_READ | EV_PERSIST, wk_on_cmd, w)
                     : NULL;
        if (w->cmd) event_add(w->cmd, NULL);
        w->resume = w->base ? evtimer_new(w->base, wk_on_resume, w) : NULL;
        if (!w->base || !w->listeners || !w->pool || !w->wake || !w->paused || !w->resume ||
            !w->cmd)
            return -1;
        for (e = 0; e < sc->neps; e++) {
            if (wk_fds[i][e] < 0) continue;
            if (sc->eps[e].udp) {
                if (udp_attach(w, (int)e, wk_fds[i][e]) < 0) return -1;
                continue;
            }
            w->listeners[e] = evconnlistener_new(w->base, wk_accept, (void *)(intptr_t)e,
                                                 LEV_OPT_CLOSE_ON_FREE, -1, wk_fds[i][e]);
            if (!w->listeners[e]) return -1;
        }
        for (size_t k = 0; k < w->nextra; k++) {
            w->extra[k] = evconnlistener_new(w->base, wk_accept,
                                             (void *)(intptr_t)w->extra_ep[k],
                                             LEV_OPT_CLOSE_ON_FREE, -1, w->extra_fd[k]);
            if (!w->extra[k]) return -1;
        }
    }
    for (i = 0; i < n; i++) {
        if (pthread_create(&wk_all[i].thread, NULL, wk_main, &wk_all[i]) != 0) {
            log_error("worker", "cannot start worker thread %u", i);
            return -1;
        }
    }
    for (i = 0; i < n; i++) free(wk_fds[i]);
    free(wk_fds);
    wk_fds = NULL;
    return 0;
}

/* ------------------------------------------------------------ live changes */

int wk_listen_slot(const struct sc_config *sc, int slot, int like, int *fds)
{
    const struct sc_entrypoint *ep = &sc->eps[slot];
    unsigned i;

    for (i = 0; i < wk_n; i++) fds[i] = -1;
    for (i = 0; i < wk_n; i++) {
        if (ep->udp && (unsigned)slot % wk_n != i) continue;
        if (like >= 0 && wk_sfd[like]) {
            /* the same socket(s): what waits in the backlog is kept */
            int from = ep->udp ? wk_sfd[like][(unsigned)like % wk_n] : wk_sfd[like][i];
            if (from >= 0) {
                fds[i] = fcntl(from, F_DUPFD_CLOEXEC, 0);
                if (fds[i] < 0) goto fail;
                continue;
            }
        }
        fds[i] = ep->udp ? udp_listen(ep) : wk_listen(ep);
        if (fds[i] < 0) goto fail;
    }
    return 0;
fail: {
        int e = errno;
        for (i = 0; i < wk_n; i++)
            if (fds[i] >= 0) close(fds[i]);
        for (i = 0; i < wk_n; i++) fds[i] = -1;
        errno = e;
        return -1;
    }
}

struct wk_change *wk_change_new(const struct sc_config *sc, uint64_t added, int *fds,
                                uint64_t removed)
{
    struct wk_change *ch = calloc(1, sizeof(*ch));

    if (!ch) return NULL;
    ch->cmds = calloc(wk_n ? wk_n : 1, sizeof(*ch->cmds));
    if (!ch->cmds) {
        free(ch);
        return NULL;
    }
    /* the control thread's table of sockets, for an upgrade */
    for (size_t e = 0; e < SC_MAX_EPS; e++) {
        if (!(added >> e & 1) || wk_sfd[e]) continue;
        wk_sfd[e] = malloc((wk_n ? wk_n : 1) * sizeof(int));
        if (!wk_sfd[e]) goto oom;
    }
    for (size_t e = 0; e < SC_MAX_EPS; e++) {
        if (removed >> e & 1) {
            free(wk_sfd[e]);
            wk_sfd[e] = NULL;
        }
        if (added >> e & 1) memcpy(wk_sfd[e], fds + e * wk_n, wk_n * sizeof(int));
    }
    wk_lfds_rebuild(sc); /* out of memory: the previous list stays */
    ch->sc = sc;
    ch->added = added;
    ch->removed = removed;
    ch->fds = fds;
    return ch;
oom:
    for (size_t e = 0; e < SC_MAX_EPS; e++)
        if ((added >> e & 1) && wk_sfd[e]) {
            free(wk_sfd[e]);
            wk_sfd[e] = NULL;
        }
    free(ch->cmds);
    free(ch);
    return NULL;
}

void wk_change_send(struct wk_change *ch, void (*done)(void *arg), void *arg)
{
    uint64_t one = 1;

    ch->done = done;
    ch->arg = arg;
    ch->pending = wk_n;
    if (wk_n == 0) {
        done(arg);
        return;
    }
    pthread_mutex_lock(&wk_cmd_lock);
    for (unsigned i = 0; i < wk_n; i++) {
        struct worker *w = &wk_all[i];
        struct wk_cmd *c = &ch->cmds[i];
        c->ch = ch;
        c->next = NULL;
        if (w->cmdq_tail) w->cmdq_tail->next = c;
        else w->cmdq = c;
        w->cmdq_tail = c;
    }
    pthread_mutex_unlock(&wk_cmd_lock);
    for (unsigned i = 0; i < wk_n; i++) {
        ssize_t k = write(wk_all[i].cmd_fd, &one, sizeof(one));
        (void)k;
    }
}

void wk_change_free(struct wk_change *ch)
{
    if (!ch) return;
    for (size_t e = 0; ch->fds && e < SC_MAX_EPS; e++)
        for (unsigned i = 0; (ch->added >> e & 1) && i < wk_n; i++)
            if (ch->fds[e * wk_n + i] >= 0) close(ch->fds[e * wk_n + i]);
    free(ch->fds);
    free(ch->cmds);
    free(ch);
}

/* Timer: the grace of a removed entry point ended on this worker: its
 * connections still open are closed. */
static void wk_drain_end(evutil_socket_t fd, short what, void *arg)
{
    struct wk_drain *d = arg, **pp;
    struct worker *w = d->w;

    (void)fd;
    (void)what;
    px_close_ep(w, d->ep);
    tcp_close_ep(w, d->ep);
    for (pp = &w->drains; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    event_free(d->ev);
    free(d);
}

/* Applies ch on worker w (its thread). */
static void wk_apply(struct worker *w, struct wk_change *ch)
{
    unsigned i = w->index;

    w->sc = ch->sc;
    for (int e = 0; e < SC_MAX_EPS; e++) {
        struct wk_drain *d;
        if (!(ch->removed >> e & 1)) continue;
        w->draining |= (uint64_t)1 << e;
        if (w->paused[e]) {
            w->paused[e] = 0;
            w->npaused--;
        }
        if (w->listeners[e]) evconnlistener_free(w->listeners[e]);
        w->listeners[e] = NULL;
        for (size_t k = 0; k < w->nextra; k++) {
            if (w->extra_ep[k] != e || !w->extra[k]) continue;
            evconnlistener_free(w->extra[k]);
            w->extra[k] = NULL;
        }
        udp_detach(w, e);
        px_drain(w, e);
        /* what is still open when the grace ends is closed */
        d = calloc(1, sizeof(*d));
        if (d) d->ev = evtimer_new(w->base, wk_drain_end, d);
        if (d && d->ev) {
            int64_t g = ch->sc->eps[e].grace_ms > 0 ? ch->sc->eps[e].grace_ms : 0;
            struct timeval tv = {(time_t)(g / 1000), (suseconds_t)((g % 1000) * 1000)};
            d->w = w;
            d->ep = e;
            d->next = w->drains;
            w->drains = d;
            evtimer_add(d->ev, &tv);
        } else {
            free(d);
            px_close_ep(w, e);
            tcp_close_ep(w, e);
        }
    }
    for (int e = 0; e < SC_MAX_EPS; e++) {
        int fd;
        if (!(ch->added >> e & 1)) continue;
        fd = ch->fds[(size_t)e * wk_n + i];
        ch->fds[(size_t)e * wk_n + i] = -1;
        if (fd < 0) continue;
        w->draining &= ~((uint64_t)1 << e);
        if (w->stopping) {
            close(fd);
            continue;
        }
        if (ch->sc->eps[e].udp) {
            if (udp_attach(w, e, fd) < 0)
                log_error("entrypoint", "%s: cannot start on worker %u", ch->sc->eps[e].name, i);
            continue;
        }
        w->listeners[e] = evconnlistener_new(w->base, wk_accept, (void *)(intptr_t)e,
                                             LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!w->listeners[e]) {
            close(fd);
            log_error("entrypoint", "%s: cannot start on worker %u", ch->sc->eps[e].name, i);
        }
    }
    if (w->npaused) wk_recheck(w);
}

/* Takes the oldest change queued for w, or NULL. */
static struct wk_cmd *wk_cmd_pop(struct worker *w)
{
    struct wk_cmd *c;

    pthread_mutex_lock(&wk_cmd_lock);
    c = w->cmdq;
    if (c) {
        w->cmdq = c->next;
        if (!w->cmdq) w->cmdq_tail = NULL;
    }
    pthread_mutex_unlock(&wk_cmd_lock);
    return c;
}

/* Ends w's part of ch (w applied it, or stopped before). */
static void wk_cmd_done(struct wk_change *ch)
{
    if (__atomic_sub_fetch(&ch->pending, 1, __ATOMIC_ACQ_REL) == 0) ch->done(ch->arg);
}

static void wk_on_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct wk_cmd *c;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
        /* spurious: the queue says what there is */
    }
    while ((c = wk_cmd_pop(w)) != NULL) {
        struct wk_change *ch = c->ch;
        wk_apply(w, ch);
        wk_cmd_done(ch); /* ch may be freed from here on */
    }
}

void wk_publish(struct snapshot *s)
{
    struct snapshot *old;

    pthread_mutex_lock(&wk_lock);
    old = wk_snap;
    wk_snap = s;
    __atomic_add_fetch(&wk_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&wk_lock);
    if (old) snap_unref(old);
}

struct snapshot *wk_current(void)
{
    struct snapshot *s;

    pthread_mutex_lock(&wk_lock);
    s = wk_snap;
    if (s) snap_ref(s);
    pthread_mutex_unlock(&wk_lock);
    return s;
}

struct wk_snapref *wk_acquire(struct worker *w)
{
    uint64_t gen = __atomic_load_n(&wk_gen, __ATOMIC_ACQUIRE);

    if (!w->cur || gen != w->seen_gen) {
        struct wk_snapref *nr = calloc(1, sizeof(*nr));
        if (nr) {
            pthread_mutex_lock(&wk_lock);
            nr->snap = wk_snap;
            snap_ref(nr->snap);
            w->seen_gen = __atomic_load_n(&wk_gen, __ATOMIC_ACQUIRE);
            pthread_mutex_unlock(&wk_lock);
            if (w->cur) {
                if (w->cur->inflight == 0) {
                    snap_unref(w->cur->snap);
                    free(w->cur);
                } else {
                    w->cur->next = w->old;
                    w->old = w->cur;
                }
            }
            w->cur = nr;
        }
    }
    if (!w->cur) return NULL; /* out of memory before any snapshot */
    w->cur->inflight++;
    return w->cur;
}

void wk_release(struct worker *w, struct wk_snapref *ref)
{
    struct wk_snapref **pp;

    ref->inflight--;
    if (ref == w->cur || ref->inflight > 0) return;
    for (pp = &w->old; *pp; pp = &(*pp)->next) {
        if (*pp == ref) {
            *pp = ref->next;
            snap_unref(ref->snap);
            free(ref);
            return;
        }
    }
}

/* Nudges worker w (any thread). */
static void wk_nudge(struct worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));

    (void)n;
}

void wk_stop(int64_t grace_ms)
{
    unsigned i;
    struct timespec deadline, now;

    for (i = 0; i < wk_n; i++) wk_nudge(&wk_all[i]);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += grace_ms / 1000;
    deadline.tv_nsec += (grace_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    for (i = 0; i < wk_n; i++) {
        struct timespec ts;
        int joined = 0;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > deadline.tv_sec ||
                (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
                break;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_timedjoin_np(wk_all[i].thread, NULL, &ts) == 0) {
                joined = 1;
                break;
            }
        }
        if (!joined) {
            /* grace is over: close everything and join */
            wk_nudge(&wk_all[i]);
            pthread_join(wk_all[i].thread, NULL);
        }
    }
    for (i = 0; i < wk_n; i++) {
        struct wk_cmd *c;
        /* changes the worker did not apply: it is gone */
        while ((c = wk_cmd_pop(&wk_all[i])) != NULL) wk_cmd_done(c->ch);
        if (wk_all[i].cmd) event_free(wk_all[i].cmd);
        if (wk_all[i].cmd_fd >= 0) close(wk_all[i].cmd_fd);
        wk_close_listeners(&wk_all[i]);
        free(wk_all[i].listeners);
        free(wk_all[i].extra);
        free(wk_all[i].extra_ep);
        free(wk_all[i].extra_fd);
        free(wk_all[i].paused);
        if (wk_all[i].waitq_ev) event_free(wk_all[i].waitq_ev);
        if (wk_all[i].resume) event_free(wk_all[i].resume);
        event_free(wk_all[i].wake);
        close(wk_all[i].wake_fd);
        event_base_free(wk_all[i].base);
    }
    free(wk_all);
    wk_all = NULL;
    free(wk_lfds);
    wk_lfds = NULL;
    wk_nlfds = 0;
    for (size_t e = 0; e < SC_MAX_EPS; e++) {
        free(wk_sfd[e]);
        wk_sfd[e] = NULL;
    }
    free(wk_xfd);
    free(wk_xep);
    wk_xfd = wk_xep = NULL;
    wk_nx = 0;
    free(wk_ep_conns);
    wk_ep_conns = NULL;
    wk_all_conns = 0;
    wk_n = 0;
    pthread_mutex_lock(&wk_lock);
    if (wk_snap) snap_unref(wk_snap);
    wk_snap = NULL;
    pthread_mutex_unlock(&wk_lock);
}
