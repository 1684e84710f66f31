/*
 * redis — provider plugin reading Traefik's KV layout from Redis
 * (Traefik's Redis provider).  Options: endpoints (list of "host:port",
 * default ["127.0.0.1:6379"], tried in order), rootKey ("traefik"),
 * username, password, db (0), pollInterval (relais addition, 5s: used when
 * the server has keyspace notifications off).
 *
 * Two connections to the first endpoint that answers: "main" runs
 * AUTH/SELECT/CONFIG GET, then SCAN ROOT/{star} + MGET to read every key;
 * "sub" PSUBSCRIBEs to __keyspace@DB__:ROOT/{star} when notifications are on.
 * A notification re-reads everything after a 50 ms debounce; without
 * notifications a timer re-reads every pollInterval.  Pairs are published
 * with host->provider_publish_kv only when they changed.  When the server
 * goes away the failure is logged once, the last configuration keeps
 * serving, and the plugin reconnects with exponential backoff (100 ms
 * doubling to 5 s).
 *
 * Own minimal RESP2 client: commands written as arrays of bulk strings,
 * replies parsed from a buffer (a reply over 64 MiB drops the connection).
 * Everything runs on the control thread with non-blocking sockets
 * (host->watch_new) and timers.  Built only against the SDK header.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <relais/plugin.h>

#define RD_MAX_ENDPOINTS 32          /* endpoints option cap */
#define RD_MAX_REPLY (64u << 20)     /* largest reply accepted: 64 MiB */
#define RD_MAX_OUT (16u << 20)       /* pending output cap */
#define RD_MAX_DEPTH 8               /* nesting of arrays in a reply */
#define RD_MAX_KEYS 100000           /* keys read under the root */
#define RD_MGET_BATCH 1000           /* keys per MGET */
#define RD_DEBOUNCE_MS 50            /* notification debounce */
#define RD_BACKOFF_MIN 100           /* first reconnect delay (ms) */
#define RD_BACKOFF_MAX 5000          /* largest reconnect delay (ms) */
#define RD_CONNECT_TIMEOUT 2000      /* connect + handshake timeout (ms) */

/* ---- RESP replies ------------------------------------------------------ */

/** One parsed RESP2 reply. */
struct rd_reply {
    char type;                 /* '+', '-', ':', '$', '*' */
    int nil;                   /* null bulk string / null array */
    long long integer;         /* value of ':' */
    char *str;                 /* '+', '-', '$': NUL-terminated bytes */
    size_t len;                /* their length */
    struct rd_reply **elems;   /* '*': the elements */
    size_t n;                  /* how many */
};

/* Frees a reply tree; NULL is a no-op. */
static void rd_reply_free(struct rd_reply *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) rd_reply_free(r->elems[i]);
    free(r->elems);
    free(r->str);
    free(r);
}

/*
 * Parses one reply from buf[*pos..len).  Returns 1 with *out (owned by the
 * caller) and *pos advanced; 0 when more bytes are needed (*need is then a
 * lower bound of the total buffer length required); -1 on a protocol error.
 */
static int rd_parse(const char *buf, size_t len, size_t *pos, int depth, struct rd_reply **out,
                    size_t *need)
{
    const char *line = buf + *pos, *eol;
    size_t avail = len - *pos, llen;
    struct rd_reply *r;
    long long v = 0;
    int neg = 0, rc = -1; /* what a jump to fail returns */

    eol = avail ? memchr(line, '\r', avail) : NULL;
    if (!eol || (size_t)(eol - line) + 1 >= avail) {
        *need = len + 1;
        return 0;
    }
    if (eol[1] != '\n' || depth > RD_MAX_DEPTH) return -1;
    llen = (size_t)(eol - line);
    if (llen < 1) return -1;
    r = calloc(1, sizeof(*r));
    if (!r) return -1;
    r->type = line[0];
    switch (line[0]) {
    case '+':
    case '-':
        r->str = malloc(llen);
        if (!r->str) goto fail;
        memcpy(r->str, line + 1, llen - 1);
        r->str[llen - 1] = '\0';
        r->len = llen - 1;
        *pos += llen + 2;
        break;
    case ':':
    case '$':
    case '*': {
        size_t i = 1;
        if (i < llen && line[i] == '-') {
            neg = 1;
            i++;
        }
        if (i >= llen) goto fail;
        for (; i < llen; i++) {
            if (line[i] < '0' || line[i] > '9' || v > (1LL << 40)) goto fail;
            v = v * 10 + (line[i] - '0');
        }
        if (neg) v = -v;
        *pos += llen + 2;
        if (line[0] == ':') {
            r->integer = v;
        } else if (v < 0) {
            r->nil = 1;
        } else if (line[0] == '$') {
            if ((size_t)v > RD_MAX_REPLY) goto fail;
            if (len - *pos < (size_t)v + 2) {
                *need = *pos + (size_t)v + 2;
                rc = 0;
                goto fail;
            }
            if (buf[*pos + (size_t)v] != '\r' || buf[*pos + (size_t)v + 1] != '\n') goto fail;
            r->str = malloc((size_t)v + 1);
            if (!r->str) goto fail;
            memcpy(r->str, buf + *pos, (size_t)v);
            r->str[v] = '\0';
            r->len = (size_t)v;
            *pos += (size_t)v + 2;
        } else {
            if ((size_t)v > RD_MAX_REPLY / 3) goto fail;
            /* every element takes 3 bytes at least: wait before allocating */
            if ((size_t)v * 3 > len - *pos) {
                *need = *pos + (size_t)v * 3;
                rc = 0;
                goto fail;
            }
            r->elems = calloc((size_t)v ? (size_t)v : 1, sizeof(*r->elems));
            if (!r->elems) goto fail;
            for (size_t k = 0; k < (size_t)v; k++) {
                int sub = rd_parse(buf, len, pos, depth + 1, &r->elems[k], need);
                if (sub <= 0) {
                    r->n = k;
                    rc = sub;
                    goto fail;
                }
                r->n = k + 1;
            }
        }
        break;
    }
    default:
        goto fail;
    }
    *out = r;
    return 1;
fail:
    rd_reply_free(r);
    return rc;
}

/* ---- connections -------------------------------------------------------- */

struct rd;

/** One non-blocking connection to a Redis server. */
struct rd_conn {
    struct rd *p;            /* owning instance */
    int fd;                  /* socket, -1 when closed */
    int connected;           /* TCP connect finished */
    int events;              /* events the watch waits for */
    relais_watch *watch;     /* fd watch, or NULL */
    char *in;                /* received bytes not parsed yet */
    size_t in_len;           /* their length */
    size_t in_cap;           /* allocation of in */
    size_t in_need;          /* buffer length needed before parsing again */
    char *out;               /* bytes to send */
    size_t out_len;          /* their length */
    size_t out_off;          /* how many were sent already */
    size_t out_cap;          /* allocation of out */
    int step;                /* what the next reply answers (enum rd_step) */
    void (*on_reply)(struct rd_conn *c, struct rd_reply *r); /* reply handler */
};

/** What a connection waits for. */
enum rd_step {
    RD_S_AUTH = 1,   /* AUTH reply */
    RD_S_SELECT,     /* SELECT reply */
    RD_S_CONFIG,     /* CONFIG GET notify-keyspace-events reply */
    RD_S_IDLE,       /* nothing asked */
    RD_S_SCAN,       /* SCAN reply */
    RD_S_MGET,       /* MGET reply */
    RD_S_PSUB        /* subscribed: confirmations and pmessages */
};

/** One endpoint. */
struct rd_endpoint {
    char *host; /* host name or address */
    char *port; /* port as text */
    char *text; /* "host:port" as configured */
};

/** The provider instance. */
struct rd {
    char who[96];                 /* "provider NAME", for the log */
    const relais_host *host;    /* host table */
    relais_provider *prov;      /* our handle */
    struct rd_endpoint eps[RD_MAX_ENDPOINTS]; /* endpoints option */
    size_t neps;                /* how many */
    size_t ep;                  /* endpoint in use / being tried */
    char *root;                 /* rootKey */
    char *pattern;              /* "ROOT/{star}" with glob characters escaped */
    char *username;             /* username, or NULL */
    char *password;             /* password, or NULL */
    int64_t db;                 /* db */
    int64_t poll_ms;            /* pollInterval */
    struct rd_conn main;        /* command connection */
    struct rd_conn sub;         /* subscriber connection */
    int notify;                 /* keyspace notifications are on */
    int mode_logged;            /* mode logged: 0 none, 1 keyspace, 2 polling */
    int ready;                  /* main handshake done */
    int reading;                /* a SCAN/MGET cycle is running */
    int again;                  /* re-read when the cycle ends */
    char scan_cursor[32];       /* SCAN cursor */
    char **keys;                /* keys found by the cycle */
    size_t nkeys;               /* how many */
    size_t kcap;                /* allocation of keys */
    size_t mget_at;             /* next key index to MGET */
    relais_kv *pairs;           /* pairs read by the cycle */
    size_t npairs;              /* how many */
    relais_kv *last;            /* pairs published last (sorted) */
    size_t nlast;               /* how many */
    int published;              /* something was published */
    relais_timer *retry;        /* reconnect / connect-timeout timer */
    relais_timer *debounce;     /* notification debounce */
    int debounce_armed;         /* debounce pending */
    relais_timer *poll;         /* polling-mode timer */
    uint64_t backoff;           /* next reconnect delay */
    int failing;                /* failure logged, not recovered yet */
    char last_err[160];         /* why the last connect attempt failed */
    int stopped;                /* stop() called */
};

/* Frees a pair array (keys and values owned). */
static void rd_pairs_free(relais_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

/* Drops the keys and pairs of a read cycle. */
static void rd_cycle_clear(struct rd *p)
{
    for (size_t i = 0; i < p->nkeys; i++) free(p->keys[i]);
    free(p->keys);
    p->keys = NULL;
    p->nkeys = p->kcap = 0;
    rd_pairs_free(p->pairs, p->npairs);
    p->pairs = NULL;
    p->npairs = 0;
    p->mget_at = 0;
}

/* Closes a connection (buffers freed, watch removed); safe when closed. */
static void rd_conn_close(struct rd_conn *c)
{
    c->p->host->watch_free(c->watch);
    c->watch = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->connected = 0;
    c->events = 0;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->in_cap = c->in_need = 0;
    c->out_len = c->out_off = c->out_cap = 0;
    c->step = 0;
}

static void rd_conn_io(int fd, int events, void *arg);
static void rd_source_failed(struct rd *p, const char *what);
static void rd_connect_main(struct rd *p);

/* Makes the watch wait for events (recreated when they change).  -1 when
 * the host refuses the watch. */
static int rd_conn_watch(struct rd_conn *c, int events)
{
    if (c->watch && c->events == events) return 0;
    c->p->host->watch_free(c->watch);
    c->events = events;
    c->watch = c->p->host->watch_new(c->fd, events, rd_conn_io, c);
    return c->watch ? 0 : -1;
}

/* Appends bytes to the output buffer under RD_MAX_OUT.  0 or -1. */
static int rd_out_append(struct rd_conn *c, const char *data, size_t len)
{
    if (c->out_len + len > RD_MAX_OUT) return -1;
    if (c->out_len + len > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 1024;
        char *nb;
        while (nc < c->out_len + len) nc *= 2;
        nb = realloc(c->out, nc);
        if (!nb) return -1;
        c->out = nb;
        c->out_cap = nc;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* Queues one command (argv of NUL-terminated strings) as a RESP array.
 * 0 or -1 (output cap). */
static int rd_command(struct rd_conn *c, size_t argc, const char *const *argv)
{
    char head[48];
    int n = snprintf(head, sizeof(head), "*%zu\r\n", argc);

    if (rd_out_append(c, head, (size_t)n) < 0) return -1;
    for (size_t i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        n = snprintf(head, sizeof(head), "$%zu\r\n", l);
        if (rd_out_append(c, head, (size_t)n) < 0 || rd_out_append(c, argv[i], l) < 0 ||
            rd_out_append(c, "\r\n", 2) < 0)
            return -1;
    }
    return 0;
}

/* Sends what is buffered; watches WRITE while something is left.
 * 0, or -1 when the connection failed. */
static int rd_flush(struct rd_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    return rd_conn_watch(c, RELAIS_WATCH_READ | (c->out_len ? RELAIS_WATCH_WRITE : 0));
}

/* Queues a command and flushes.  0, or -1 (the caller fails the source). */
static int rd_send(struct rd_conn *c, size_t argc, const char *const *argv)
{
    if (rd_command(c, argc, argv) < 0) return -1;
    return c->connected ? rd_flush(c) : 0;
}

/* Starts a non-blocking connect to endpoint ep.  0 when in progress or
 * done, -1 when this endpoint cannot be tried. */
static int rd_conn_open(struct rd_conn *c, const struct rd_endpoint *ep)
{
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(ep->host, ep->port, &hints, &res) != 0) {
        /* a host name: resolved synchronously (/etc/hosts or DNS) */
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(ep->host, ep->port, &hints, &res) != 0) return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) goto fail;
    freeaddrinfo(res);
    c->fd = fd;
    c->connected = 0;
    if (rd_conn_watch(c, RELAIS_WATCH_WRITE) < 0) {
        rd_conn_close(c);
        return -1;
    }
    return 0;
fail:
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
}

/* Handles readiness of a connection: finishes the connect, writes pending
 * output, reads and dispatches replies.  On failure the source fails. */
static void rd_conn_io(int fd, int events, void *arg)
{
    struct rd_conn *c = arg;
    struct rd *p = c->p;

    if (!c->connected) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
            char what[160];
            snprintf(what, sizeof(what), "connect: %s", strerror(err ? err : errno));
            if (c == &p->main) {
                /* try the next endpoint now */
                snprintf(p->last_err, sizeof(p->last_err), "%s", what);
                rd_conn_close(c);
                p->ep++;
                rd_connect_main(p);
                return;
            }
            rd_source_failed(p, what);
            return;
        }
        c->connected = 1;
        if (rd_flush(c) < 0) {
            rd_source_failed(p, "send failed");
            return;
        }
        return;
    }
    if (events & RELAIS_WATCH_WRITE) {
        if (rd_flush(c) < 0) {
            rd_source_failed(p, "send failed");
            return;
        }
    }
    if (!(events & RELAIS_WATCH_READ)) return;
    for (;;) {
        ssize_t r;
        if (c->in_cap - c->in_len < 65536) {
            size_t nc = c->in_cap ? c->in_cap * 2 : 65536;
            char *nb;
            if (c->in_len + 65536 > RD_MAX_REPLY + 65536) {
                rd_source_failed(p, "reply over 64 MiB");
                return;
            }
            while (nc - c->in_len < 65536) nc *= 2;
            nb = realloc(c->in, nc);
            if (!nb) {
                rd_source_failed(p, "out of memory");
                return;
            }
            c->in = nb;
            c->in_cap = nc;
        }
        r = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            rd_source_failed(p, strerror(errno));
            return;
        }
        if (r == 0) {
            rd_source_failed(p, "connection closed by the server");
            return;
        }
        c->in_len += (size_t)r;
        if ((size_t)r < 65536) break;
    }
    /* dispatch every complete reply */
    while (c->fd >= 0 && c->in_len >= c->in_need && c->in_len) {
        size_t pos = 0, need = 0;
        struct rd_reply *rep = NULL;
        int rc = rd_parse(c->in, c->in_len, &pos, 0, &rep, &need);
        if (rc < 0) {
            rd_source_failed(p, "protocol error in a reply");
            return;
        }
        if (rc == 0) {
            if (need > RD_MAX_REPLY) {
                rd_source_failed(p, "reply over 64 MiB");
                return;
            }
            c->in_need = need;
            break;
        }
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
        c->in_need = 0;
        c->on_reply(c, rep); /* may close c */
        rd_reply_free(rep);
    }
}

/* ---- the provider logic ------------------------------------------------- */

/* Orders pairs by key. */
static int rd_kv_cmp(const void *a, const void *b)
{
    return strcmp(((const relais_kv *)a)->key, ((const relais_kv *)b)->key);
}

/* Orders key strings. */
static int rd_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Logs which mode is used, once per change of mode. */
static void rd_log_mode(struct rd *p)
{
    int m = p->notify ? 1 : 2;

    if (p->mode_logged == m) return;
    p->mode_logged = m;
    if (m == 1)
        p->host->log(RELAIS_LOG_INFO, p->who, "%s: watching keyspace notifications of %s",
                     p->eps[p->ep].text, p->pattern);
    else
        p->host->log(RELAIS_LOG_INFO, p->who,
                     "%s: keyspace notifications are off: polling every %lld ms",
                     p->eps[p->ep].text, (long long)p->poll_ms);
}

/* Closes both connections and schedules a reconnect with backoff; logs the
 * failure once.  The last configuration stays published. */
static void rd_source_failed(struct rd *p, const char *what)
{
    size_t ep = p->ep < p->neps ? p->ep : 0;

    if (!p->failing && !p->stopped)
        p->host->log(RELAIS_LOG_ERROR, p->who,
                     "%s: %s; the last configuration keeps serving, reconnecting",
                     p->eps[ep].text, what);
    p->failing = 1;
    rd_conn_close(&p->main);
    rd_conn_close(&p->sub);
    p->ready = 0;
    p->reading = 0;
    p->again = 0;
    rd_cycle_clear(p);
    p->debounce_armed = 0;
    if (p->debounce) p->host->timer_stop(p->debounce);
    if (p->poll) p->host->timer_stop(p->poll);
    if (p->stopped) return;
    p->host->timer_start(p->retry, p->backoff);
    p->backoff *= 2;
    if (p->backoff > RD_BACKOFF_MAX) p->backoff = RD_BACKOFF_MAX;
}

/* Sends the next SCAN of a cycle. */
static int rd_send_scan(struct rd *p)
{
    const char *argv[] = {"SCAN", p->scan_cursor, "MATCH", p->pattern, "COUNT", "1000"};

    p->main.step = RD_S_SCAN;
    return rd_send(&p->main, 6, argv);
}

/* Starts a read cycle (SCAN loop then MGET), or marks one to follow the
 * cycle in progress. */
static void rd_read_all(struct rd *p)
{
    if (p->stopped || !p->ready) return;
    if (p->reading) {
        p->again = 1;
        return;
    }
    rd_cycle_clear(p);
    p->reading = 1;
    p->again = 0;
    strcpy(p->scan_cursor, "0");
    if (rd_send_scan(p) < 0) rd_source_failed(p, "send failed");
}

/* Sends the next MGET batch, or ends the cycle when all keys are read. */
static void rd_next_mget(struct rd *p);

/* Ends a cycle: publishes the pairs when they differ from the last ones. */
static void rd_cycle_done(struct rd *p)
{
    int same;

    p->reading = 0;
    if (p->npairs > 1) qsort(p->pairs, p->npairs, sizeof(*p->pairs), rd_kv_cmp);
    same = p->published && p->npairs == p->nlast;
    for (size_t i = 0; same && i < p->npairs; i++)
        same = !strcmp(p->pairs[i].key, p->last[i].key) &&
               !strcmp(p->pairs[i].value, p->last[i].value);
    if (p->failing) {
        p->host->log(RELAIS_LOG_INFO, p->who, "%s: reachable again", p->eps[p->ep].text);
        p->failing = 0;
    }
    if (!same && !p->stopped) {
        if (p->host->provider_publish_kv(p->prov, p->pairs, p->npairs, '/', p->root) == 0)
            p->host->log(RELAIS_LOG_DEBUG, p->who, "published %zu keys", p->npairs);
        /* on -1 the host logged the key; remember the pairs anyway so an
         * unchanged broken set is not decoded again and again */
        rd_pairs_free(p->last, p->nlast);
        p->last = p->pairs;
        p->nlast = p->npairs;
        p->pairs = NULL;
        p->npairs = 0;
        p->published = 1;
    }
    rd_cycle_clear(p);
    if (!p->notify && p->poll) p->host->timer_start(p->poll, (uint64_t)p->poll_ms);
    if (p->again) rd_read_all(p);
}

static void rd_next_mget(struct rd *p)
{
    const char **argv;
    size_t n = p->nkeys - p->mget_at;
    int rc;

    if (n == 0) {
        rd_cycle_done(p);
        return;
    }
    if (n > RD_MGET_BATCH) n = RD_MGET_BATCH;
    argv = malloc((n + 1) * sizeof(*argv));
    if (!argv) {
        rd_source_failed(p, "out of memory");
        return;
    }
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) argv[i + 1] = p->keys[p->mget_at + i];
    p->main.step = RD_S_MGET;
    rc = rd_send(&p->main, n + 1, argv);
    free(argv);
    if (rc < 0) rd_source_failed(p, "send failed");
}

/* Replies of the subscriber connection. */
static void rd_sub_reply(struct rd_conn *c, struct rd_reply *r)
{
    struct rd *p = c->p;

    if (r->type == '-') {
        rd_source_failed(p, r->str);
        return;
    }
    if (c->step == RD_S_AUTH) {
        c->step = RD_S_PSUB;
        return;
    }
    if (r->type == '*' && r->n >= 1 && r->elems[0]->type == '$' &&
        !strcmp(r->elems[0]->str, "psubscribe")) {
        /* subscribed: read once more so that no change made before the
         * subscription took effect is missed */
        rd_read_all(p);
        return;
    }
    if (r->type == '*' && r->n >= 1 && r->elems[0]->type == '$' &&
        !strcmp(r->elems[0]->str, "pmessage")) {
        if (!p->debounce_armed && !p->stopped) {
            p->debounce_armed = 1;
            p->host->timer_start(p->debounce, RD_DEBOUNCE_MS);
        }
    }
}

/* Opens the subscriber connection to the endpoint in use. */
static int rd_connect_sub(struct rd *p)
{
    char chan[600];
    const char *auth[] = {"AUTH", p->username ? p->username : p->password, p->password};
    const char *ps[] = {"PSUBSCRIBE", chan};

    snprintf(chan, sizeof(chan), "__keyspace@%lld__:%s", (long long)p->db, p->pattern);
    if (rd_conn_open(&p->sub, &p->eps[p->ep]) < 0) return -1;
    p->sub.step = RD_S_PSUB;
    if (p->password) {
        p->sub.step = RD_S_AUTH;
        if (rd_send(&p->sub, p->username ? 3 : 2, auth) < 0) return -1;
    }
    return rd_send(&p->sub, 2, ps);
}

/* Replies of the main connection: handshake, SCAN, MGET. */
static void rd_main_reply(struct rd_conn *c, struct rd_reply *r)
{
    struct rd *p = c->p;
    char what[300];

    switch (c->step) {
    case RD_S_AUTH:
    case RD_S_SELECT:
        if (r->type == '-') {
            snprintf(what, sizeof(what), "%s refused: %s", c->step == RD_S_AUTH ? "AUTH" : "SELECT",
                     r->str);
            rd_source_failed(p, what);
            return;
        }
        c->step = c->step == RD_S_AUTH ? RD_S_SELECT : RD_S_CONFIG;
        return;
    case RD_S_CONFIG: {
        const char *ev = "";
        if (r->type == '*' && r->n == 2 && r->elems[1]->type == '$') ev = r->elems[1]->str;
        p->notify = strchr(ev, 'K') &&
                    (strchr(ev, 'A') || (strchr(ev, 'g') && strchr(ev, '$')));
        p->host->timer_stop(p->retry); /* connect timeout */
        c->step = RD_S_IDLE;
        p->ready = 1;
        p->backoff = RD_BACKOFF_MIN;
        if (p->notify && rd_connect_sub(p) < 0) {
            rd_source_failed(p, "cannot open the subscriber connection");
            return;
        }
        rd_log_mode(p);
        rd_read_all(p);
        return;
    }
    case RD_S_SCAN: {
        struct rd_reply *keys;
        if (r->type != '*' || r->n != 2 || r->elems[0]->type != '$' ||
            r->elems[1]->type != '*' || r->elems[0]->len >= sizeof(p->scan_cursor)) {
            snprintf(what, sizeof(what), "SCAN failed: %s", r->type == '-' ? r->str : "bad reply");
            rd_source_failed(p, what);
            return;
        }
        keys = r->elems[1];
        for (size_t i = 0; i < keys->n; i++) {
            if (keys->elems[i]->type != '$' || keys->elems[i]->nil) continue;
            if (p->nkeys >= RD_MAX_KEYS) {
                rd_source_failed(p, "too many keys under the root");
                return;
            }
            if (p->nkeys == p->kcap) {
                size_t nc = p->kcap ? p->kcap * 2 : 64;
                char **nk = realloc(p->keys, nc * sizeof(*nk));
                if (!nk) {
                    rd_source_failed(p, "out of memory");
                    return;
                }
                p->keys = nk;
                p->kcap = nc;
            }
            /* take the string: the reply is freed after this call */
            p->keys[p->nkeys++] = keys->elems[i]->str;
            keys->elems[i]->str = NULL;
        }
        memcpy(p->scan_cursor, r->elems[0]->str, r->elems[0]->len + 1);
        if (strcmp(p->scan_cursor, "0") != 0) {
            if (rd_send_scan(p) < 0) rd_source_failed(p, "send failed");
            return;
        }
        /* SCAN may return a key twice: sort and drop duplicates */
        if (p->nkeys > 1) qsort(p->keys, p->nkeys, sizeof(*p->keys), rd_str_cmp);
        {
            size_t w = 0;
            for (size_t i = 0; i < p->nkeys; i++) {
                if (w && !strcmp(p->keys[w - 1], p->keys[i])) {
                    free(p->keys[i]);
                    continue;
                }
                p->keys[w++] = p->keys[i];
            }
            p->nkeys = w;
        }
        c->step = RD_S_IDLE;
        rd_next_mget(p);
        return;
    }
    case RD_S_MGET: {
        size_t n = p->nkeys - p->mget_at;
        if (n > RD_MGET_BATCH) n = RD_MGET_BATCH;
        if (r->type != '*' || r->n != n) {
            snprintf(what, sizeof(what), "MGET failed: %s", r->type == '-' ? r->str : "bad reply");
            rd_source_failed(p, what);
            return;
        }
        if (!p->pairs) {
            p->pairs = calloc(p->nkeys ? p->nkeys : 1, sizeof(*p->pairs));
            if (!p->pairs) {
                rd_source_failed(p, "out of memory");
                return;
            }
        }
        for (size_t i = 0; i < n; i++) {
            struct rd_reply *v = r->elems[i];
            if (v->type != '$' || v->nil) continue; /* deleted meanwhile or not a string */
            p->pairs[p->npairs].key = p->keys[p->mget_at + i];
            p->keys[p->mget_at + i] = NULL;
            p->pairs[p->npairs].value = v->str;
            v->str = NULL;
            p->npairs++;
        }
        p->mget_at += n;
        c->step = RD_S_IDLE;
        rd_next_mget(p);
        return;
    }
    default:
        rd_source_failed(p, "unexpected reply");
        return;
    }
}

/* Connects the main connection to endpoint p->ep (or the next that can be
 * tried) and queues the handshake; when none is left, fails the source. */
static void rd_connect_main(struct rd *p)
{
    char dbs[32];
    const char *sel[] = {"SELECT", dbs};
    const char *cfg[] = {"CONFIG", "GET", "notify-keyspace-events"};

    snprintf(dbs, sizeof(dbs), "%lld", (long long)p->db);
    for (; p->ep < p->neps; p->ep++) {
        if (rd_conn_open(&p->main, &p->eps[p->ep]) == 0) break;
        snprintf(p->last_err, sizeof(p->last_err), "cannot resolve or open a socket");
    }
    if (p->ep >= p->neps) {
        char what[300];
        snprintf(what, sizeof(what), "%s%s", p->neps > 1 ? "no endpoint answers, last: " : "",
                 p->last_err[0] ? p->last_err : "cannot connect");
        p->ep = p->neps - 1;
        rd_source_failed(p, what);
        p->ep = 0;
        return;
    }
    p->main.step = RD_S_SELECT;
    if (p->password) {
        p->main.step = RD_S_AUTH;
        if (p->username) {
            const char *auth[] = {"AUTH", p->username, p->password};
            if (rd_command(&p->main, 3, auth) < 0) goto fail;
        } else {
            const char *auth[] = {"AUTH", p->password};
            if (rd_command(&p->main, 2, auth) < 0) goto fail;
        }
    }
    if (rd_command(&p->main, 2, sel) < 0 || rd_command(&p->main, 3, cfg) < 0) goto fail;
    p->host->timer_start(p->retry, RD_CONNECT_TIMEOUT);
    return;
fail:
    rd_source_failed(p, "cannot queue the handshake");
}

/* Retry timer: a reconnect after backoff, or a connect/handshake that
 * took too long. */
static void rd_on_retry(void *arg)
{
    struct rd *p = arg;

    if (p->stopped) return;
    if (p->main.fd >= 0 && !p->ready) {
        rd_source_failed(p, "connect or handshake timed out");
        return;
    }
    if (p->main.fd >= 0) return;
    p->ep = 0;
    rd_connect_main(p);
}

/* Debounce timer: re-read after notifications. */
static void rd_on_debounce(void *arg)
{
    struct rd *p = arg;

    p->debounce_armed = 0;
    rd_read_all(p);
}

/* Poll timer (notifications off). */
static void rd_on_poll(void *arg)
{
    rd_read_all(arg);
}

/* ---- operations --------------------------------------------------------- */

/* Frees an instance; NULL is a no-op. */
static void rd_destroy(void *inst)
{
    struct rd *p = inst;

    if (!p) return;
    if (p->host) {
        rd_conn_close(&p->main);
        rd_conn_close(&p->sub);
        p->host->timer_free(p->retry);
        p->host->timer_free(p->debounce);
        p->host->timer_free(p->poll);
    }
    rd_cycle_clear(p);
    rd_pairs_free(p->last, p->nlast);
    for (size_t i = 0; i < p->neps; i++) {
        free(p->eps[i].host);
        free(p->eps[i].port);
        free(p->eps[i].text);
    }
    free(p->root);
    free(p->pattern);
    free(p->username);
    free(p->password);
    free(p);
}

/* Parses "host:port" (IPv6 as "[::1]:6379") into ep.  0, or -1 when
 * malformed (nothing allocated then). */
static int rd_endpoint_parse(const char *s, struct rd_endpoint *ep)
{
    const char *colon = strrchr(s, ':'), *h = s;
    size_t hl;
    char *end;
    long port;

    if (!colon || colon == s) return -1;
    hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']') return -1;
        h = s + 1;
        hl -= 2;
    } else if (memchr(s, ':', hl)) {
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) return -1;
    ep->host = strndup(h, hl);
    ep->port = strdup(colon + 1);
    ep->text = strdup(s);
    if (!ep->host || !ep->port || !ep->text) {
        free(ep->host);
        free(ep->port);
        free(ep->text);
        return -1;
    }
    return 0;
}

/* Validates the options and prepares the instance (nothing connects yet).
 * Control thread.  0 with *inst, or -1 after host->cfg_error. */
static int rd_create(const relais_host *host, const relais_cfg *cfg, relais_provider *prov,
                     void **inst)
{
    struct rd *p = calloc(1, sizeof(*p));
    const relais_cfg *eps;
    const char *s;
    int bad = 0, rc;
    size_t n, pl;

    if (!p) return -1;
    p->main.p = p;
    p->sub.p = p;
    snprintf(p->who, sizeof(p->who), "provider %s",
             host->provider_name(prov) ? host->provider_name(prov) : "redis");
    p->main.on_reply = rd_main_reply;
    p->sub.on_reply = rd_sub_reply;
    p->main.fd = p->sub.fd = -1;
    p->host = host;
    p->prov = prov;
    p->poll_ms = 5000;
    p->backoff = RD_BACKOFF_MIN;
    if (!RELAIS_HOST_HAS(host, provider_publish_kv)) {
        host->cfg_error(cfg, NULL, "this relais cannot decode key/value pairs (ABI 1.1 needed)");
        bad = 1;
    }
    eps = host->cfg_get(cfg, "endpoints");
    if (!eps || host->cfg_type(eps) == RELAIS_CFG_NULL) {
        rd_endpoint_parse("127.0.0.1:6379", &p->eps[0]);
        p->neps = 1;
    } else if (host->cfg_type(eps) != RELAIS_CFG_LIST || host->cfg_len(eps) == 0) {
        host->cfg_error(cfg, "endpoints", "expected a list of \"host:port\"");
        bad = 1;
    } else if ((n = host->cfg_len(eps)) > RD_MAX_ENDPOINTS) {
        host->cfg_error(cfg, "endpoints", "at most %d endpoints", RD_MAX_ENDPOINTS);
        bad = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            const relais_cfg *e = host->cfg_at(eps, i, NULL);
            if (host->cfg_string(e, NULL, &s) != RELAIS_CFG_OK ||
                rd_endpoint_parse(s, &p->eps[p->neps]) < 0) {
                host->cfg_error(cfg, "endpoints", "item %zu: expected \"host:port\"", i);
                bad = 1;
                continue;
            }
            p->neps++;
        }
    }
    rc = host->cfg_string(cfg, "rootKey", &s);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    if (rc == RELAIS_CFG_MISSING) s = "traefik";
    if (rc != RELAIS_CFG_INVALID) {
        size_t l = strlen(s);
        while (l > 0 && s[l - 1] == '/') l--;
        if (l == 0 || l > 256) {
            host->cfg_error(cfg, "rootKey", "expected a non-empty key prefix (at most 256 bytes)");
            bad = 1;
        } else {
            p->root = strndup(s, l);
            /* "ROOT/{star}" with glob characters of ROOT escaped */
            p->pattern = malloc(2 * l + 3);
            if (p->root && p->pattern) {
                pl = 0;
                for (size_t i = 0; i < l; i++) {
                    if (strchr("*?[]\\", s[i])) p->pattern[pl++] = '\\';
                    p->pattern[pl++] = s[i];
                }
                memcpy(p->pattern + pl, "/*", 3);
            } else {
                bad = 1;
            }
        }
    }
    rc = host->cfg_string(cfg, "username", &s);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    if (rc == RELAIS_CFG_OK && *s) p->username = strdup(s);
    rc = host->cfg_string(cfg, "password", &s);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    if (rc == RELAIS_CFG_OK && *s) p->password = strdup(s);
    if (p->username && !p->password) {
        host->cfg_error(cfg, "password", "missing: username needs a password");
        bad = 1;
    }
    if (host->cfg_int(cfg, "db", &p->db) == RELAIS_CFG_INVALID) bad = 1;
    else if (p->db < 0 || p->db > 100000) {
        host->cfg_error(cfg, "db", "expected a database number >= 0");
        bad = 1;
    }
    if (host->cfg_duration(cfg, "pollInterval", &p->poll_ms) == RELAIS_CFG_INVALID) bad = 1;
    else if (p->poll_ms <= 0) {
        host->cfg_error(cfg, "pollInterval", "expected a positive duration");
        bad = 1;
    }
    if (host->cfg_get(cfg, "tls") || host->cfg_get(cfg, "sentinel")) {
        host->cfg_error(cfg, host->cfg_get(cfg, "tls") ? "tls" : "sentinel",
                        "not supported by this provider");
        bad = 1;
    }
    if (bad) {
        rd_destroy(p);
        return -1;
    }
    *inst = p;
    return 0;
}

/* Creates the timers and connects.  Control thread.  0 or -1. */
static int rd_start(void *inst)
{
    struct rd *p = inst;

    p->retry = p->host->timer_new(rd_on_retry, p);
    p->debounce = p->host->timer_new(rd_on_debounce, p);
    p->poll = p->host->timer_new(rd_on_poll, p);
    if (!p->retry || !p->debounce || !p->poll) return -1;
    p->ep = 0;
    rd_connect_main(p);
    return 0;
}

/* SIGHUP: re-read everything (publishes only when something changed). */
static void rd_reload(void *inst)
{
    struct rd *p = inst;

    if (p->stopped) return;
    if (p->ready) rd_read_all(p);
}

/* Stops: closes both connections and timers; nothing is published after. */
static void rd_stop(void *inst)
{
    struct rd *p = inst;

    p->stopped = 1;
    rd_conn_close(&p->main);
    rd_conn_close(&p->sub);
    p->ready = 0;
    p->reading = 0;
    if (p->retry) p->host->timer_stop(p->retry);
    if (p->debounce) p->host->timer_stop(p->debounce);
    if (p->poll) p->host->timer_stop(p->poll);
}

static const relais_provider_ops rd_ops = {
    sizeof(relais_provider_ops), rd_create, rd_start, NULL, rd_reload, rd_stop, rd_destroy,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_PROVIDER,
    "redis",
    "1.0.0",
    "redis",
    "reads Traefik's key/value layout from Redis (keyspace notifications or polling)",
    NULL,
    NULL,
    &rd_ops,
};
