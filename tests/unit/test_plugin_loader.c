/*
 * test_plugin_loader — the plugin loader against the test-only plugins of
 * tests/plugins/, then the wrr strategy and the file provider through their
 * descriptors with a fake host.
 *
 * Usage: test_plugin_loader TEST_PLUGIN_DIR WRR_DIR [FILE_DIR [HELLO_DIR]]
 *   TEST_PLUGIN_DIR  the built tests/plugins/ *.so (env
 *                    RELAIS_TEST_PLUGIN_DIR when argv[1] is absent)
 *   WRR_DIR          directory holding the built wrr.so (env
 *                    RELAIS_TEST_WRR_DIR)
 *   FILE_DIR         directory holding the built file provider file.so
 *                    (env RELAIS_TEST_FILE_DIR); its tests skipped without
 *   HELLO_DIR        directory holding the SDK example's hello.so (env
 *                    RELAIS_TEST_HELLO_DIR); its tests skipped without
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "plugin_loader.h"
#include "tap.h"

/* The host ABI version as text ("1.1"). */
#define HV_STR2(x) #x
#define HV_STR(x) HV_STR2(x)
#define HV HV_STR(RELAIS_ABI_MAJOR) "." HV_STR(RELAIS_ABI_MINOR)


/* ---- captured log ------------------------------------------------------- */

static char t_logpath[256];  /* temp file the log goes to */
static off_t t_logmark;      /* bytes of it already consumed */
static char t_logbuf[65536]; /* the lines written since the last mark */

/** Reads what was logged since the previous call into t_logbuf. */
static const char *t_log_take(void)
{
    int fd = open(t_logpath, O_RDONLY);
    ssize_t r = 0;

    t_logbuf[0] = '\0';
    if (fd < 0) return t_logbuf;
    if (lseek(fd, t_logmark, SEEK_SET) == t_logmark) {
        r = read(fd, t_logbuf, sizeof(t_logbuf) - 1);
        if (r < 0) r = 0;
        t_logbuf[r] = '\0';
        t_logmark += r;
    }
    close(fd);
    return t_logbuf;
}

static char t_flatbuf[65536]; /* t_flat's result */

/** s with its newlines turned into " | ", for one-line TAP messages. */
static const char *t_flat(const char *s)
{
    size_t n = 0;
    for (; *s && n + 4 < sizeof(t_flatbuf); s++) {
        if (*s == '\n') {
            if (s[1]) {
                memcpy(t_flatbuf + n, " | ", 3);
                n += 3;
            }
        } else {
            t_flatbuf[n++] = *s;
        }
    }
    t_flatbuf[n] = '\0';
    return t_flatbuf;
}

/** Number of lines in s. */
static int t_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

/* ---- fake configuration nodes ------------------------------------------ */

/** A configuration node of the fake host (completes the opaque type). */
struct relais_cfg {
    int type;                       /* enum relais_cfg_type */
    const char *key;                /* key in the parent map */
    const char *str;                /* string value */
    int b;                          /* bool value */
    const struct relais_cfg *kids;  /* map entries */
    size_t nkids;                   /* number of kids */
};

static char t_cfg_err[512]; /* last cfg_error message */
static int t_cfg_errors;    /* cfg_error calls */

static int t_cfg_type(const relais_cfg *n)
{
    return n ? n->type : RELAIS_CFG_ABSENT;
}

static const relais_cfg *t_cfg_get(const relais_cfg *n, const char *key)
{
    size_t i;
    if (!n || n->type != RELAIS_CFG_MAP) return NULL;
    for (i = 0; i < n->nkids; i++)
        if (!strcasecmp(n->kids[i].key, key)) return &n->kids[i];
    return NULL;
}

static void t_cfg_error(const relais_cfg *n, const char *key, const char *fmt,
                        ...)
{
    va_list ap;
    (void)n;
    (void)key;
    va_start(ap, fmt);
    vsnprintf(t_cfg_err, sizeof(t_cfg_err), fmt, ap);
    va_end(ap);
    t_cfg_errors++;
}

static int t_cfg_string(const relais_cfg *n, const char *key, const char **out)
{
    const relais_cfg *c = key ? t_cfg_get(n, key) : n;
    if (!c || c->type == RELAIS_CFG_NULL) return RELAIS_CFG_MISSING;
    if (c->type != RELAIS_CFG_STRING) {
        t_cfg_error(n, key, "not a string");
        return RELAIS_CFG_INVALID;
    }
    *out = c->str;
    return RELAIS_CFG_OK;
}

static int t_cfg_bool(const relais_cfg *n, const char *key, int *out)
{
    const relais_cfg *c = key ? t_cfg_get(n, key) : n;
    if (!c || c->type == RELAIS_CFG_NULL) return RELAIS_CFG_MISSING;
    if (c->type == RELAIS_CFG_BOOL) {
        *out = c->b;
        return RELAIS_CFG_OK;
    }
    t_cfg_error(n, key, "not a bool");
    return RELAIS_CFG_INVALID;
}

static int t_cfg_int(const relais_cfg *n, const char *key, int64_t *out)
{
    const relais_cfg *c = key ? t_cfg_get(n, key) : n;
    if (!c || c->type == RELAIS_CFG_NULL) return RELAIS_CFG_MISSING;
    if (c->type == RELAIS_CFG_INT) {
        *out = c->b;
        return RELAIS_CFG_OK;
    }
    t_cfg_error(n, key, "not an int");
    return RELAIS_CFG_INVALID;
}

/* ---- fake request ------------------------------------------------------- */

#define T_MAX_HDRS 4
/** A header list of the fake host (completes the opaque type). */
struct relais_hdrs {
    char name[T_MAX_HDRS][64];   /* names */
    char value[T_MAX_HDRS][64];  /* values */
    size_t n;                    /* how many */
};

/** A request of the fake host (completes the opaque type). */
struct relais_req {
    struct relais_hdrs req_h;  /* request headers */
    struct relais_hdrs resp_h; /* response headers */
    int status;                /* status from respond() */
    char body[64];             /* body from respond() */
    int resumed;               /* verdict given to req_resume, -2 none */
    void *mem[4];              /* req_alloc blocks */
    size_t nmem;               /* how many */
};

static relais_hdrs *t_req_headers(relais_req *r) { return &r->req_h; }
static relais_hdrs *t_resp_headers(relais_req *r) { return &r->resp_h; }
static void *t_req_alloc(relais_req *r, size_t size)
{
    if (r->nmem == 4) return NULL;
    return r->mem[r->nmem++] = calloc(1, size);
}
static void t_req_resume(relais_req *r, int verdict) { r->resumed = verdict; }
static int t_respond(relais_req *r, int status, const relais_header *h,
                     size_t nh, const char *body, size_t len)
{
    (void)h;
    (void)nh;
    r->status = status;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, body);
    return 0;
}
static size_t t_hdr_del(relais_hdrs *h, const char *name)
{
    size_t i, j = 0, n = h->n;
    for (i = 0; i < n; i++) {
        if (!strcasecmp(h->name[i], name)) continue;
        if (i != j) {
            memcpy(h->name[j], h->name[i], sizeof(h->name[j]));
            memcpy(h->value[j], h->value[i], sizeof(h->value[j]));
        }
        j++;
    }
    h->n = j;
    return n - j;
}
static int t_hdr_set(relais_hdrs *h, const char *name, const char *v,
                     size_t vlen)
{
    t_hdr_del(h, name);
    if (h->n == T_MAX_HDRS) return -1;
    snprintf(h->name[h->n], sizeof(h->name[0]), "%s", name);
    snprintf(h->value[h->n], sizeof(h->value[0]), "%.*s", (int)vlen, v);
    h->n++;
    return 0;
}
static void t_req_free(relais_req *r)
{
    while (r->nmem) free(r->mem[--r->nmem]);
}

/* ---- fake servers, threads --------------------------------------------- */

/** The servers of the fake host (completes the opaque type). */
struct relais_servers {
    size_t n;        /* number of servers */
    uint32_t w[8];   /* weights */
    int up[8];       /* health */
};

static unsigned t_thread;       /* what thread_index() answers */
static unsigned t_nthreads = 2; /* what thread_count() answers */

static size_t t_servers_count(const relais_servers *s) { return s->n; }
static uint32_t t_server_weight(const relais_servers *s, size_t i)
{
    return s->w[i];
}
static int t_server_up(const relais_servers *s, size_t i) { return s->up[i]; }
static unsigned t_thread_index(void) { return t_thread; }
static unsigned t_thread_count(void) { return t_nthreads; }

/* ---- fake provider services -------------------------------------------- */

/** The fake timer (one at a time is enough here). */
struct relais_timer {
    void (*cb)(void *arg); /* callback */
    void *arg;             /* its argument */
    int armed;             /* started and not fired */
    uint64_t ms;           /* last delay */
};

/** The fake fd watch. */
struct relais_watch {
    int fd;                                    /* watched fd */
    void (*cb)(int fd, int events, void *arg); /* callback */
    void *arg;                                 /* its argument */
};

static int t_timers_live, t_watches_live; /* allocated, not freed */
static struct relais_timer *t_last_timer; /* last created */
static struct relais_watch *t_last_watch; /* last created */

static relais_timer *t_timer_new(void (*cb)(void *), void *arg)
{
    struct relais_timer *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cb = cb;
    t->arg = arg;
    t_timers_live++;
    t_last_timer = t;
    return t;
}
static int t_timer_start(relais_timer *t, uint64_t ms)
{
    t->armed = 1;
    t->ms = ms;
    return 0;
}
static void t_timer_stop(relais_timer *t) { t->armed = 0; }
static void t_timer_free(relais_timer *t)
{
    if (!t) return;
    if (t == t_last_timer) t_last_timer = NULL;
    t_timers_live--;
    free(t);
}
static relais_watch *t_watch_new(int fd, int events,
                                 void (*cb)(int, int, void *), void *arg)
{
    struct relais_watch *w = calloc(1, sizeof(*w));
    (void)events;
    if (!w) return NULL;
    w->fd = fd;
    w->cb = cb;
    w->arg = arg;
    t_watches_live++;
    t_last_watch = w;
    return w;
}
static void t_watch_free(relais_watch *w)
{
    if (!w) return;
    if (w == t_last_watch) t_last_watch = NULL;
    t_watches_live--;
    free(w);
}

#define T_MAX_DOCS 8
static int t_publishes;                 /* provider_publish calls */
static int t_publish_rc;                /* what provider_publish returns */
static size_t t_ndocs;                  /* docs of the last call */
static char t_doc_src[T_MAX_DOCS][256]; /* their sources */
static char t_doc_data[T_MAX_DOCS][256]; /* their bytes (truncated) */
static int t_doc_fmt[T_MAX_DOCS];       /* their formats */

static int t_provider_publish(relais_provider *prov, const relais_doc *docs,
                              size_t n)
{
    size_t i;
    (void)prov;
    t_publishes++;
    t_ndocs = n;
    for (i = 0; i < n && i < T_MAX_DOCS; i++) {
        size_t len = docs[i].len < 255 ? docs[i].len : 255;
        snprintf(t_doc_src[i], sizeof(t_doc_src[i]), "%s", docs[i].source);
        memcpy(t_doc_data[i], docs[i].data, len);
        t_doc_data[i][len] = '\0';
        t_doc_fmt[i] = docs[i].format;
    }
    return t_publish_rc;
}
static const char *t_provider_name(relais_provider *prov)
{
    (void)prov;
    return "file";
}

static relais_host t_host; /* the fake host table */

static void t_host_init(void)
{
    t_host.size = sizeof(t_host);
    t_host.abi_major = RELAIS_ABI_MAJOR;
    t_host.abi_minor = RELAIS_ABI_MINOR;
    t_host.log = log_msg;
    t_host.cfg_type = t_cfg_type;
    t_host.cfg_get = t_cfg_get;
    t_host.cfg_string = t_cfg_string;
    t_host.cfg_bool = t_cfg_bool;
    t_host.cfg_int = t_cfg_int;
    t_host.req_headers = t_req_headers;
    t_host.resp_headers = t_resp_headers;
    t_host.req_alloc = t_req_alloc;
    t_host.req_resume = t_req_resume;
    t_host.respond = t_respond;
    t_host.hdr_set = t_hdr_set;
    t_host.hdr_del = t_hdr_del;
    t_host.cfg_error = t_cfg_error;
    t_host.servers_count = t_servers_count;
    t_host.server_weight = t_server_weight;
    t_host.server_up = t_server_up;
    t_host.thread_index = t_thread_index;
    t_host.thread_count = t_thread_count;
    t_host.provider_publish = t_provider_publish;
    t_host.provider_name = t_provider_name;
    t_host.timer_new = t_timer_new;
    t_host.timer_start = t_timer_start;
    t_host.timer_stop = t_timer_stop;
    t_host.timer_free = t_timer_free;
    t_host.watch_new = t_watch_new;
    t_host.watch_free = t_watch_free;
}

/* ---- helpers ------------------------------------------------------------ */

static char t_path[8800]; /* scratch path */

/** dir/name into t_path. */
static const char *t_join(const char *dir, const char *name)
{
    snprintf(t_path, sizeof(t_path), "%s/%s", dir, name);
    return t_path;
}

/** Counts the regular *.so files of dir. */
static size_t t_count_so(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    if (!d) return 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        struct stat st;
        if (de->d_name[0] == '.' || l <= 3 || strcmp(de->d_name + l - 3, ".so"))
            continue;
        if (stat(t_join(dir, de->d_name), &st) == 0 && S_ISREG(st.st_mode)) n++;
    }
    closedir(d);
    return n;
}

/** 1 when path's last component is name. */
static int t_ends_with(const char *path, const char *name)
{
    size_t a = strlen(path), b = strlen(name);
    return a >= b && !strcmp(path + a - b, name);
}

/** Writes s to path (through a rename, as editors do when rename is set). */
static void t_write(const char *path, const char *s, int rename_it)
{
    char tmp[4200];
    const char *dst = path;
    FILE *f;
    if (rename_it) {
        snprintf(tmp, sizeof(tmp), "%s.tmp~", path);
        dst = tmp;
    }
    f = fopen(dst, "w");
    if (!f) return;
    fputs(s, f);
    fclose(f);
    if (rename_it && rename(tmp, path) != 0) unlink(tmp);
}

/** Waits up to ms for the watch's fd, then runs its callback; 1 if it ran. */
static int t_pump(int ms)
{
    struct pollfd pfd;
    if (!t_last_watch) return 0;
    pfd.fd = t_last_watch->fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, ms) != 1) return 0;
    t_last_watch->cb(pfd.fd, RELAIS_WATCH_READ, t_last_watch->arg);
    return 1;
}

/** Fires the debounce timer when armed; 1 if it fired. */
static int t_fire(void)
{
    if (!t_last_timer || !t_last_timer->armed) return 0;
    t_last_timer->armed = 0;
    t_last_timer->cb(t_last_timer->arg);
    return 1;
}

/* ---- loader tests -------------------------------------------------------- */

/** Refusal cases: file, expected substring of the reason. */
static const struct {
    const char *file;   /* test plugin */
    const char *reason; /* what the log line must contain */
} t_bad[] = {
    {"bad_magic.so", ": bad magic 0xdeadbeef (ABI ?.?, host " HV ")"},
    {"major_2.so", ": ABI 2.0, host supports " HV " (major differs)"},
    {"minor_future.so", ": ABI 1.99, host supports " HV " (plugin needs"},
    {"small_desc.so", ": descriptor too small (8 bytes, ABI 1.0 needs 72) "
                      "(ABI " HV ", host " HV ")"},
    {"no_symbol.so", ": no symbol relais_plugin_descriptor (ABI ?.?, "
                     "host " HV ")"},
    {"dup_name.so", ": a plugin named \"wrr\" is already loaded from "},
    {"dup_key.so", ": lb config key \"WRR\" is already provided by plugin "
                   "\"wrr\" from "},
    {"load_fails.so", ": load() failed (returned -1) (ABI " HV ", host " HV ")"},
    {"small_ops.so", ": lb operations table too small (4 bytes, ABI 1.0 "
                     "needs 40) (ABI " HV ", host " HV ")"},
};

static void test_loader(const char *tdir, const char *wdir)
{
    struct pl_set *set = pl_set_new();
    const struct pl_plugin *p;
    const char *log;
    char want[9400];
    size_t i, refused;

    ok(set != NULL, "pl_set_new");
    if (!set) return;
    t_log_take();
    ok(pl_load_file(set, t_join(wdir, "wrr.so"), &t_host) == 0,
       "wrr.so loads");
    ok(set->n == 1 && set->refused == 0, "one plugin, none refused");
    log = t_log_take();
    ok(strstr(log, "loaded lb plugin wrr") != NULL, "load is logged: %s",
       t_flat(log));

    for (i = 0; i < sizeof(t_bad) / sizeof(t_bad[0]); i++) {
        refused = set->refused;
        ok(pl_load_file(set, t_join(tdir, t_bad[i].file), &t_host) == -1,
           "%s refused", t_bad[i].file);
        ok(set->refused == refused + 1 && set->n == 1, "%s counted",
           t_bad[i].file);
        log = t_log_take();
        snprintf(want, sizeof(want), "ERR [plugins] refusing plugin %s%s",
                 t_join(tdir, t_bad[i].file), t_bad[i].reason);
        ok(strstr(log, want) != NULL && t_lines(log) == 1,
           "%s: one line with file and reason: %s", t_bad[i].file, t_flat(log));
        ok(strstr(log, "ABI ") && strstr(log, HV),
           "%s: both version pairs", t_bad[i].file);
    }
    /* dup lines also name both pairs */
    refused = set->refused;
    ok(pl_load_file(set, t_join(tdir, "dup_key.so"), &t_host) == -1, "again");
    log = t_log_take();
    ok(strstr(log, t_join(wdir, "wrr.so")) &&
       strstr(log, "(ABI " HV ", host " HV ")"),
       "dup_key names the wrr file and both pairs: %s", t_flat(log));
    ok(pl_load_file(set, t_join(tdir, "nonexistent.so"), &t_host) == -1,
       "missing file refused");
    log = t_log_take();
    ok(strstr(log, "refusing plugin ") && strstr(log, "nonexistent.so: cannot "
       "open") && strstr(log, "(ABI ?.?, host " HV ")") && t_lines(log) == 1,
       "missing file: one line: %s", t_flat(log));
    ok(set->refused == refused + 2, "refusals counted");

    ok(pl_load_file(set, t_join(tdir, "tp_header.so"), &t_host) == 0,
       "tp_header loads");
    ok(pl_load_file(set, t_join(tdir, "tp_first.so"), &t_host) == 0,
       "tp_first loads");
    ok(set->n == 3, "three loaded");
    ok(pl_load_file(set, t_join(tdir, "tp_first.so"), &t_host) == -1,
       "same file twice refused (duplicate name)");
    ok(set->n == 3, "still three");
    t_log_take();

    p = pl_find(set, RELAIS_KIND_MIDDLEWARE, "TESTHEADER");
    ok(p && !strcmp(p->desc->name, "tp_header") &&
       t_ends_with(p->path, "/tp_header.so"), "pl_find middleware, any case");
    ok(pl_find(set, RELAIS_KIND_LB, "testHeader") == NULL,
       "pl_find: kind matters");
    p = pl_find(set, RELAIS_KIND_LB, "Wrr");
    ok(p && !strcmp(p->desc->name, "wrr"), "pl_find wrr");
    p = pl_find(set, RELAIS_KIND_LB, "first");
    ok(p && !strcmp(p->desc->name, "tp_first"), "pl_find first");
    ok(pl_find(set, RELAIS_KIND_LB, "nope") == NULL, "pl_find unknown");
    ok(pl_find(set, RELAIS_KIND_PROVIDER, "wrr") == NULL, "pl_find kind");
    pl_set_free(set);
    pl_set_free(NULL);
}

/** Valid ops for check_descriptor cases. */
static int t_lb_create(const relais_host *h, const relais_cfg *c,
                       const relais_servers *s, void **i)
{
    (void)h; (void)c; (void)s; *i = NULL;
    return 0;
}
static void t_lb_destroy(void *i) { (void)i; }
static int t_lb_pick(void *i, const relais_servers *s, relais_req *r)
{
    (void)i; (void)s; (void)r;
    return 0;
}

static void test_check_descriptor(void)
{
    relais_lb_ops ops = {sizeof(relais_lb_ops), t_lb_create, t_lb_destroy,
                         t_lb_pick, NULL};
    relais_provider_ops pops = {0};
    relais_plugin d = {RELAIS_PLUGIN_HEAD, RELAIS_KIND_LB, "x", "1", "x",
                       NULL, NULL, NULL, &ops};
    relais_plugin e;
    char msg[256];

    ok(pl_check_descriptor(&d, msg, sizeof(msg)) == 0 && msg[0] == '\0',
       "valid descriptor");
    ok(pl_check_descriptor(NULL, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "no descriptor (ABI ?.?, host " HV ")"), "NULL: %s", msg);
    e = d; e.magic = 0x12345678;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "bad magic 0x12345678 (ABI ?.?, host " HV ")"), "%s", msg);
    e = d; e.abi_major = 0; e.abi_minor = 7;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "ABI 0.7, host supports " HV " (major differs)"), "%s", msg);
    e = d; e.abi_minor = 99;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "ABI 1.99, host supports " HV " (plugin needs a newer host)"),
       "%s", msg);
    e = d; e.size = (uint32_t)(offsetof(relais_plugin, ops) + sizeof(void *));
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == 0, "1.0 size accepted");
    e.size += 64;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == 0, "larger size accepted");
    e.size = (uint32_t)offsetof(relais_plugin, ops);
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "descriptor too small (64 bytes, ABI 1.0 needs 72) (ABI "
               HV ", host " HV ")"), "%s", msg);
    e = d; e.kind = 4;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "unknown kind 4 (ABI " HV ", host " HV ")"), "%s", msg);
    e = d; e.kind = 0;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1, "kind 0");
    e = d; e.name = "";
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "empty plugin name (ABI " HV ", host " HV ")"), "%s", msg);
    e = d; e.name = NULL;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1, "NULL name");
    e = d; e.config_key = NULL;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "empty config key (ABI " HV ", host " HV ")"), "%s", msg);
    e = d; e.ops = NULL;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "no operations table (ABI " HV ", host " HV ")"), "%s", msg);
    ops.pick = NULL;
    ok(pl_check_descriptor(&d, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "lb operation pick is NULL (ABI " HV ", host " HV ")"), "%s",
       msg);
    ops.pick = t_lb_pick;
    ops.size = sizeof(relais_lb_ops) - 1;
    ok(pl_check_descriptor(&d, msg, sizeof(msg)) == -1, "lb ops 1 byte short");
    ops.size = sizeof(relais_lb_ops);
    /* A provider with an lb-sized table: too small for provider ops. */
    e = d; e.kind = RELAIS_KIND_PROVIDER;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "provider operations table too small (40 bytes, ABI 1.0 "
               "needs 56) (ABI " HV ", host " HV ")"), "%s", msg);
    pops.size = sizeof(pops);
    e.ops = &pops;
    ok(pl_check_descriptor(&e, msg, sizeof(msg)) == -1 &&
       !strcmp(msg, "provider operation create is NULL (ABI " HV ", host " HV ")"),
       "%s", msg);
    /* A tiny msg buffer is still NUL-terminated. */
    e = d; e.magic = 1;
    ok(pl_check_descriptor(&e, msg, 5) == -1 && !strcmp(msg, "bad "),
       "truncated message");
}

static void test_load_dir(const char *tdir, const char *wdir)
{
    static const char *const names[] = {"tp_first", "tp_header", "absent",
                                        "../x"};
    struct pl_set *set = pl_set_new();
    const char *log;
    size_t n, total;

    if (!set) return;
    t_log_take();
    n = pl_load_dir(set, tdir, names, 4, &t_host);
    ok(n == 2 && set->n == 2 && set->refused == 2, "by names: 2 loaded, 2 "
       "refused (%zu, %zu)", n, set->refused);
    ok(set->n == 2 && t_ends_with(set->items[0].path, "/tp_first.so") &&
       t_ends_with(set->items[1].path, "/tp_header.so"), "in names' order");
    log = t_log_take();
    ok(strstr(log, "absent.so: No such file or directory (ABI ?.?, host " HV ")")
       != NULL, "absent name logged: %s", t_flat(log));
    ok(strstr(log, "invalid plugin name \"../x\"") != NULL, "bad name logged");
    pl_set_free(set);

    set = pl_set_new();
    if (!set) return;
    total = t_count_so(tdir);
    n = pl_load_dir(set, tdir, NULL, 0, &t_host);
    /* Without wrr, dup_key and dup_name have nothing to clash with. */
    ok(n == 5 && set->n == 5, "all: 5 loaded (%zu)", n);
    ok(set->n + set->refused == total, "every *.so tried (%zu + %zu == %zu)",
       set->n, set->refused, total);
    ok(set->n == 5 && t_ends_with(set->items[0].path, "/dup_key.so") &&
       t_ends_with(set->items[1].path, "/dup_name.so") &&
       t_ends_with(set->items[2].path, "/tp_body.so") &&
       t_ends_with(set->items[3].path, "/tp_first.so") &&
       t_ends_with(set->items[4].path, "/tp_header.so"),
       "sorted (strcmp) order");
    log = t_log_take();
    ok(strstr(log, "bad_magic.so: bad magic") && strstr(log, "small_ops.so: lb "
       "operations"), "refusals logged");
    /* Now wrr clashes with dup_key (its key), loaded first. */
    n = pl_load_dir(set, wdir, NULL, 0, &t_host);
    ok(n == 0 && set->n == 5, "wrr refused after dup_key/dup_name");
    log = t_log_take();
    ok(strstr(log, "wrr.so: lb config key \"wrr\" is already provided by "
              "plugin \"wrr_other\" from ") != NULL, "%s", t_flat(log));

    total = set->refused;
    n = pl_load_dir(set, "/nonexistent/relais-plugins", NULL, 0, &t_host);
    log = t_log_take();
    ok(n == 0 && set->refused == total, "missing directory: 0");
    ok(t_lines(log) == 1 && strstr(log, "ERR [plugins] plugin directory "
       "/nonexistent/relais-plugins: No such file or directory"),
       "missing directory: one error: %s", t_flat(log));
    n = pl_load_dir(set, "/nonexistent/relais-plugins", names, 2, &t_host);
    ok(n == 0 && set->refused == total + 2 && t_lines(t_log_take()) == 1,
       "missing directory with names: one error, names refused");
    pl_set_free(set);
}

/* ---- wrr ----------------------------------------------------------------- */

static void test_wrr(const char *wdir)
{
    struct pl_set *set = pl_set_new();
    const struct pl_plugin *p;
    const relais_lb_ops *ops;
    relais_servers s = {3, {5, 1, 1}, {1, 1, 1}};
    void *inst = NULL;
    char seq[8], seq1[8];
    int i, count[3] = {0, 0, 0}, bad = 0;

    if (!set) return;
    pl_load_file(set, t_join(wdir, "wrr.so"), &t_host);
    p = pl_find(set, RELAIS_KIND_LB, "wrr");
    ok(p != NULL, "wrr found");
    if (!p) goto out;
    ops = p->desc->ops;
    ok(ops->report == NULL && ops->size == sizeof(relais_lb_ops), "wrr ops");
    ok(ops->create(&t_host, NULL, &s, &inst) == 0 && inst, "create");
    t_thread = 0;
    for (i = 0; i < 7; i++) seq[i] = (char)('a' + ops->pick(inst, &s, NULL));
    seq[7] = '\0';
    ok(!strcmp(seq, "aabacaa"), "5,1,1 smooth: %s", seq);
    /* Thread 1 has its own state: the same sequence from the start. */
    t_thread = 1;
    for (i = 0; i < 7; i++) seq1[i] = (char)('a' + ops->pick(inst, &s, NULL));
    seq1[7] = '\0';
    ok(!strcmp(seq1, "aabacaa"), "thread 1 independent: %s", seq1);
    /* The control thread (index == thread_count) has a slot too. */
    t_thread = 2;
    for (i = 0; i < 7000; i++) {
        int k = ops->pick(inst, &s, NULL);
        if (k < 0 || k > 2) bad++;
        else count[k]++;
    }
    ok(!bad && count[0] == 5000 && count[1] == 1000 && count[2] == 1000,
       "7000 picks: %d/%d/%d", count[0], count[1], count[2]);
    t_thread = 0;
    s.up[0] = 0;
    count[0] = count[1] = count[2] = 0;
    for (i = 0; i < 100; i++) count[ops->pick(inst, &s, NULL)]++;
    ok(count[0] == 0 && count[1] == 50 && count[2] == 50,
       "a down: b/c alternate %d/%d/%d", count[0], count[1], count[2]);
    s.up[1] = s.up[2] = 0;
    ok(ops->pick(inst, &s, NULL) == -1, "all down: -1");
    ops->destroy(inst);

    /* Weight 0: only when no positive weight is up. */
    s = (relais_servers){3, {0, 3, 0}, {1, 1, 1}};
    ok(ops->create(&t_host, NULL, &s, &inst) == 0, "create 0,3,0");
    count[0] = count[1] = count[2] = 0;
    for (i = 0; i < 30; i++) count[ops->pick(inst, &s, NULL)]++;
    ok(count[1] == 30, "weight 0 never picked while b is up");
    s.up[1] = 0;
    count[0] = count[1] = count[2] = 0;
    for (i = 0; i < 30; i++) count[ops->pick(inst, &s, NULL)]++;
    ok(count[0] == 15 && count[2] == 15, "b down: weight-0 ones share %d/%d",
       count[0], count[2]);
    ops->destroy(inst);

    s = (relais_servers){0, {0}, {0}};
    ok(ops->create(&t_host, NULL, &s, &inst) == 0, "create empty");
    ok(ops->pick(inst, &s, NULL) == -1, "no servers: -1");
    ops->destroy(inst);
out:
    pl_set_free(set);
}

/* ---- tp_header (a middleware through the ABI) ---------------------------- */

static void test_tp_header(const char *tdir)
{
    struct pl_set *set = pl_set_new();
    const struct pl_plugin *p;
    const relais_middleware_ops *ops;
    relais_req *r = calloc(1, sizeof(*r));
    void *inst = NULL, *ctx = NULL;

    if (!set || !r) goto out;
    pl_load_file(set, t_join(tdir, "tp_header.so"), &t_host);
    p = pl_find(set, RELAIS_KIND_MIDDLEWARE, "testheader");
    ok(p != NULL, "tp_header found");
    if (!p) goto out;
    ops = p->desc->ops;
    {
        relais_cfg kids[] = {
            {RELAIS_CFG_STRING, "name", "X-Test", 0, NULL, 0},
            {RELAIS_CFG_STRING, "value", "yes", 0, NULL, 0},
        };
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 2};
        ok(ops->create(&t_host, &c, "th", &inst) == 0, "create name/value");
        ok(ops->on_request(inst, r, &ctx) == RELAIS_NEXT, "passes");
        ok(ops->on_response(inst, r, &ctx) == RELAIS_NEXT &&
           r->resp_h.n == 1 && !strcmp(r->resp_h.name[0], "X-Test") &&
           !strcmp(r->resp_h.value[0], "yes"), "response header set");
        ops->destroy(inst);
    }
    {
        relais_cfg kids[] = {{RELAIS_CFG_BOOL, "deny", NULL, 1, NULL, 0}};
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
        ok(ops->create(&t_host, &c, "th", &inst) == 0, "create deny");
        ok(ops->on_request(inst, r, &ctx) == RELAIS_DONE && r->status == 403 &&
           !strcmp(r->body, "denied by testHeader\n"), "deny: 403");
        ops->destroy(inst);
    }
    {
        relais_cfg kids[] = {{RELAIS_CFG_INT, "suspendMs", NULL, 25, NULL, 0}};
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
        ok(ops->create(&t_host, &c, "th", &inst) == 0, "create suspendMs");
        r->resumed = -2;
        ok(ops->on_request(inst, r, &ctx) == RELAIS_SUSPEND && t_last_timer &&
           t_last_timer->armed && t_last_timer->ms == 25 && r->resumed == -2,
           "suspend: timer 25 ms");
        ok(t_fire() && r->resumed == RELAIS_NEXT && t_timers_live == 0,
           "timer resumes with NEXT and is freed");
        ops->destroy(inst);
        kids[0].b = -1;
        ok(ops->create(&t_host, &c, "th", &inst) == -1 &&
           strstr(t_cfg_err, "suspendMs") == NULL &&
           !strcmp(t_cfg_err, "must be between 0 and 600000"),
           "negative suspendMs refused: %s", t_cfg_err);
    }
out:
    if (r) t_req_free(r);
    free(r);
    pl_set_free(set);
}

/* ---- the SDK example (sdk/examples/hello) -------------------------------- */

static void test_hello(const char *hdir)
{
    struct pl_set *set = pl_set_new();
    const struct pl_plugin *p;
    const relais_middleware_ops *ops;
    relais_req *r = calloc(1, sizeof(*r));
    void *inst = NULL, *ctx = NULL;
    relais_cfg kids[] = {{RELAIS_CFG_STRING, "value", "there", 0, NULL, 0}};
    relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
    relais_cfg bad_kids[] = {
        {RELAIS_CFG_STRING, "header", "Bad Header", 0, NULL, 0}};
    relais_cfg bad = {RELAIS_CFG_MAP, NULL, NULL, 0, bad_kids, 1};

    if (!set || !r) goto out;
    ok(pl_load_file(set, t_join(hdir, "hello.so"), &t_host) == 0,
       "hello.so loads");
    p = pl_find(set, RELAIS_KIND_MIDDLEWARE, "hello");
    ok(p != NULL, "hello found");
    if (!p) goto out;
    ops = p->desc->ops;
    ok(ops->create(&t_host, &c, "hi", &inst) == 0, "hello create");
    ok(ops->on_request(inst, r, &ctx) == RELAIS_NEXT && r->req_h.n == 1 &&
       !strcmp(r->req_h.name[0], "X-Hello") &&
       !strcmp(r->req_h.value[0], "there"), "request: X-Hello: there");
    ok(ops->on_response(inst, r, &ctx) == RELAIS_NEXT && r->resp_h.n == 1 &&
       !strcmp(r->resp_h.name[0], "X-Hello") &&
       !strcmp(r->resp_h.value[0], "there"), "response: X-Hello: there");
    ops->destroy(inst);
    ok(ops->create(&t_host, &bad, "hi", &inst) == -1 &&
       !strcmp(t_cfg_err, "not a valid header name"), "bad header name");
out:
    free(r);
    pl_set_free(set);
}

/* ---- file provider ------------------------------------------------------- */

static void test_file(const char *fdir)
{
    char tmpl[] = "/tmp/relais-fp-XXXXXX", sub[4200], f1[4200];
    struct pl_set *set = pl_set_new();
    const struct pl_plugin *p;
    const relais_provider_ops *ops;
    relais_provider *prov = (relais_provider *)&t_host; /* any handle */
    void *inst = NULL;
    const char *dir;
    int n;

    if (!set) return;
    pl_load_file(set, t_join(fdir, "file.so"), &t_host);
    p = pl_find(set, RELAIS_KIND_PROVIDER, "File");
    ok(p != NULL, "file provider found");
    dir = mkdtemp(tmpl);
    if (!p || !dir) goto out;
    ops = p->desc->ops;

    {
        relais_cfg empty = {RELAIS_CFG_MAP, NULL, NULL, 0, NULL, 0};
        relais_cfg kids[] = {
            {RELAIS_CFG_STRING, "filename", "/x.yaml", 0, NULL, 0},
            {RELAIS_CFG_STRING, "directory", "/x", 0, NULL, 0},
            {RELAIS_CFG_STRING, "debugLogGeneratedTemplate", "x", 0, NULL, 0},
        };
        relais_cfg both = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 3};
        relais_cfg bad = {RELAIS_CFG_MAP, NULL, NULL, 0, kids + 1, 1};
        relais_cfg badwatch[] = {
            {RELAIS_CFG_STRING, "directory", "/x", 0, NULL, 0},
            {RELAIS_CFG_STRING, "watch", "maybe", 0, NULL, 0},
        };
        relais_cfg bw = {RELAIS_CFG_MAP, NULL, NULL, 0, badwatch, 2};

        ok(ops->create(&t_host, &empty, prov, &inst) == -1 &&
           !strcmp(t_cfg_err, "either filename or directory must be set"),
           "no option: %s", t_cfg_err);
        ok(ops->create(&t_host, &both, prov, &inst) == -1 &&
           !strcmp(t_cfg_err, "filename and directory are mutually exclusive"),
           "both: %s", t_cfg_err);
        ok(ops->create(&t_host, &bad, prov, &inst) == 0, "directory alone");
        ops->destroy(inst);
        n = t_cfg_errors;
        ok(ops->create(&t_host, &bw, prov, &inst) == -1 &&
           t_cfg_errors == n + 1,
           "watch not a bool");
    }

    /* Single file, no watch: load_once. */
    snprintf(f1, sizeof(f1), "%s/dyn.yaml", dir);
    t_write(f1, "http: {}\n", 0);
    {
        relais_cfg kids[] = {
            {RELAIS_CFG_STRING, "filename", f1, 0, NULL, 0},
            {RELAIS_CFG_BOOL, "watch", NULL, 0, NULL, 0},
        };
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 2};
        ok(ops->create(&t_host, &c, prov, &inst) == 0, "filename create");
        t_publishes = 0;
        ok(ops->load_once(inst) == 0 && t_publishes == 1 && t_ndocs == 1 &&
           !strcmp(t_doc_src[0], f1) && !strcmp(t_doc_data[0], "http: {}\n") &&
           t_doc_fmt[0] == RELAIS_DOC_AUTO, "load_once publishes the file");
        ok(ops->start(inst) == 0 && t_publishes == 2 && t_watches_live == 0 &&
           t_timers_live == 0, "start without watch: publish, no watch");
        t_publish_rc = -1;
        ok(ops->load_once(inst) == -1, "rejected document: -1");
        t_publish_rc = 0;
        ops->stop(inst);
        ops->destroy(inst);
    }

    /* Missing file. */
    {
        relais_cfg kids[] = {
            {RELAIS_CFG_STRING, "filename", "/nonexistent/x.yaml", 0, NULL, 0}};
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
        ok(ops->create(&t_host, &c, prov, &inst) == 0, "create missing");
        t_log_take();
        t_publishes = 0;
        ok(ops->load_once(inst) == -1 && t_publishes == 0, "load_once: -1");
        ok(ops->start(inst) == -1 && t_publishes == 0 && t_watches_live == 0,
           "start: -1");
        ok(strstr(t_log_take(), "[file] cannot read /nonexistent/x.yaml: No "
                  "such file") != NULL, "read error logged");
        ops->destroy(inst);
    }

    /* Directory, watched. */
    snprintf(sub, sizeof(sub), "%s/conf", dir);
    mkdir(sub, 0755);
    t_write(t_join(sub, "b.yaml"), "B1", 0);
    t_write(t_join(sub, "a.yml"), "A1", 0);
    t_write(t_join(sub, "c.json"), "{}", 0);
    t_write(t_join(sub, ".hidden.yaml"), "H", 0);
    t_write(t_join(sub, "notes.txt"), "T", 0);
    t_write(t_join(sub, "old.toml"), "x", 0);
    mkdir(t_join(sub, "dir.yaml"), 0755);
    {
        relais_cfg kids[] = {{RELAIS_CFG_STRING, "directory", sub, 0, NULL, 0}};
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
        char want[3][4300];

        snprintf(want[0], sizeof(want[0]), "%s/a.yml", sub);
        snprintf(want[1], sizeof(want[1]), "%s/b.yaml", sub);
        snprintf(want[2], sizeof(want[2]), "%s/c.json", sub);
        ok(ops->create(&t_host, &c, prov, &inst) == 0, "directory create");
        t_publishes = 0;
        t_log_take();
        ok(ops->start(inst) == 0 && t_publishes == 1 && t_ndocs == 3,
           "start publishes 3 docs (%zu)", t_ndocs);
        ok(!strcmp(t_doc_src[0], want[0]) && !strcmp(t_doc_src[1], want[1]) &&
           !strcmp(t_doc_src[2], want[2]) && !strcmp(t_doc_data[0], "A1") &&
           !strcmp(t_doc_data[1], "B1"), "sorted, hidden/other files skipped");
        ok(strstr(t_log_take(), "old.toml: TOML is not supported") != NULL,
           "toml warned");
        ok(t_watches_live == 1 && t_timers_live == 1, "watch and timer");

        t_write(t_join(sub, "b.yaml"), "B2", 1);
        ok(t_pump(2000), "inotify event");
        while (t_pump(100)) {}
        ok(t_last_timer && t_last_timer->armed && t_last_timer->ms == 10,
           "debounce armed 10 ms");
        ok(t_fire() && t_publishes == 2 && t_ndocs == 3 &&
           !strcmp(t_doc_data[1], "B2"), "re-published after the change");

        chmod(t_join(sub, "a.yml"), 0600);
        ok(t_pump(2000), "attrib event");
        while (t_pump(100)) {}
        ok(t_fire() && t_publishes == 2, "unchanged bytes: not re-published");

        t_write(t_join(sub, "notes.txt"), "T2", 0);
        t_write(t_join(sub, ".x.yaml.swp"), "T2", 0);
        while (t_pump(200)) {}
        ok(!t_fire(), "irrelevant names: no timer");

        t_publish_rc = -1;
        t_write(t_join(sub, "c.json"), "{bad", 0);
        while (t_pump(200)) {}
        ok(t_fire() && t_publishes == 3, "bad doc offered");
        t_publish_rc = 0;
        ops->reload(inst);
        ok(t_publishes == 4 && !strcmp(t_doc_data[2], "{bad"),
           "reload publishes again");

        unlink(t_join(sub, "a.yml"));
        while (t_pump(200)) {}
        ok(t_fire() && t_publishes == 5 && t_ndocs == 2, "delete: 2 docs");

        ops->stop(inst);
        ok(t_watches_live == 0 && t_timers_live == 0, "stop frees watch+timer");
        ops->destroy(inst);
    }

    /* Filename, watched: only that name matters. */
    {
        relais_cfg kids[] = {{RELAIS_CFG_STRING, "filename", f1, 0, NULL, 0}};
        relais_cfg c = {RELAIS_CFG_MAP, NULL, NULL, 0, kids, 1};
        ok(ops->create(&t_host, &c, prov, &inst) == 0, "filename create");
        t_publishes = 0;
        ok(ops->start(inst) == 0 && t_publishes == 1 && t_watches_live == 1,
           "filename watched");
        t_write(t_join(dir, "other.yaml"), "x", 0);
        while (t_pump(200)) {}
        ok(!t_fire(), "other file: no timer");
        t_write(f1, "http: {routers: {}}\n", 1);
        while (t_pump(500)) {}
        ok(t_fire() && t_publishes == 2 &&
           !strcmp(t_doc_data[0], "http: {routers: {}}\n"),
           "mv over the file: re-published");
        ops->destroy(inst); /* without stop: destroy stops */
        ok(t_watches_live == 0 && t_timers_live == 0, "destroy frees all");
    }

    /* Clean the temp tree. */
    unlink(t_join(sub, "b.yaml"));
    unlink(t_join(sub, "c.json"));
    unlink(t_join(sub, ".hidden.yaml"));
    unlink(t_join(sub, "notes.txt"));
    unlink(t_join(sub, ".x.yaml.swp"));
    unlink(t_join(sub, "old.toml"));
    rmdir(t_join(sub, "dir.yaml"));
    rmdir(sub);
    unlink(t_join(dir, "other.yaml"));
    unlink(f1);
    rmdir(dir);
out:
    pl_set_free(set);
}

int main(int argc, char **argv)
{
    const char *tdir = argc > 1 ? argv[1] : getenv("RELAIS_TEST_PLUGIN_DIR");
    const char *wdir = argc > 2 ? argv[2] : getenv("RELAIS_TEST_WRR_DIR");
    const char *fdir = argc > 3 ? argv[3] : getenv("RELAIS_TEST_FILE_DIR");
    const char *hdir = argc > 4 ? argv[4] : getenv("RELAIS_TEST_HELLO_DIR");
    int fd;

    if (!tdir || !wdir) {
        printf("Bail out! usage: %s TEST_PLUGIN_DIR WRR_DIR [FILE_DIR "
               "[HELLO_DIR]]\n",
               argv[0]);
        return 1;
    }
    snprintf(t_logpath, sizeof(t_logpath), "/tmp/relais-pl-log-XXXXXX");
    fd = mkstemp(t_logpath);
    if (fd < 0 || log_open(t_logpath) != 0) {
        printf("Bail out! cannot open a log file\n");
        return 1;
    }
    close(fd);
    log_set_level(RELAIS_LOG_INFO);
    t_host_init();

    test_check_descriptor();
    test_loader(tdir, wdir);
    test_load_dir(tdir, wdir);
    test_wrr(wdir);
    test_tp_header(tdir);
    if (fdir)
        test_file(fdir);
    else
        ok(1, "file provider # SKIP no FILE_DIR given");
    if (hdir)
        test_hello(hdir);
    else
        ok(1, "hello example # SKIP no HELLO_DIR given");

    log_open(NULL);
    unlink(t_logpath);
    return tap_done();
}
