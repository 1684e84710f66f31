/*
 * etcd_driver — runs the core's etcd client (src/etcd.c) against real etcd
 * servers for tests/integration/test_etcd_client.sh.
 *
 * Usage: etcd_driver [--timeout S] [--debug] [COMMAND...]
 * Each argument is one command; without any, commands are read from stdin,
 * one a line (blank lines and lines starting with # are skipped), through
 * the event loop: the driver can run as a coprocess, its watches live
 * between commands.  Commands run in order; a call waits for its result,
 * while watches print their events whenever the loop runs.  One line per
 * result on stdout (flushed at once):
 *
 *   client NAME EP[,EP...] [user=U] [pass=P] [ca=F] [cert=F] [key=F]
 *          [insecure] [timeout=MS]      -> client NAME ok | client NAME error MSG
 *                                          (becomes the current client)
 *   use NAME                            selects a client
 *   get KEY [prefix] [limit=N] [keys]   -> get err=E rev=R n=N more=M ep=URL ms=T
 *                                          then per pair: kv KEY VALUE create=C
 *                                          mod=M ver=V lease=L
 *   put KEY VALUE [lease=ID]            -> put err=E rev=R ep=URL ms=T
 *   del KEY [prefix]                    -> del err=E rev=R deleted=N ep=URL ms=T
 *   txn CMP... [then OP...] [else OP...]-> txn err=E rev=R succeeded=B ep=URL ms=T
 *        CMP: version:KEY=N create:KEY>N mod:KEY<N lease:KEY!=N value:KEY=V
 *        OP:  put:KEY=VALUE[@LEASE] del:KEY delp:PREFIX
 *   grant TTL [VAR]                     -> grant err=E rev=R id=ID ...; $VAR (default
 *                                          $lease) holds the id afterwards
 *   keepalive ID                        -> keepalive err=E ttl=T ...
 *   revoke ID                           -> revoke err=E rev=R ...
 *   watch W KEY [prefix] [rev=N] [once] starts watch W; events print as
 *                                          event W PUT|DELETE KEY VALUE mod=M
 *                                          batch W n=N rev=R  (after each batch)
 *                                          watchend W err=E msg=...
 *                                          (once: cancelled inside its first
 *                                          batch callback)
 *   unwatch W                           stops it
 *   wait W N [MS]                       -> wait W n=K (after W delivered N events,
 *                                          ended, or MS passed; default 10000)
 *   sleep MS                            runs the loop for MS
 *   exec SHELL-COMMAND...               -> exec rc=N (the loop is paused meanwhile)
 *   endpoint                            -> endpoint URL
 *   burst N KEY                         -> burst n=N ok=K err=E ms=T (N gets at once)
 *   cancels KEY                         -> cancels callbacks=N (a get, a put and a
 *                                          watch cancelled at once; 300 ms later)
 *   freecb KEY                          -> freecb ok counter=N (a throwaway client
 *                                          on the current one's options is freed
 *                                          inside a get callback while a watch and
 *                                          maybe a put run; N: callbacks after it)
 *   echo TEXT...                        -> TEXT
 *
 * Keys, values and client options: \xHH, \\, \s (space), \t, \n are
 * decoded; '' is empty.
 * Printed the same way.  Tokens starting with $ name variables (grant).
 * Errors are enum etc_err numbers (0 ok, -1 unavailable, -2 timeout,
 * -3 rejected, -4 compacted, -5 auth, -6 protocol); a failed call prints
 * msg=... (spaces as \s) before ep=.
 * A bad command prints BAD and the rest still runs.
 * Exit: 0, 1 after a bad command, 2 on the global timeout (TIMEOUT printed).
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "etcd.h"
#include "log.h"
#include "tls.h"

#define DRV_MAX_CLIENTS 32 /* clients */
#define DRV_MAX_WATCHES 32 /* watches */
#define DRV_MAX_VARS 16    /* variables */
#define DRV_MAX_TOK 64     /* tokens of a command */
#define DRV_MAX_OPS 16     /* compares / operations of a txn */

/** A named client with the options it was made with. */
struct drv_client {
    char *name;              /* its name, NULL = free slot */
    struct etc_client *c;    /* the client */
    struct etc_opts o;       /* its options (strings below) */
    char *eps[32];           /* endpoint strings */
    char *strs[6];           /* user, pass, ca, cert, key (owned) */
};

/** A named watch. */
struct drv_watch {
    char *name;              /* its name, NULL = free slot */
    struct etc_watch *w;     /* the watch, NULL once ended or stopped */
    long events;             /* events delivered */
    int ended;               /* on_end came */
    int once;                /* cancel inside the first batch */
    long target;             /* wait: the event count awaited */
};

/** A variable ($NAME). */
struct drv_var {
    char name[32];           /* its name, "" = free slot */
    char value[32];          /* its value */
};

/** The driver's state. */
struct drv {
    struct event_base *base;                  /* the loop */
    struct drv_client clients[DRV_MAX_CLIENTS]; /* clients */
    struct drv_client *cur;                   /* the current client */
    struct drv_watch watches[DRV_MAX_WATCHES]; /* watches */
    struct drv_var vars[DRV_MAX_VARS];        /* variables */
    int pending;                              /* results still awaited */
    int timed_out;                            /* the global deadline passed */
    int waker;                                /* a local timer fired */
    int counter;                              /* callbacks counted by tests */
    int ok;                                   /* burst: successes */
    int bad;                                  /* burst: failures */
    struct timespec t0;                       /* start of the current call */
    char what[16];                            /* the current call's name */
    struct etc_client *doomed;                /* freecb: the throwaway client */
    struct evbuffer *input;                   /* stdin bytes not yet run */
    struct event *input_ev;                   /* stdin readable */
    int input_eof;                            /* stdin ended */
};

static struct drv D;

/* Milliseconds since D.t0. */
static long drv_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - D.t0.tv_sec) * 1000 + (t.tv_nsec - D.t0.tv_nsec) / 1000000);
}

/* Prints n bytes of s escaped (see the header comment). */
static void drv_put_bytes(const char *s, size_t n)
{
    if (n == 0) fputs("''", stdout);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\') fputs("\\\\", stdout);
        else if (ch == ' ') fputs("\\s", stdout);
        else if (ch > ' ' && ch < 0x7f) putchar(ch);
        else printf("\\x%02x", ch);
    }
}

/* Decodes an escaped token in place; returns its length. */
static size_t drv_unescape(char *s)
{
    char *o = s;
    const char *p = s;

    if (!strcmp(s, "''")) {
        *s = '\0';
        return 0;
    }
    while (*p) {
        if (*p == '\\' && p[1]) {
            p++;
            if (*p == 'x' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
                char hex[3] = {p[1], p[2], 0};
                *o++ = (char)strtol(hex, NULL, 16);
                p += 3;
                continue;
            }
            *o++ = *p == 's' ? ' ' : *p == 't' ? '\t' : *p == 'n' ? '\n' : *p;
            p++;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return (size_t)(o - s);
}

/* The value of variable name, or NULL. */
static const char *drv_var_get(const char *name)
{
    for (int i = 0; i < DRV_MAX_VARS; i++)
        if (D.vars[i].name[0] && !strcmp(D.vars[i].name, name)) return D.vars[i].value;
    return NULL;
}

/* Sets variable name to v. */
static void drv_var_set(const char *name, int64_t v)
{
    int free_i = -1;

    for (int i = 0; i < DRV_MAX_VARS; i++) {
        if (D.vars[i].name[0] && !strcmp(D.vars[i].name, name)) free_i = i;
        else if (!D.vars[i].name[0] && free_i < 0) free_i = i;
    }
    if (free_i < 0) return;
    snprintf(D.vars[free_i].name, sizeof(D.vars[free_i].name), "%s", name);
    snprintf(D.vars[free_i].value, sizeof(D.vars[free_i].value), "%" PRId64, v);
}

/* Copies line into out (outlen) with $NAME replaced by variable values. */
static void drv_expand(const char *line, char *out, size_t outlen)
{
    size_t o = 0;

    while (*line && o + 1 < outlen) {
        if (*line == '$' && (isalpha((unsigned char)line[1]) || line[1] == '_')) {
            char name[32];
            size_t n = 0;
            const char *v;
            line++;
            while ((isalnum((unsigned char)*line) || *line == '_') && n + 1 < sizeof(name))
                name[n++] = *line++;
            name[n] = '\0';
            v = drv_var_get(name);
            if (!v) v = "0";
            while (*v && o + 1 < outlen) out[o++] = *v++;
            continue;
        }
        out[o++] = *line++;
    }
    out[o] = '\0';
}

/* Global deadline. */
static void drv_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    D.timed_out = 1;
    event_base_loopbreak(D.base);
}

/* A local timer (sleep, wait). */
static void drv_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    D.waker = 1;
}

/* Runs the loop until cond() holds, ms pass (0 = no limit) or the global
 * deadline passes. */
static void drv_run(int (*cond)(void *), void *arg, long ms)
{
    struct event *t = NULL;

    D.waker = 0;
    if (ms > 0) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        t = evtimer_new(D.base, drv_wake, NULL);
        evtimer_add(t, &tv);
    }
    while (!D.timed_out && !D.waker && !(cond && cond(arg)))
        event_base_loop(D.base, EVLOOP_ONCE);
    if (t) event_free(t);
}

/* cond: no result pending. */
static int drv_no_pending(void *arg)
{
    (void)arg;
    return D.pending == 0;
}

/* Prints the common tail of a result line (msg on error, ep, ms). */
static void drv_tail(int err, const char *msg)
{
    if (err) {
        fputs(" msg=", stdout);
        drv_put_bytes(msg, strlen(msg));
    }
    printf(" ep=%s ms=%ld\n", D.cur && D.cur->c ? etc_endpoint(D.cur->c) : "-", drv_ms());
    fflush(stdout);
}

/* etc_range_cb of get. */
static void drv_on_range(void *arg, int err, const char *msg, const struct etc_range *r)
{
    (void)arg;
    D.pending--;
    printf("get err=%d rev=%" PRId64 " n=%zu more=%d", err, r ? r->revision : 0,
           r ? r->n : 0, r ? r->more : 0);
    drv_tail(err, msg);
    for (size_t i = 0; r && i < r->n; i++) {
        const struct etc_kv *kv = &r->kvs[i];
        fputs("kv ", stdout);
        drv_put_bytes(kv->key, kv->key_len);
        putchar(' ');
        drv_put_bytes(kv->value, kv->value_len);
        printf(" create=%" PRId64 " mod=%" PRId64 " ver=%" PRId64 " lease=%" PRId64 "\n",
               kv->create_revision, kv->mod_revision, kv->version, kv->lease);
    }
    fflush(stdout);
}

/* etc_done_cb of the other calls (D.what names the call). */
static void drv_on_done(void *arg, int err, const char *msg, int64_t rev, int64_t value)
{
    (void)arg;
    D.pending--;
    printf("%s err=%d rev=%" PRId64, D.what, err, rev);
    if (!strcmp(D.what, "del")) printf(" deleted=%" PRId64, value);
    else if (!strcmp(D.what, "txn")) printf(" succeeded=%" PRId64, value);
    else if (!strcmp(D.what, "grant")) printf(" id=%" PRId64, value);
    else if (!strcmp(D.what, "keepalive")) printf(" ttl=%" PRId64, value);
    if (!strcmp(D.what, "grant") && !err) drv_var_set(arg ? (const char *)arg : "lease", value);
    drv_tail(err, msg);
}

/* The watch named name (create: a free slot when absent), or NULL. */
static struct drv_watch *drv_watch_find(const char *name, int create)
{
    struct drv_watch *f = NULL;

    for (int i = 0; i < DRV_MAX_WATCHES; i++) {
        if (D.watches[i].name && !strcmp(D.watches[i].name, name)) return &D.watches[i];
        if (!D.watches[i].name && !f) f = &D.watches[i];
    }
    if (!create || !f) return NULL;
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    return f;
}

/* etc_events_cb. */
static void drv_on_events(void *arg, const struct etc_event *ev, size_t n, int64_t rev)
{
    struct drv_watch *dw = arg;

    for (size_t i = 0; i < n; i++) {
        printf("event %s %s ", dw->name, ev[i].type == ETC_EV_DELETE ? "DELETE" : "PUT");
        drv_put_bytes(ev[i].kv.key, ev[i].kv.key_len);
        putchar(' ');
        drv_put_bytes(ev[i].kv.value, ev[i].kv.value_len);
        printf(" mod=%" PRId64 "\n", ev[i].kv.mod_revision);
    }
    printf("batch %s n=%zu rev=%" PRId64 "\n", dw->name, n, rev);
    fflush(stdout);
    dw->events += (long)n;
    if (dw->once) {
        etc_watch_cancel(dw->w);
        dw->w = NULL;
        dw->ended = 1;
    }
}

/* etc_watch_end_cb. */
static void drv_on_end(void *arg, int err, const char *msg)
{
    struct drv_watch *dw = arg;

    printf("watchend %s err=%d msg=", dw->name, err);
    drv_put_bytes(msg, strlen(msg));
    putchar('\n');
    fflush(stdout);
    dw->ended = 1;
    dw->w = NULL;
}

/* cond of wait: the watch delivered enough or ended. */
static int drv_watch_enough(void *arg)
{
    struct drv_watch *dw = arg;

    return dw->ended || dw->events >= dw->target;
}

/* Callbacks of burst. */
static void drv_burst_cb(void *arg, int err, const char *msg, const struct etc_range *r)
{
    (void)arg;
    (void)msg;
    (void)r;
    D.pending--;
    if (err) D.bad++;
    else D.ok++;
}

/* Counting callbacks (cancels: none may come). */
static void drv_count_range(void *arg, int err, const char *msg, const struct etc_range *r)
{
    (void)arg;
    (void)err;
    (void)msg;
    (void)r;
    D.counter++;
}

/* idem */
static void drv_count_done(void *arg, int err, const char *msg, int64_t rev, int64_t v)
{
    (void)arg;
    (void)err;
    (void)msg;
    (void)rev;
    (void)v;
    D.counter++;
}

/* idem */
static void drv_count_events(void *arg, const struct etc_event *ev, size_t n, int64_t rev)
{
    (void)arg;
    (void)ev;
    (void)n;
    (void)rev;
    D.counter++;
}

/* idem */
static void drv_count_end(void *arg, int err, const char *msg)
{
    (void)arg;
    (void)err;
    (void)msg;
    D.counter++;
}

/* freecb: the get's callback frees its own client. */
static void drv_free_in_cb(void *arg, int err, const char *msg, const struct etc_range *r)
{
    (void)arg;
    (void)err;
    (void)msg;
    (void)r;
    D.pending--;
    D.counter = 0; /* callbacks before this one were legitimate */
    etc_free(D.doomed);
    D.doomed = NULL;
}

/* Parses "target:KEY<op>VALUE" into m (strings point into tok).  0 / -1. */
static int drv_parse_cmp(char *tok, struct etc_cmp *m)
{
    static const struct {
        const char *name; /* spelling */
        int target;       /* ETC_CMP_* */
    } targets[] = {{"value", ETC_CMP_VALUE}, {"version", ETC_CMP_VERSION},
                   {"create", ETC_CMP_CREATE}, {"mod", ETC_CMP_MOD}, {"lease", ETC_CMP_LEASE}};
    char *colon = strchr(tok, ':'), *op;
    size_t i;

    if (!colon) return -1;
    *colon = '\0';
    memset(m, 0, sizeof(*m));
    for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        if (!strcmp(tok, targets[i].name)) break;
    if (i == sizeof(targets) / sizeof(targets[0])) return -1;
    m->target = targets[i].target;
    m->key = colon + 1;
    op = strpbrk(colon + 1, "=!<>");
    if (!op) return -1;
    if (op[0] == '!' && op[1] == '=') {
        m->op = ETC_NE;
        *op = '\0';
        op += 2;
    } else {
        m->op = op[0] == '=' ? ETC_EQ : op[0] == '<' ? ETC_LT : op[0] == '>' ? ETC_GT : ETC_EQ;
        if (op[0] == '!') return -1;
        *op++ = '\0';
    }
    drv_unescape((char *)m->key);
    if (m->target == ETC_CMP_VALUE) {
        m->value = op;
        m->value_len = drv_unescape(op);
    } else {
        m->number = strtoll(op, NULL, 10);
    }
    return 0;
}

/* Parses "put:KEY=VALUE[@LEASE]", "del:KEY", "delp:PREFIX" into op. */
static int drv_parse_op(char *tok, struct etc_op *op)
{
    memset(op, 0, sizeof(*op));
    if (!strncmp(tok, "put:", 4)) {
        char *eq = strchr(tok + 4, '='), *at;
        if (!eq) return -1;
        *eq = '\0';
        op->type = ETC_OP_PUT;
        op->key = tok + 4;
        drv_unescape(tok + 4);
        at = strrchr(eq + 1, '@');
        if (at) {
            *at = '\0';
            op->lease = strtoll(at + 1, NULL, 10);
        }
        op->value = eq + 1;
        op->value_len = drv_unescape(eq + 1);
        return 0;
    }
    if (!strncmp(tok, "del:", 4) || !strncmp(tok, "delp:", 5)) {
        op->type = tok[3] == ':' ? ETC_OP_DELETE : ETC_OP_DELETE_PREFIX;
        op->key = strchr(tok, ':') + 1;
        drv_unescape((char *)op->key);
        return 0;
    }
    return -1;
}

/* The client named name, or NULL. */
static struct drv_client *drv_client_find(const char *name)
{
    for (int i = 0; i < DRV_MAX_CLIENTS; i++)
        if (D.clients[i].name && !strcmp(D.clients[i].name, name)) return &D.clients[i];
    return NULL;
}

/* Frees a client slot. */
static void drv_client_clear(struct drv_client *dc)
{
    etc_free(dc->c);
    for (size_t i = 0; i < 32; i++) free(dc->eps[i]);
    for (size_t i = 0; i < 6; i++) free(dc->strs[i]);
    free(dc->name);
    memset(dc, 0, sizeof(*dc));
}

/* client NAME EPS [options]. */
static int drv_cmd_client(char **t, int n)
{
    struct drv_client *dc = drv_client_find(t[1]);
    char err[512], *list, *save = NULL, *tok;
    size_t ne = 0;

    if (n < 3) return -1;
    if (dc) drv_client_clear(dc);
    for (int i = 0; i < DRV_MAX_CLIENTS && !dc; i++)
        if (!D.clients[i].name) dc = &D.clients[i];
    if (!dc) return -1;
    dc->name = strdup(t[1]);
    list = strdup(t[2]);
    for (tok = strtok_r(list, ",", &save); tok && ne < 32; tok = strtok_r(NULL, ",", &save))
        dc->eps[ne++] = strdup(tok);
    free(list);
    dc->o.endpoints = (const char *const *)dc->eps;
    dc->o.nendpoints = ne;
    for (int i = 3; i < n; i++) {
        static const char *const keys[] = {"user=", "pass=", "ca=", "cert=", "key="};
        int k;
        for (k = 0; k < 5; k++)
            if (!strncmp(t[i], keys[k], strlen(keys[k]))) break;
        if (k < 5) {
            free(dc->strs[k]);
            dc->strs[k] = strdup(t[i] + strlen(keys[k]));
            if (dc->strs[k]) drv_unescape(dc->strs[k]);
        } else if (!strcmp(t[i], "insecure")) {
            dc->o.tls_insecure = 1;
        } else if (!strncmp(t[i], "timeout=", 8)) {
            dc->o.timeout_ms = strtoll(t[i] + 8, NULL, 10);
        } else {
            return -1;
        }
    }
    dc->o.username = dc->strs[0];
    dc->o.password = dc->strs[1];
    dc->o.tls_ca = dc->strs[2];
    dc->o.tls_cert = dc->strs[3];
    dc->o.tls_key = dc->strs[4];
    dc->c = etc_new(D.base, &dc->o, err, sizeof(err));
    D.cur = dc;
    if (dc->c) {
        printf("client %s ok\n", dc->name);
    } else {
        printf("client %s error ", dc->name);
        drv_put_bytes(err, strlen(err));
        putchar('\n');
    }
    fflush(stdout);
    return 0;
}

/* Starts a call (set up by start) and waits for its result. */
static void drv_call_wait(const char *what, struct etc_call *call)
{
    if (!call) {
        printf("%s NULL\n", what);
        fflush(stdout);
        return;
    }
    D.pending++;
    drv_run(drv_no_pending, NULL, 0);
}

/* Runs one command line.  0, or -1 when it is bad. */
static int drv_command(char *line)
{
    char buf[8192], *t[DRV_MAX_TOK], *save = NULL, *tok;
    int n = 0;
    struct etc_client *c;

    drv_expand(line, buf, sizeof(buf));
    for (tok = strtok_r(buf, " \t\r\n", &save); tok && n < DRV_MAX_TOK;
         tok = strtok_r(NULL, " \t\r\n", &save))
        t[n++] = tok;
    if (n == 0 || t[0][0] == '#') return 0;
    clock_gettime(CLOCK_MONOTONIC, &D.t0);
    snprintf(D.what, sizeof(D.what), "%s", t[0]);
    if (!strcmp(t[0], "client")) return drv_cmd_client(t, n);
    if (!strcmp(t[0], "echo")) {
        for (int i = 1; i < n; i++) printf("%s%s", t[i], i + 1 < n ? " " : "\n");
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "sleep") && n == 2) {
        drv_run(NULL, NULL, atol(t[1]));
        return 0;
    }
    if (!strcmp(t[0], "exec") && n >= 2) {
        char cmd[8192] = "";
        for (int i = 1; i < n; i++) {
            strncat(cmd, t[i], sizeof(cmd) - strlen(cmd) - 2);
            strcat(cmd, " ");
        }
        fflush(stdout);
        printf("exec rc=%d\n", system(cmd));
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "use") && n == 2) {
        D.cur = drv_client_find(t[1]);
        return D.cur ? 0 : -1;
    }
    if (!strcmp(t[0], "wait") && n >= 3) {
        struct drv_watch *dw = drv_watch_find(t[1], 0);
        if (!dw) return -1;
        dw->target = atol(t[2]);
        if (!drv_watch_enough(dw)) drv_run(drv_watch_enough, dw, n > 3 ? atol(t[3]) : 10000);
        printf("wait %s n=%ld\n", dw->name, dw->events);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "unwatch") && n == 2) {
        struct drv_watch *dw = drv_watch_find(t[1], 0);
        if (!dw) return -1;
        etc_watch_cancel(dw->w);
        dw->w = NULL;
        dw->ended = 1;
        return 0;
    }
    if (!D.cur || !D.cur->c) return -1;
    c = D.cur->c;
    if (!strcmp(t[0], "endpoint")) {
        printf("endpoint %s\n", etc_endpoint(c));
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "get") && n >= 2) {
        int prefix = 0, keys = 0;
        int64_t limit = 0;
        for (int i = 2; i < n; i++) {
            if (!strcmp(t[i], "prefix")) prefix = 1;
            else if (!strcmp(t[i], "keys")) keys = 1;
            else if (!strncmp(t[i], "limit=", 6)) limit = strtoll(t[i] + 6, NULL, 10);
            else return -1;
        }
        drv_unescape(t[1]);
        drv_call_wait("get", etc_get(c, t[1], prefix, limit, keys, drv_on_range, NULL));
        return 0;
    }
    if (!strcmp(t[0], "put") && n >= 3) {
        int64_t lease = 0;
        size_t vl;
        if (n > 3 && !strncmp(t[3], "lease=", 6)) lease = strtoll(t[3] + 6, NULL, 10);
        drv_unescape(t[1]);
        vl = drv_unescape(t[2]);
        drv_call_wait("put", etc_put(c, t[1], t[2], vl, lease, drv_on_done, NULL));
        return 0;
    }
    if (!strcmp(t[0], "del") && n >= 2) {
        drv_unescape(t[1]);
        drv_call_wait("del",
                      etc_delete(c, t[1], n > 2 && !strcmp(t[2], "prefix"), drv_on_done, NULL));
        return 0;
    }
    if (!strcmp(t[0], "txn")) {
        struct etc_cmp cmp[DRV_MAX_OPS];
        struct etc_op ops[2][DRV_MAX_OPS];
        size_t nc = 0, no[2] = {0, 0};
        int part = -1;
        for (int i = 1; i < n; i++) {
            if (!strcmp(t[i], "then")) part = 0;
            else if (!strcmp(t[i], "else")) part = 1;
            else if (part < 0 && nc < DRV_MAX_OPS) {
                if (drv_parse_cmp(t[i], &cmp[nc++]) < 0) return -1;
            } else if (part >= 0 && no[part] < DRV_MAX_OPS) {
                if (drv_parse_op(t[i], &ops[part][no[part]++]) < 0) return -1;
            } else {
                return -1;
            }
        }
        drv_call_wait("txn", etc_txn(c, cmp, nc, ops[0], no[0], ops[1], no[1], drv_on_done, NULL));
        return 0;
    }
    if (!strcmp(t[0], "grant") && n >= 2) {
        static char var[32];
        snprintf(var, sizeof(var), "%s", n > 2 ? t[2] : "lease");
        drv_call_wait("grant", etc_lease_grant(c, strtoll(t[1], NULL, 10), drv_on_done, var));
        return 0;
    }
    if (!strcmp(t[0], "keepalive") && n == 2) {
        drv_call_wait("keepalive",
                      etc_lease_keepalive(c, strtoll(t[1], NULL, 10), drv_on_done, NULL));
        return 0;
    }
    if (!strcmp(t[0], "revoke") && n == 2) {
        drv_call_wait("revoke", etc_lease_revoke(c, strtoll(t[1], NULL, 10), drv_on_done, NULL));
        return 0;
    }
    if (!strcmp(t[0], "watch") && n >= 3) {
        struct drv_watch *dw;
        int prefix = 0, once = 0;
        int64_t rev = 0;
        for (int i = 3; i < n; i++) {
            if (!strcmp(t[i], "prefix")) prefix = 1;
            else if (!strcmp(t[i], "once")) once = 1;
            else if (!strncmp(t[i], "rev=", 4)) rev = strtoll(t[i] + 4, NULL, 10);
            else return -1;
        }
        dw = drv_watch_find(t[1], 1);
        if (!dw) return -1;
        if (dw->w) etc_watch_cancel(dw->w);
        dw->events = 0;
        dw->ended = 0;
        dw->once = once;
        drv_unescape(t[2]);
        dw->w = etc_watch(c, t[2], prefix, rev, drv_on_events, drv_on_end, dw);
        if (!dw->w) {
            printf("watch %s NULL\n", dw->name);
            fflush(stdout);
        }
        return 0;
    }
    if (!strcmp(t[0], "burst") && n == 3) {
        int k = atoi(t[1]);
        D.ok = D.bad = 0;
        drv_unescape(t[2]);
        for (int i = 0; i < k; i++)
            if (etc_get(c, t[2], 0, 0, 0, drv_burst_cb, NULL)) D.pending++;
        drv_run(drv_no_pending, NULL, 0);
        printf("burst n=%d ok=%d err=%d ms=%ld\n", k, D.ok, D.bad, drv_ms());
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "cancels") && n == 2) {
        struct etc_call *a, *b;
        struct etc_watch *w;
        D.counter = 0;
        drv_unescape(t[1]);
        a = etc_get(c, t[1], 0, 0, 0, drv_count_range, NULL);
        b = etc_put(c, t[1], "x", 1, 0, drv_count_done, NULL);
        w = etc_watch(c, t[1], 0, 0, drv_count_events, drv_count_end, NULL);
        etc_cancel(a);
        etc_cancel(b);
        etc_watch_cancel(w);
        drv_run(NULL, NULL, 300);
        printf("cancels callbacks=%d\n", D.counter);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(t[0], "freecb") && n == 2) {
        char err[256];
        drv_unescape(t[1]);
        D.doomed = etc_new(D.base, &D.cur->o, err, sizeof(err));
        if (!D.doomed) return -1;
        D.counter = 0;
        etc_watch(D.doomed, t[1], 1, 0, drv_count_events, drv_count_end, NULL);
        etc_put(D.doomed, t[1], "y", 1, 0, drv_count_done, NULL);
        if (!etc_get(D.doomed, t[1], 0, 0, 0, drv_free_in_cb, NULL)) return -1;
        D.pending++;
        drv_run(drv_no_pending, NULL, 0);
        drv_run(NULL, NULL, 200);
        printf("freecb %s counter=%d\n", D.doomed ? "leaked" : "ok", D.counter);
        fflush(stdout);
        return 0;
    }
    return -1;
}

/* stdin readable: buffers the bytes (commands run from main's loop). */
static void drv_on_input(evutil_socket_t fd, short what, void *arg)
{
    char b[4096];
    ssize_t n = read(fd, b, sizeof(b));

    (void)what;
    (void)arg;
    if (n > 0) {
        evbuffer_add(D.input, b, (size_t)n);
        return;
    }
    D.input_eof = 1;
    event_del(D.input_ev);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", 1, NULL, 't'}, {"debug", 0, NULL, 'D'}, {NULL, 0, NULL, 0}};
    int timeout_s = 60, rc = 0, ch;
    struct event *tev;
    struct timeval tv;
    char line[8192];

    signal(SIGPIPE, SIG_IGN);
    log_set_level(RELAIS_LOG_WARN);
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 't': timeout_s = atoi(optarg); break;
        case 'D': log_set_level(RELAIS_LOG_DEBUG); break;
        default: fprintf(stderr, "etcd_driver: bad option\n"); return 1;
        }
    }
    D.base = event_base_new();
    tev = evtimer_new(D.base, drv_deadline, NULL);
    tv.tv_sec = timeout_s;
    tv.tv_usec = 0;
    evtimer_add(tev, &tv);
    if (optind < argc) {
        for (int i = optind; i < argc && !D.timed_out; i++) {
            snprintf(line, sizeof(line), "%s", argv[i]);
            if (drv_command(line) < 0) {
                printf("BAD %s\n", argv[i]);
                rc = 1;
            }
        }
    } else {
        D.input = evbuffer_new();
        D.input_ev = event_new(D.base, 0, EV_READ | EV_PERSIST, drv_on_input, NULL);
        event_add(D.input_ev, NULL);
        while (!D.timed_out) {
            size_t n;
            char *l = evbuffer_readln(D.input, &n, EVBUFFER_EOL_LF);
            if (!l && D.input_eof && (n = evbuffer_get_length(D.input)) > 0) {
                l = calloc(1, n + 1); /* a last line without newline */
                if (l) evbuffer_remove(D.input, l, n);
            }
            if (!l) {
                if (D.input_eof) break;
                event_base_loop(D.base, EVLOOP_ONCE);
                continue;
            }
            snprintf(line, sizeof(line), "%s", l);
            if (drv_command(line) < 0) {
                printf("BAD %s\n", l);
                rc = 1;
            }
            free(l);
        }
        event_free(D.input_ev);
        evbuffer_free(D.input);
    }
    if (D.timed_out) {
        printf("TIMEOUT\n");
        rc = 2;
    }
    fflush(stdout);
    for (int i = 0; i < DRV_MAX_CLIENTS; i++)
        if (D.clients[i].name) drv_client_clear(&D.clients[i]);
    for (int i = 0; i < DRV_MAX_WATCHES; i++) free(D.watches[i].name);
    event_free(tev);
    tls_cache_clear();
    event_base_free(D.base);
    return rc;
}
