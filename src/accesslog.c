/*
 * accesslog — see accesslog.h.
 *
 * Layout: per worker one ring (struct al_ring) with the producer's cursor
 * and counters on one cache line and the consumer's on another; the worker
 * formats into its own scratch buffer, then copies the whole line into the
 * ring and publishes it with one release store, so the writer only ever
 * sees whole lines.  The writer thread wakes every AL_TICK_MS (or at once
 * for al_flush / al_free / al_reopen), decides whether a batch is due and
 * hands the rings' bytes to writev(2) in place.
 */
#include "config.h"

#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

#define AL_WHO "accesslog"
#define AL_TICK_MS 10          /* writer wake-up period */
#define AL_MAX_RANGES 64       /* statusCodes ranges */
#define AL_MAX_HDR_NAMES 64    /* fields.headers.names entries */
#define AL_MAX_HDRS 256        /* headers of one list considered */
#define AL_IOV_MAX 1024        /* iovecs per writev */

/** Output formats. */
enum al_format { AL_FMT_COMMON = 0, AL_FMT_JSON = 1 };

/** What happens to a field or header. */
enum al_mode { AL_KEEP = 0, AL_DROP = 1, AL_REDACT = 2 };

/** Traefik's field names, in the byte order Go's JSON encoder sorts map
 *  keys (upper case first), then relais' entryPointName. */
enum al_field {
    F_CLIENT_ADDR, F_CLIENT_HOST, F_CLIENT_PORT, F_CLIENT_USERNAME,
    F_DOWN_SIZE, F_DOWN_STATUS, F_DURATION, F_GZIP_RATIO,
    F_ORIGIN_SIZE, F_ORIGIN_DURATION, F_ORIGIN_STATUS, F_OVERHEAD,
    F_REQ_ADDR, F_REQ_SIZE, F_REQ_COUNT, F_REQ_HOST, F_REQ_METHOD,
    F_REQ_PATH, F_REQ_PORT, F_REQ_PROTOCOL, F_REQ_SCHEME, F_RETRY,
    F_ROUTER, F_SERVICE_ADDR, F_SERVICE_NAME, F_SERVICE_URL,
    F_START_LOCAL, F_START_UTC, F_TLS_CIPHER, F_TLS_SUBJECT, F_TLS_VERSION,
    F_ENTRY_POINT, F_COUNT
};

/** The JSON keys (and fields.names keys) of enum al_field. */
static const char *const al_field_name[F_COUNT] = {
    "ClientAddr", "ClientHost", "ClientPort", "ClientUsername",
    "DownstreamContentSize", "DownstreamStatus", "Duration", "GzipRatio",
    "OriginContentSize", "OriginDuration", "OriginStatus", "Overhead",
    "RequestAddr", "RequestContentSize", "RequestCount", "RequestHost",
    "RequestMethod", "RequestPath", "RequestPort", "RequestProtocol",
    "RequestScheme", "RetryAttempts", "RouterName", "ServiceAddr",
    "ServiceName", "ServiceURL", "StartLocal", "StartUTC", "TLSCipher",
    "TLSClientSubject", "TLSVersion", "entryPointName",
};

/** Kinds of field values. */
enum al_kind { V_NONE = 0, V_STR, V_INT, V_RATIO, V_TIME };

/** One field's value for one record. */
struct al_val {
    int kind;       /* enum al_kind; V_NONE: absent */
    const char *s;  /* V_STR: bytes */
    size_t n;       /* V_STR: length */
    const char *q;  /* V_STR: text after a '?' (RequestPath's query), or NULL */
    size_t qn;      /* its length */
    int64_t i;      /* V_INT: value; V_TIME: ns since the epoch */
    int32_t off;    /* V_TIME: UTC offset in seconds */
    double d;       /* V_RATIO: value */
};

/** A status code range [lo, hi]. */
struct al_range {
    int lo; /* first code */
    int hi; /* last code */
};

/** A configured header name and its mode. */
struct al_hdr_mode {
    char *name;  /* as configured (compared case-insensitively) */
    size_t len;  /* its length */
    int mode;    /* enum al_mode */
};

/** One worker's ring: single producer (the worker), single consumer (the
 *  writer thread). Cursors grow forever; offsets are cursor & mask. */
struct al_ring {
    _Alignas(64) _Atomic uint64_t head; /* bytes published (producer) */
    _Atomic uint64_t lines;             /* lines published (producer) */
    _Atomic uint64_t dropped;           /* lines dropped (producer) */
    char *scratch;                      /* producer's line buffer */
    _Alignas(64) _Atomic uint64_t tail; /* bytes consumed (writer) */
    uint64_t lines_done;                /* lines consumed (writer only) */
    uint64_t snap_head;                 /* head seen by the batch (writer) */
    uint64_t snap_lines;                /* lines seen by the batch (writer) */
    char *data;                         /* AL_RING_BYTES bytes */
};

struct al_log {
    _Atomic int refs;            /* references: al_new's and al_ref's */
    /* configuration (read-only after al_new) */
    int format;                  /* enum al_format */
    int64_t buffering;           /* bufferingSize: lines before a write */
    int add_internals;           /* addInternals */
    int has_filters;             /* any filter configured */
    struct al_range ranges[AL_MAX_RANGES]; /* filters.statusCodes */
    size_t nranges;              /* how many */
    int filter_retry;            /* filters.retryAttempts */
    int64_t min_duration_ns;     /* filters.minDuration, 0: none */
    unsigned char mode[F_COUNT]; /* enum al_mode per field */
    int hdr_default;             /* fields.headers.defaultMode */
    struct al_hdr_mode hdrs[AL_MAX_HDR_NAMES]; /* fields.headers.names */
    size_t nhdrs;                /* how many */
    char *path;                  /* filePath, NULL: standard output */
    /* rings */
    unsigned nrings;             /* one per worker */
    struct al_ring *rings;       /* the rings (64-byte aligned) */
    /* writer thread */
    int fd;                      /* output (writer's after start) */
    pthread_t thread;            /* the writer */
    int started;                 /* thread running */
    pthread_mutex_t mu;          /* guards stop, flush_req, flush_done */
    pthread_cond_t cv;           /* wakes the writer / flush waiters */
    int stop;                    /* al_free asked to stop */
    uint64_t flush_req;          /* flushes asked */
    uint64_t flush_done;         /* flushes completed */
    _Atomic int reopen;          /* al_reopen asked */
    _Atomic int32_t tz_off;      /* local UTC offset, seconds (writer) */
    _Atomic uint64_t wdropped;   /* lines lost to write errors / misuse */
    int werr_logged;             /* a write error was logged (writer) */
    struct iovec iov[AL_IOV_MAX];/* writer's batch */
    struct al_ring *iov_ring[AL_IOV_MAX]; /* ring of each batch iovec */
};

/* ---------------------------------------------------------------- buffer */

/** A bounded output buffer; `over` once something did not fit. */
struct al_buf {
    char *p;    /* bytes */
    size_t len; /* used */
    size_t cap; /* capacity */
    int over;   /* overflowed: the line is dropped */
};

/** Appends n bytes. */
static void b_put(struct al_buf *b, const char *s, size_t n)
{
    if (b->over || n > b->cap - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/** Appends a NUL-terminated string. */
static void b_str(struct al_buf *b, const char *s) { b_put(b, s, strlen(s)); }

/** Appends one byte. */
static void b_ch(struct al_buf *b, char c)
{
    if (b->over || b->len >= b->cap) {
        b->over = 1;
        return;
    }
    b->p[b->len++] = c;
}

/** Appends v in decimal. */
static void b_u64(struct al_buf *b, uint64_t v)
{
    char t[24];
    int i = (int)sizeof(t);

    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    b_put(b, t + i, sizeof(t) - (size_t)i);
}

/** Appends v in decimal (signed). */
static void b_i64(struct al_buf *b, int64_t v)
{
    if (v < 0) {
        b_ch(b, '-');
        b_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        b_u64(b, (uint64_t)v);
    }
}

/** Appends v as exactly `width` digits (zero-padded). */
static void b_pad(struct al_buf *b, unsigned v, int width)
{
    char t[10];

    for (int i = width - 1; i >= 0; i--) {
        t[i] = (char)('0' + v % 10);
        v /= 10;
    }
    b_put(b, t, (size_t)width);
}

/** Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    uint32_t cp, min;

    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) need = 2, cp = s[0] & 0x1F, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0) need = 3, cp = s[0] & 0x0F, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0) need = 4, cp = s[0] & 0x07, min = 0x10000;
    else return 0;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

/** Appends s[0..n) escaped for the inside of a JSON string, as Go's
 *  encoder does (HTML-safe <, >, &; U+2028/2029; invalid UTF-8 as
 *  U+FFFD). */
static void b_json_raw(struct al_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    while (i < n) {
        unsigned char c = u[i];
        size_t k = 0;

        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' &&
            c != '&' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            k = utf8_len(u + i, n - i);
            if (k && !(k == 3 && c == 0xE2 && u[i + 1] == 0x80 &&
                       (u[i + 2] == 0xA8 || u[i + 2] == 0xA9))) {
                i += k;
                continue;
            }
        }
        b_put(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            b_ch(b, '\\');
            b_ch(b, (char)c);
            i++;
        } else if (c == '\n') {
            b_put(b, "\\n", 2), i++;
        } else if (c == '\r') {
            b_put(b, "\\r", 2), i++;
        } else if (c == '\t') {
            b_put(b, "\\t", 2), i++;
        } else if (c < 0x80) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            b_put(b, e, 6), i++;
        } else if (k == 3) { /* U+2028 / U+2029 */
            b_put(b, u[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            i += 3;
        } else {
            b_put(b, "\\ufffd", 6);
            i++;
        }
        run = i;
    }
    b_put(b, s + run, n - run);
}

/** Appends s[0..n) raw for the common format, control bytes as \xHH (a
 *  header value can never start a new line). */
static void b_clf(struct al_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f) continue;
        b_put(b, s + run, i - run);
        char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        b_put(b, e, 4);
        run = i + 1;
    }
    b_put(b, s + run, n - run);
}

/* ------------------------------------------------------------------ time */

/** Broken-down civil time. */
struct al_tm {
    int64_t year; /* proleptic Gregorian year */
    unsigned mon; /* 1..12 */
    unsigned day; /* 1..31 */
    unsigned hour, min, sec; /* time of day */
    unsigned nsec; /* 0..999999999 */
};

/** Splits ns since the epoch (+ offset seconds) into civil time, without
 *  the C library (gmtime_r takes glibc's time-zone lock). */
static void al_civil(int64_t ns, int32_t off, struct al_tm *t)
{
    int64_t secs = ns / 1000000000, rem = ns % 1000000000;
    int64_t days, sod, z, era, doe, yoe, doy, mp;

    if (rem < 0) rem += 1000000000, secs--;
    secs += off;
    days = secs / 86400;
    sod = secs % 86400;
    if (sod < 0) sod += 86400, days--;
    /* days -> (y, m, d): count in 400-year eras starting on 1 March */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    t->day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    t->mon = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    t->year = yoe + era * 400 + (t->mon <= 2);
    t->hour = (unsigned)(sod / 3600);
    t->min = (unsigned)(sod / 60 % 60);
    t->sec = (unsigned)(sod % 60);
    t->nsec = (unsigned)rem;
}

/** Appends "+hh:mm" / "-hh:mm", or "Z" for 0 (Go's Z07:00); with clf,
 *  "+hhmm" (Go's -0700). */
static void b_zone(struct al_buf *b, int32_t off, int clf)
{
    unsigned a;

    if (!off && !clf) {
        b_ch(b, 'Z');
        return;
    }
    b_ch(b, off < 0 ? '-' : '+');
    a = (unsigned)(off < 0 ? -off : off) / 60;
    b_pad(b, a / 60, 2);
    if (!clf) b_ch(b, ':');
    b_pad(b, a % 60, 2);
}

/** Appends "2006-01-02T15:04:05", then with nano Go's RFC 3339 fraction
 *  (".999999999", trailing zeros trimmed), then the zone. */
static void b_rfc3339(struct al_buf *b, int64_t ns, int32_t off, int nano)
{
    struct al_tm t;

    al_civil(ns, off, &t);
    b_pad(b, (unsigned)t.year, 4);
    b_ch(b, '-');
    b_pad(b, t.mon, 2);
    b_ch(b, '-');
    b_pad(b, t.day, 2);
    b_ch(b, 'T');
    b_pad(b, t.hour, 2);
    b_ch(b, ':');
    b_pad(b, t.min, 2);
    b_ch(b, ':');
    b_pad(b, t.sec, 2);
    if (nano && t.nsec) {
        char f[10];
        int n = 9;
        unsigned v = t.nsec;
        for (int i = 8; i >= 0; i--) {
            f[i + 1] = (char)('0' + v % 10);
            v /= 10;
        }
        f[0] = '.';
        while (f[n] == '0') n--;
        b_put(b, f, (size_t)n + 1);
    }
    b_zone(b, off, 0);
}

/** Appends "02/Jan/2006:15:04:05 +0000" (UTC). */
static void b_clf_time(struct al_buf *b, int64_t ns)
{
    static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct al_tm t;

    al_civil(ns, 0, &t);
    b_pad(b, t.day, 2);
    b_ch(b, '/');
    b_put(b, mon[t.mon - 1], 3);
    b_ch(b, '/');
    b_pad(b, (unsigned)t.year, 4);
    b_ch(b, ':');
    b_pad(b, t.hour, 2);
    b_ch(b, ':');
    b_pad(b, t.min, 2);
    b_ch(b, ':');
    b_pad(b, t.sec, 2);
    b_ch(b, ' ');
    b_zone(b, 0, 1);
}

/** Appends d the way Go's encoding/json writes a float64: the shortest
 *  digits that read back, in plain notation for 1e-6 <= |d| < 1e21. */
static void b_float(struct al_buf *b, double d)
{
    char t[40], digits[20];
    int prec, exp, nd = 0;
    char *e;

    if (d != d || d - d != 0) { /* NaN / Inf: JSON has no spelling */
        b_ch(b, '0');
        return;
    }
    if (d == 0) {
        b_ch(b, '0');
        return;
    }
    if (d < 0) {
        b_ch(b, '-');
        d = -d;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*e", prec - 1, d);
        if (strtod(t, NULL) == d) break;
    }
    e = strchr(t, 'e');
    if (!e) return;
    exp = atoi(e + 1);
    for (char *p = t; p < e; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    if (d < 1e-6 || d >= 1e21) {
        b_put(b, t, (size_t)(e - t));
        b_ch(b, 'e');
        b_ch(b, exp < 0 ? '-' : '+');
        b_pad(b, (unsigned)(exp < 0 ? -exp : exp), 2);
        return;
    }
    if (exp < 0) {
        b_put(b, "0.", 2);
        for (int i = -1; i > exp; i--) b_ch(b, '0');
        b_put(b, digits, (size_t)nd);
        return;
    }
    for (int i = 0; i <= exp; i++) b_ch(b, i < nd ? digits[i] : '0');
    if (nd > exp + 1) {
        b_ch(b, '.');
        b_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
    }
}

/* ---------------------------------------------------------------- values */

/** Case-insensitive equality of two byte strings. */
static int al_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

/** The mode of header name[0..len). */
static int al_hdr_mode(const struct al_log *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->nhdrs; i++)
        if (al_name_eq(l->hdrs[i].name, l->hdrs[i].len, name, len))
            return l->hdrs[i].mode;
    return l->hdr_default;
}

/** Index of the first header called name in h[0..n), or -1. */
static long al_hdr_find(const struct msg_hdr *h, size_t n, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < n; i++)
        if (al_name_eq(h[i].name, h[i].nlen, name, len)) return (long)i;
    return -1;
}

/** Sets v to the string s[0..n) (absent when s is NULL). */
static void v_str(struct al_val *v, const char *s, size_t n)
{
    if (!s) return;
    v->kind = V_STR;
    v->s = s;
    v->n = n;
}

/** Sets v to the NUL-terminated s (absent when NULL or empty). */
static void v_cstr(struct al_val *v, const char *s)
{
    if (s && *s) v_str(v, s, strlen(s));
}

/** Sets v to the integer i. */
static void v_int(struct al_val *v, int64_t i)
{
    v->kind = V_INT;
    v->i = i;
}

/** Scratch text a record's derived values point into. */
struct al_text {
    char client_addr[80]; /* "ip:port" / "[ip]:port" */
    char client_port[12]; /* port digits */
};

/**
 * Fills vals[F_COUNT] for r (Traefik's rules: RequestPort and
 * ClientUsername are "-" when unknown; the origin fields only when an
 * origin answered; TLS fields only over TLS; X-Forwarded-For replaces
 * ClientHost).  Strings point into r, tx or constants.
 */
static void al_values(const struct al_log *l, const struct al_record *r,
                      struct al_val *v, struct al_text *tx)
{
    const char *a;
    size_t an;
    long xff;

    memset(v, 0, sizeof(*v) * F_COUNT);
    if (r->client_ip && *r->client_ip) {
        int six = strchr(r->client_ip, ':') != NULL;
        snprintf(tx->client_port, sizeof tx->client_port, "%d", r->client_port);
        snprintf(tx->client_addr, sizeof tx->client_addr, "%s%s%s:%d",
                 six ? "[" : "", r->client_ip, six ? "]" : "", r->client_port);
        v_cstr(&v[F_CLIENT_ADDR], tx->client_addr);
        v_cstr(&v[F_CLIENT_HOST], r->client_ip);
        v_cstr(&v[F_CLIENT_PORT], tx->client_port);
    }
    xff = al_hdr_find(r->req_headers, r->n_req_headers, "X-Forwarded-For");
    if (xff >= 0 && r->req_headers[xff].vlen)
        v_str(&v[F_CLIENT_HOST], r->req_headers[xff].value,
              r->req_headers[xff].vlen);
    v_str(&v[F_CLIENT_USERNAME], "-", 1);
    v_cstr(&v[F_CLIENT_USERNAME], r->username);
    v_int(&v[F_DOWN_SIZE], (int64_t)r->content_size);
    v_int(&v[F_DOWN_STATUS], r->status);
    v_int(&v[F_DURATION], r->duration_ns);
    v_int(&v[F_OVERHEAD], r->duration_ns);
    if (r->origin_status) {
        v_int(&v[F_ORIGIN_SIZE], (int64_t)r->origin_content_size);
        v_int(&v[F_ORIGIN_DURATION], r->origin_duration_ns);
        v_int(&v[F_ORIGIN_STATUS], r->origin_status);
        v_int(&v[F_OVERHEAD], r->duration_ns - r->origin_duration_ns);
        if (r->content_size && r->content_size != r->origin_content_size) {
            v[F_GZIP_RATIO].kind = V_RATIO;
            v[F_GZIP_RATIO].d =
                (double)r->origin_content_size / (double)r->content_size;
        }
    }
    a = r->authority;
    an = a ? r->authority_len : 0;
    if (an) {
        const char *host = a, *port = "-";
        size_t hn = an, pn = 1;
        const char *colon = NULL;
        int ncolon = 0;

        if (a[0] == '[') {
            const char *rb = memchr(a, ']', an);
            if (rb && rb + 1 < a + an && rb[1] == ':') {
                host = a + 1;
                hn = (size_t)(rb - a - 1);
                port = rb + 2;
                pn = (size_t)(a + an - port);
            }
        } else {
            for (size_t i = 0; i < an; i++)
                if (a[i] == ':') ncolon++, colon = a + i;
            if (ncolon == 1) {
                hn = (size_t)(colon - a);
                port = colon + 1;
                pn = (size_t)(a + an - port);
            }
        }
        v_str(&v[F_REQ_ADDR], a, an);
        v_str(&v[F_REQ_HOST], host, hn);
        v_str(&v[F_REQ_PORT], port, pn);
    }
    v_int(&v[F_REQ_SIZE], (int64_t)r->request_content_size);
    v_int(&v[F_REQ_COUNT], (int64_t)r->request_count);
    if (r->method) v_str(&v[F_REQ_METHOD], r->method, r->method_len);
    if (r->path) {
        v_str(&v[F_REQ_PATH], r->path, r->path_len);
        v[F_REQ_PATH].q = r->query; /* Traefik logs path?query */
        v[F_REQ_PATH].qn = r->query ? r->query_len : 0;
    }
    v_cstr(&v[F_REQ_PROTOCOL], r->protocol);
    v_str(&v[F_REQ_SCHEME], r->tls_version ? "https" : "http",
          r->tls_version ? 5 : 4);
    v_int(&v[F_RETRY], r->retry_attempts);
    v_cstr(&v[F_ROUTER], r->router);
    v_cstr(&v[F_SERVICE_NAME], r->service);
    if (r->service_url && *r->service_url) {
        const char *u = r->service_url, *s = strstr(u, "://");
        size_t n;
        v_cstr(&v[F_SERVICE_URL], u);
        s = s ? s + 3 : u;
        n = strcspn(s, "/?#");
        if (n) v_str(&v[F_SERVICE_ADDR], s, n);
    }
    v[F_START_LOCAL].kind = V_TIME;
    v[F_START_LOCAL].i = r->start_ns;
    v[F_START_LOCAL].off = atomic_load_explicit(&l->tz_off, memory_order_relaxed);
    v[F_START_UTC].kind = V_TIME;
    v[F_START_UTC].i = r->start_ns;
    if (r->tls_version) {
        v_cstr(&v[F_TLS_VERSION], r->tls_version);
        v_cstr(&v[F_TLS_CIPHER], r->tls_cipher);
        v_cstr(&v[F_TLS_SUBJECT], r->tls_client_subject);
    }
    v_cstr(&v[F_ENTRY_POINT], r->entry_point);
}

/** Appends a field's value as JSON. */
static void b_json_val(struct al_buf *b, const struct al_val *v)
{
    switch (v->kind) {
    case V_STR:
        b_ch(b, '"');
        b_json_raw(b, v->s, v->n);
        if (v->q) {
            b_ch(b, '?');
            b_json_raw(b, v->q, v->qn);
        }
        b_ch(b, '"');
        break;
    case V_INT: b_i64(b, v->i); break;
    case V_RATIO: b_float(b, v->d); break;
    case V_TIME:
        b_ch(b, '"');
        b_rfc3339(b, v->i, v->off, 1);
        b_ch(b, '"');
        break;
    default: b_put(b, "null", 4); break;
    }
}

/** Appends `,"key":` (no comma before the first key). */
static void b_key(struct al_buf *b, int *first, const char *pre, size_t pn,
                  const char *key, size_t kn)
{
    if (!*first) b_ch(b, ',');
    *first = 0;
    b_ch(b, '"');
    b_put(b, pre, pn);
    b_put(b, key, kn);
    b_put(b, "\":", 2);
}

/** Go's canonical header-name byte at i of name (upper case at the start
 *  and after '-', lower case elsewhere). */
static char al_canon_at(const char *name, size_t i)
{
    char c = name[i];
    int up = i == 0 || name[i - 1] == '-';

    if (up && c >= 'a' && c <= 'z') return (char)(c - 32);
    if (!up && c >= 'A' && c <= 'Z') return (char)(c + 32);
    return c;
}

/** Byte order of two names in canonical form. */
static int al_canon_cmp(const struct msg_hdr *a, const struct msg_hdr *b)
{
    size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;

    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)al_canon_at(a->name, i);
        unsigned char y = (unsigned char)al_canon_at(b->name, i);
        if (x != y) return x < y ? -1 : 1;
    }
    return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

/**
 * Appends the kept / redacted headers of h[0..n) as JSON members
 * "<prefix><Canonical-Name>": values of repeated names joined with ",",
 * sorted by name like Go's encoder.
 */
static void b_json_hdrs(const struct al_log *l, struct al_buf *b, int *first,
                        const char *prefix, const struct msg_hdr *h, size_t n)
{
    uint16_t idx[AL_MAX_HDRS];
    unsigned char mode[AL_MAX_HDRS];
    size_t k = 0;

    if (n > AL_MAX_HDRS) n = AL_MAX_HDRS;
    for (size_t i = 0; i < n; i++) {
        int m, dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = al_name_eq(h[j].name, h[j].nlen, h[i].name, h[i].nlen);
        if (dup) continue;
        m = al_hdr_mode(l, h[i].name, h[i].nlen);
        if (m == AL_DROP) continue;
        /* insertion sort by canonical name */
        size_t p = k;
        while (p > 0 && al_canon_cmp(&h[idx[p - 1]], &h[i]) > 0) {
            idx[p] = idx[p - 1];
            mode[p] = mode[p - 1];
            p--;
        }
        idx[p] = (uint16_t)i;
        mode[p] = (unsigned char)m;
        k++;
    }
    for (size_t q = 0; q < k; q++) {
        const struct msg_hdr *x = &h[idx[q]];
        char canon[256];
        size_t cn = x->nlen < sizeof canon ? x->nlen : sizeof canon;

        for (size_t i = 0; i < cn; i++) canon[i] = al_canon_at(x->name, i);
        if (!*first) b_ch(b, ',');
        *first = 0;
        b_ch(b, '"');
        b_str(b, prefix);
        b_json_raw(b, canon, cn); /* names are tokens; escaped anyway */
        b_put(b, "\":", 2);
        if (mode[q] == AL_REDACT) {
            b_put(b, "\"REDACTED\"", 10);
            continue;
        }
        /* the values of every field with this name, joined with ',' */
        b_ch(b, '"');
        for (size_t j = idx[q], more = 0; j < n; j++) {
            if (!al_name_eq(h[j].name, h[j].nlen, x->name, x->nlen)) continue;
            if (more) b_ch(b, ',');
            more = 1;
            b_json_raw(b, h[j].value, h[j].vlen);
        }
        b_ch(b, '"');
    }
}

/** Formats r as one JSON line. */
static void al_fmt_json(const struct al_log *l, const struct al_record *r,
                        const struct al_val *v, struct al_buf *b)
{
    int first = 1;

    b_ch(b, '{');
    for (int f = 0; f < F_ENTRY_POINT; f++) {
        if (v[f].kind == V_NONE || l->mode[f] == AL_DROP) continue;
        b_key(b, &first, "", 0, al_field_name[f], strlen(al_field_name[f]));
        if (l->mode[f] == AL_REDACT) b_put(b, "\"REDACTED\"", 10);
        else b_json_val(b, &v[f]);
    }
    b_json_hdrs(l, b, &first, "downstream_", r->down_headers, r->n_down_headers);
    if (v[F_ENTRY_POINT].kind != V_NONE && l->mode[F_ENTRY_POINT] != AL_DROP) {
        b_key(b, &first, "", 0, "entryPointName", 14);
        if (l->mode[F_ENTRY_POINT] == AL_REDACT) b_put(b, "\"REDACTED\"", 10);
        else b_json_val(b, &v[F_ENTRY_POINT]);
    }
    b_key(b, &first, "", 0, "level", 5);
    b_put(b, "\"info\"", 6);
    b_key(b, &first, "", 0, "msg", 3);
    b_put(b, "\"\"", 2);
    b_json_hdrs(l, b, &first, "origin_", r->origin_headers, r->n_origin_headers);
    b_json_hdrs(l, b, &first, "request_", r->req_headers, r->n_req_headers);
    b_key(b, &first, "", 0, "time", 4);
    b_ch(b, '"');
    b_rfc3339(b, r->start_ns + r->duration_ns,
              atomic_load_explicit(&l->tz_off, memory_order_relaxed), 0);
    b_put(b, "\"}\n", 3);
}

/** Appends field f for the common format: its text (quoted with q), or
 *  the default when absent or dropped, "REDACTED" when redacted. */
static void b_clf_field(const struct al_log *l, struct al_buf *b,
                        const struct al_val *v, int f, int q)
{
    const char *dflt = q ? "\"-\"" : "-";

    if (l->mode[f] == AL_DROP || v[f].kind == V_NONE ||
        (v[f].kind == V_STR && v[f].n == 0)) {
        b_str(b, dflt);
        return;
    }
    if (q) b_ch(b, '"');
    if (l->mode[f] == AL_REDACT) b_put(b, "REDACTED", 8);
    else if (v[f].kind == V_STR) {
        b_clf(b, v[f].s, v[f].n);
        if (v[f].q) {
            b_ch(b, '?');
            b_clf(b, v[f].q, v[f].qn);
        }
    }
    else if (v[f].kind == V_INT) b_i64(b, v[f].i);
    if (q) b_ch(b, '"');
}

/** Appends the request header `name` quoted for the common format, under
 *  the header modes (dropped or missing: "-"). */
static void b_clf_hdr(const struct al_log *l, struct al_buf *b,
                      const struct al_record *r, const char *name)
{
    long i = al_hdr_find(r->req_headers, r->n_req_headers, name);
    int m, more = 0;

    if (i < 0 || (m = al_hdr_mode(l, name, strlen(name))) == AL_DROP) {
        b_put(b, "\"-\"", 3);
        return;
    }
    if (m == AL_REDACT) {
        b_put(b, "\"REDACTED\"", 10);
        return;
    }
    b_ch(b, '"');
    for (size_t j = (size_t)i; j < r->n_req_headers; j++) {
        const struct msg_hdr *h = &r->req_headers[j];
        if (!al_name_eq(h->name, h->nlen, name, strlen(name))) continue;
        if (more) b_ch(b, ',');
        more = 1;
        b_clf(b, h->value, h->vlen);
    }
    b_ch(b, '"');
}

/**
 * Formats r in Traefik's common format:
 * ClientHost - ClientUsername [StartUTC] "Method Path Protocol"
 * DownstreamStatus DownstreamContentSize "Referer" "User-Agent"
 * RequestCount "RouterName" "ServiceURL" <Duration in ms>ms
 */
static void al_fmt_common(const struct al_log *l, const struct al_record *r,
                          const struct al_val *v, struct al_buf *b)
{
    b_clf_field(l, b, v, F_CLIENT_HOST, 0);
    b_put(b, " - ", 3);
    b_clf_field(l, b, v, F_CLIENT_USERNAME, 0);
    b_put(b, " [", 2);
    if (l->mode[F_START_UTC] == AL_DROP) b_ch(b, '-');
    else if (l->mode[F_START_UTC] == AL_REDACT) b_put(b, "REDACTED", 8);
    else b_clf_time(b, r->start_ns);
    b_put(b, "] \"", 3);
    b_clf_field(l, b, v, F_REQ_METHOD, 0);
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_REQ_PATH, 0);
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_REQ_PROTOCOL, 0);
    b_put(b, "\" ", 2);
    b_clf_field(l, b, v, F_DOWN_STATUS, 0);
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_DOWN_SIZE, 0);
    b_ch(b, ' ');
    b_clf_hdr(l, b, r, "Referer");
    b_ch(b, ' ');
    b_clf_hdr(l, b, r, "User-Agent");
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_REQ_COUNT, 0);
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_ROUTER, 1);
    b_ch(b, ' ');
    b_clf_field(l, b, v, F_SERVICE_URL, 1);
    b_ch(b, ' ');
    b_i64(b, l->mode[F_DURATION] == AL_KEEP ? r->duration_ns / 1000000 : 0);
    b_put(b, "ms\n", 3);
}

/** Traefik's filters: no filter keeps everything, else ANY match keeps. */
static int al_keep(const struct al_log *l, const struct al_record *r)
{
    if (!l->has_filters) return 1;
    for (size_t i = 0; i < l->nranges; i++)
        if (r->status >= l->ranges[i].lo && r->status <= l->ranges[i].hi)
            return 1;
    if (l->filter_retry && r->retry_attempts > 0) return 1;
    if (l->min_duration_ns > 0 && r->duration_ns > l->min_duration_ns)
        return 1;
    return 0;
}

/** Counts one dropped line on ring g (producer only: no RMW needed). */
static void al_ring_drop(struct al_ring *g)
{
    atomic_store_explicit(
        &g->dropped, atomic_load_explicit(&g->dropped, memory_order_relaxed) + 1,
        memory_order_relaxed);
}

void al_write(struct al_log *l, unsigned worker, const struct al_record *r)
{
    struct al_val v[F_COUNT];
    struct al_text tx;
    struct al_ring *g;
    struct al_buf b;
    uint64_t head, tail;
    size_t off, first;

    if (!l || !r) return;
    if (worker >= l->nrings) {
        atomic_fetch_add_explicit(&l->wdropped, 1, memory_order_relaxed);
        return;
    }
    if (!al_keep(l, r)) return;
    g = &l->rings[worker];
    b.p = g->scratch;
    b.len = 0;
    b.cap = AL_LINE_MAX;
    b.over = 0;
    al_values(l, r, v, &tx);
    if (l->format == AL_FMT_JSON) al_fmt_json(l, r, v, &b);
    else al_fmt_common(l, r, v, &b);
    if (b.over) {
        al_ring_drop(g);
        return;
    }
    head = atomic_load_explicit(&g->head, memory_order_relaxed);
    tail = atomic_load_explicit(&g->tail, memory_order_acquire);
    if (AL_RING_BYTES - (head - tail) < b.len) {
        al_ring_drop(g);
        return;
    }
    off = (size_t)(head & (AL_RING_BYTES - 1));
    first = AL_RING_BYTES - off < b.len ? AL_RING_BYTES - off : b.len;
    memcpy(g->data + off, b.p, first);
    memcpy(g->data, b.p + first, b.len - first);
    atomic_store_explicit(&g->head, head + b.len, memory_order_release);
    atomic_store_explicit(
        &g->lines, atomic_load_explicit(&g->lines, memory_order_relaxed) + 1,
        memory_order_release);
}

/* ---------------------------------------------------------------- writer */

/** Monotonic clock in ms. */
static int64_t al_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Re-reads the local UTC offset (DST changes). */
static void al_tz_refresh(struct al_log *l)
{
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm))
        atomic_store_explicit(&l->tz_off, (int32_t)tm.tm_gmtoff,
                              memory_order_relaxed);
}

/** Creates the parent directories of path (like Traefik's MkdirAll). */
static void al_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof tmp) return;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return;
        *p = '/';
    }
}

/** Opens path for appending; -1 with errno. */
static int al_open(const char *path)
{
    al_mkdirs(path);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/** Writer: reopens the file (logrotate); keeps the old one on failure. */
static void al_do_reopen(struct al_log *l)
{
    int fd;

    if (!l->path) return;
    fd = al_open(l->path);
    if (fd < 0) {
        log_error(AL_WHO, "cannot reopen %s: %s (still writing to the old file)",
                  l->path, strerror(errno));
        return;
    }
    close(l->fd);
    l->fd = fd;
}

/** Writes iov[0..cnt) completely (the iovecs are consumed).  0, or -1
 *  with *at the first unwritten iovec (trimmed to what is left). */
static int al_writev_all(int fd, struct iovec *iov, int cnt, int *at)
{
    int i = 0;

    while (i < cnt) {
        ssize_t w = writev(fd, iov + i, cnt - i);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { /* a non-blocking stdout */
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, 100);
                continue;
            }
            *at = i;
            return -1;
        }
        while (i < cnt && (size_t)w >= iov[i].iov_len) {
            w -= (ssize_t)iov[i].iov_len;
            i++;
        }
        if (i < cnt) {
            iov[i].iov_base = (char *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    return 0;
}

/** Writes the batch l->iov[0..cnt) and gives the bytes of rings
 *  rs[0..nr) back to their producers; on a write error the lines not
 *  written are counted as dropped and the error is logged once. */
static void al_commit(struct al_log *l, int cnt, int nr, struct al_ring **rs)
{
    uint64_t lost = 0;
    int at = 0;

    if (!cnt) return;
    if (al_writev_all(l->fd, l->iov, cnt, &at) < 0) {
        int e = errno;
        for (int i = at; i < cnt; i++) {
            const char *p = l->iov[i].iov_base, *end = p + l->iov[i].iov_len;
            while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
                lost++;
                p++;
            }
        }
        atomic_fetch_add_explicit(&l->wdropped, lost, memory_order_relaxed);
        if (!l->werr_logged)
            log_error(AL_WHO, "write to %s failed: %s (%llu lines lost)",
                      l->path ? l->path : "standard output", strerror(e),
                      (unsigned long long)lost);
        l->werr_logged = 1;
    } else {
        l->werr_logged = 0;
    }
    for (int i = 0; i < nr; i++) {
        rs[i]->lines_done = rs[i]->snap_lines;
        atomic_store_explicit(&rs[i]->tail, rs[i]->snap_head,
                              memory_order_release);
    }
}

/** Writer: writes everything published in every ring. */
static void al_drain(struct al_log *l)
{
    int cnt = 0, nr = 0;

    for (unsigned i = 0; i < l->nrings; i++) {
        struct al_ring *g = &l->rings[i];
        uint64_t lines = atomic_load_explicit(&g->lines, memory_order_acquire);
        uint64_t h = atomic_load_explicit(&g->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&g->tail, memory_order_relaxed);
        size_t off, len, first;

        if (h == t) {
            g->lines_done = lines; /* read before head: all consumed */
            continue;
        }
        if (cnt + 2 > AL_IOV_MAX) {
            al_commit(l, cnt, nr, l->iov_ring);
            cnt = nr = 0;
        }
        /* lines was read before head: every counted line is in [t, h);
         * a line published in between is counted by the next batch */
        g->snap_head = h;
        g->snap_lines = lines;
        off = (size_t)(t & (AL_RING_BYTES - 1));
        len = (size_t)(h - t);
        first = AL_RING_BYTES - off < len ? AL_RING_BYTES - off : len;
        l->iov[cnt].iov_base = g->data + off;
        l->iov[cnt++].iov_len = first;
        if (len > first) {
            l->iov[cnt].iov_base = g->data;
            l->iov[cnt++].iov_len = len - first;
        }
        l->iov_ring[nr++] = g;
    }
    al_commit(l, cnt, nr, l->iov_ring);
}

/** Writer: lines waiting and the fullest ring's fill in bytes. */
static uint64_t al_pending(struct al_log *l, uint64_t *max_fill)
{
    uint64_t lines = 0;

    *max_fill = 0;
    for (unsigned i = 0; i < l->nrings; i++) {
        struct al_ring *g = &l->rings[i];
        uint64_t h = atomic_load_explicit(&g->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&g->tail, memory_order_relaxed);
        lines += atomic_load_explicit(&g->lines, memory_order_acquire) -
                 g->lines_done;
        if (h - t > *max_fill) *max_fill = h - t;
    }
    return lines;
}

/** The writer thread: batches (bufferingSize lines, AL_FLUSH_MS at most,
 *  or a ring half full), reopen, flush and stop requests. */
static void *al_writer(void *arg)
{
    struct al_log *l = arg;
    int64_t first_seen = 0, last_tz = al_now_ms();

    pthread_mutex_lock(&l->mu);
    for (;;) {
        int stop = l->stop;
        uint64_t freq = l->flush_req, fill, pending;
        int64_t now;
        int due;

        pthread_mutex_unlock(&l->mu);
        if (atomic_exchange(&l->reopen, 0)) al_do_reopen(l);
        now = al_now_ms();
        if (now - last_tz >= 1000) {
            al_tz_refresh(l);
            last_tz = now;
        }
        pending = al_pending(l, &fill);
        if (pending && !first_seen) first_seen = now;
        due = pending && (l->buffering <= 1 || pending >= (uint64_t)l->buffering ||
                          now - first_seen >= AL_FLUSH_MS ||
                          fill >= AL_RING_BYTES / 2);
        if (stop || freq != l->flush_done) due = 1;
        if (due) {
            al_drain(l);
            first_seen = 0;
        }
        pthread_mutex_lock(&l->mu);
        if (freq != l->flush_done) {
            l->flush_done = freq;
            pthread_cond_broadcast(&l->cv);
        }
        if (stop) break;
        if (!l->stop && l->flush_req == freq && !atomic_load(&l->reopen)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += AL_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---------------------------------------------------------------- config */

/** Reads a mode (keep / drop / redact) at node.key into *out (untouched
 *  when absent).  0, or -1 with the error reported. */
static int al_mode_get(const relais_cfg *node, const char *key, int *out)
{
    const char *s;
    int rc = conf_cfg_string(node, key, &s);

    if (rc == RELAIS_CFG_MISSING) return 0;
    if (rc != RELAIS_CFG_OK) return -1;
    if (!strcasecmp(s, "keep")) *out = AL_KEEP;
    else if (!strcasecmp(s, "drop")) *out = AL_DROP;
    else if (!strcasecmp(s, "redact")) *out = AL_REDACT;
    else {
        conf_cfg_error(node, key, "expected keep, drop or redact");
        return -1;
    }
    return 0;
}

/** Parses a decimal status code at *s (advanced); -1 when not one. */
static int al_code(const char **s)
{
    int v = 0, n = 0;

    while (**s == ' ') (*s)++;
    while (**s >= '0' && **s <= '9' && n < 4) v = v * 10 + (*(*s)++ - '0'), n++;
    while (**s == ' ') (*s)++;
    return n == 0 || n > 3 || v < 100 ? -1 : v;
}

/** Reads one statusCodes entry ("200", "300-302", or several joined with
 *  ','), appending ranges.  0, or -1 with the error reported. */
static int al_codes(struct al_log *l, const relais_cfg *item)
{
    const char *s;

    if (conf_cfg_string(item, NULL, &s) != RELAIS_CFG_OK) {
        if (conf_cfg_type(item) == RELAIS_CFG_NULL)
            conf_cfg_error(item, NULL, "expected a status code or a range such as \"300-302\"");
        return -1;
    }
    for (;;) {
        int lo = al_code(&s), hi = lo;
        if (lo >= 0 && *s == '-') {
            s++;
            hi = al_code(&s);
        }
        if (lo < 0 || hi < 0 || hi < lo || (*s && *s != ',')) {
            conf_cfg_error(item, NULL,
                           "expected a status code or a range such as \"300-302\"");
            return -1;
        }
        if (l->nranges == AL_MAX_RANGES) {
            conf_cfg_error(item, NULL, "at most %d status code ranges", AL_MAX_RANGES);
            return -1;
        }
        l->ranges[l->nranges].lo = lo;
        l->ranges[l->nranges++].hi = hi;
        if (!*s) return 0;
        s++;
    }
}

/** Reads accessLog.filters.  0, or -1 with errors reported. */
static int al_cfg_filters(struct al_log *l, const relais_cfg *f)
{
    const relais_cfg *sc;
    int bad = 0, t;
    int64_t ms;

    if (!f || conf_cfg_type(f) == RELAIS_CFG_NULL) return 0;
    if (conf_cfg_type(f) != RELAIS_CFG_MAP) {
        conf_cfg_error(f, NULL, "expected a map");
        return -1;
    }
    sc = conf_cfg_get(f, "statusCodes");
    t = conf_cfg_type(sc);
    if (t == RELAIS_CFG_LIST) {
        for (size_t i = 0; i < conf_cfg_len(sc); i++)
            if (al_codes(l, conf_cfg_at(sc, i, NULL)) < 0) bad = 1;
    } else if (t == RELAIS_CFG_STRING || t == RELAIS_CFG_INT) {
        if (al_codes(l, sc) < 0) bad = 1; /* "200,300-302" (CLI form) */
    } else if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        conf_cfg_error(f, "statusCodes", "expected a list of status codes or ranges");
        bad = 1;
    }
    if (conf_cfg_bool(f, "retryAttempts", &l->filter_retry) < 0) bad = 1;
    switch (conf_cfg_duration(f, "minDuration", &ms)) {
    case RELAIS_CFG_OK: l->min_duration_ns = ms * 1000000; break;
    case RELAIS_CFG_INVALID: bad = 1; break;
    default: break;
    }
    l->has_filters = l->nranges > 0 || l->filter_retry || l->min_duration_ns > 0;
    return bad ? -1 : 0;
}

/** Reads accessLog.fields.  0, or -1 with errors reported. */
static int al_cfg_fields(struct al_log *l, const relais_cfg *fl)
{
    const relais_cfg *names, *hd;
    int bad = 0, dflt = AL_KEEP;

    if (!fl || conf_cfg_type(fl) == RELAIS_CFG_NULL) return 0;
    if (conf_cfg_type(fl) != RELAIS_CFG_MAP) {
        conf_cfg_error(fl, NULL, "expected a map");
        return -1;
    }
    if (al_mode_get(fl, "defaultMode", &dflt) < 0) bad = 1;
    for (int f = 0; f < F_COUNT; f++) l->mode[f] = (unsigned char)dflt;
    names = conf_cfg_get(fl, "names");
    if (names && conf_cfg_type(names) == RELAIS_CFG_MAP) {
        for (size_t i = 0; i < conf_cfg_len(names); i++) {
            const char *k;
            int m = dflt, f;
            conf_cfg_at(names, i, &k);
            if (!k) continue;
            if (al_mode_get(names, k, &m) < 0) {
                bad = 1;
                continue;
            }
            for (f = 0; f < F_COUNT; f++)
                if (!strcasecmp(k, al_field_name[f])) break;
            if (f == F_COUNT)
                log_warn(AL_WHO, "%s: unknown field %s, ignored",
                         conf_node_path(names), k);
            else
                l->mode[f] = (unsigned char)m;
        }
    } else if (names && conf_cfg_type(names) != RELAIS_CFG_NULL) {
        conf_cfg_error(fl, "names", "expected a map of field names to keep, drop or redact");
        bad = 1;
    }
    hd = conf_cfg_get(fl, "headers");
    if (!hd || conf_cfg_type(hd) == RELAIS_CFG_NULL) return bad ? -1 : 0;
    if (conf_cfg_type(hd) != RELAIS_CFG_MAP) {
        conf_cfg_error(fl, "headers", "expected a map");
        return -1;
    }
    if (al_mode_get(hd, "defaultMode", &l->hdr_default) < 0) bad = 1;
    names = conf_cfg_get(hd, "names");
    if (names && conf_cfg_type(names) == RELAIS_CFG_MAP) {
        for (size_t i = 0; i < conf_cfg_len(names); i++) {
            const char *k;
            int m = l->hdr_default;
            conf_cfg_at(names, i, &k);
            if (!k) continue;
            if (al_mode_get(names, k, &m) < 0) {
                bad = 1;
                continue;
            }
            if (l->nhdrs == AL_MAX_HDR_NAMES) {
                conf_cfg_error(hd, "names", "at most %d header names", AL_MAX_HDR_NAMES);
                bad = 1;
                break;
            }
            l->hdrs[l->nhdrs].name = strdup(k);
            if (!l->hdrs[l->nhdrs].name) {
                bad = 1;
                break;
            }
            l->hdrs[l->nhdrs].len = strlen(k);
            l->hdrs[l->nhdrs++].mode = m;
        }
    } else if (names && conf_cfg_type(names) != RELAIS_CFG_NULL) {
        conf_cfg_error(hd, "names", "expected a map of header names to keep, drop or redact");
        bad = 1;
    }
    return bad ? -1 : 0;
}

/** Reads the accessLog map into l.  0, or -1 with errors reported. */
static int al_cfg(struct al_log *l, const relais_cfg *node)
{
    const char *s;
    int bad = 0, rc;
    int64_t n;

    l->hdr_default = AL_DROP; /* Traefik's default for headers */
    if (!node || conf_cfg_type(node) == RELAIS_CFG_NULL) return 0;
    if (conf_cfg_type(node) != RELAIS_CFG_MAP) {
        conf_cfg_error(node, NULL, "expected a map");
        return -1;
    }
    rc = conf_cfg_string(node, "filePath", &s);
    if (rc == RELAIS_CFG_OK && *s) {
        l->path = strdup(s);
        if (!l->path) return -1;
    } else if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    }
    rc = conf_cfg_string(node, "format", &s);
    if (rc == RELAIS_CFG_OK) {
        if (!strcmp(s, "json")) l->format = AL_FMT_JSON;
        else if (!strcmp(s, "common") || !*s) l->format = AL_FMT_COMMON;
        else {
            conf_cfg_error(node, "format", "expected common or json");
            bad = 1;
        }
    } else if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    }
    switch (conf_cfg_int(node, "bufferingSize", &n)) {
    case RELAIS_CFG_OK:
        if (n < 0 || n > 1000000) {
            conf_cfg_error(node, "bufferingSize", "expected a number of lines from 0 to 1000000");
            bad = 1;
        } else {
            l->buffering = n;
        }
        break;
    case RELAIS_CFG_INVALID: bad = 1; break;
    default: break;
    }
    if (conf_cfg_bool(node, "addInternals", &l->add_internals) < 0) bad = 1;
    if (al_cfg_filters(l, conf_cfg_get(node, "filters")) < 0) bad = 1;
    if (al_cfg_fields(l, conf_cfg_get(node, "fields")) < 0) bad = 1;
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- public */

/** Frees l's memory (the thread is not running, the fd closed). */
static void al_release(struct al_log *l)
{
    if (l->rings) {
        for (unsigned i = 0; i < l->nrings; i++) {
            free(l->rings[i].scratch);
            free(l->rings[i].data);
        }
        free(l->rings);
    }
    for (size_t i = 0; i < l->nhdrs; i++) free(l->hdrs[i].name);
    free(l->path);
    free(l);
}

int al_new(const relais_cfg *node, unsigned nworkers, struct al_log **out)
{
    struct al_log *l;
    sigset_t all, old;
    int e;

    *out = NULL;
    if (!nworkers) nworkers = 1;
    l = calloc(1, sizeof(*l));
    if (!l) return -1;
    l->fd = -1;
    if (al_cfg(l, node) < 0) {
        al_release(l);
        return -1;
    }
    l->nrings = nworkers;
    if (posix_memalign((void **)&l->rings, 64, sizeof(*l->rings) * nworkers)) {
        l->rings = NULL;
        al_release(l);
        return -1;
    }
    memset(l->rings, 0, sizeof(*l->rings) * nworkers);
    for (unsigned i = 0; i < nworkers; i++) {
        l->rings[i].scratch = malloc(AL_LINE_MAX);
        l->rings[i].data = malloc(AL_RING_BYTES);
        if (!l->rings[i].scratch || !l->rings[i].data) {
            al_release(l);
            return -1;
        }
    }
    if (l->path) {
        l->fd = al_open(l->path);
        if (l->fd < 0) {
            conf_cfg_error(node, "filePath", "cannot open %s: %s", l->path,
                           strerror(errno));
            al_release(l);
            return -1;
        }
    } else {
        l->fd = STDOUT_FILENO;
    }
    al_tz_refresh(l);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    /* the writer takes no signal: they stay with the control thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&l->thread, NULL, al_writer, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        log_error(AL_WHO, "cannot start the writer thread: %s", strerror(e));
        if (l->path) close(l->fd);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        al_release(l);
        return -1;
    }
    l->started = 1;
    atomic_store(&l->refs, 1);
    *out = l;
    return 0;
}

struct al_log *al_ref(struct al_log *l)
{
    if (l) atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

void al_reopen(struct al_log *l)
{
    if (!l || !l->path) return;
    atomic_store(&l->reopen, 1);
    pthread_mutex_lock(&l->mu);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void al_flush(struct al_log *l)
{
    uint64_t me;

    if (!l) return;
    pthread_mutex_lock(&l->mu);
    me = ++l->flush_req;
    pthread_cond_broadcast(&l->cv);
    while (l->flush_done < me) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void al_free(struct al_log *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) > 1) return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    if (l->path && l->fd >= 0) close(l->fd);
    al_release(l);
}

uint64_t al_dropped(const struct al_log *l)
{
    uint64_t n;

    if (!l) return 0;
    n = atomic_load_explicit(&((struct al_log *)l)->wdropped, memory_order_relaxed);
    for (unsigned i = 0; i < l->nrings; i++)
        n += atomic_load_explicit(&((struct al_log *)l)->rings[i].dropped,
                                  memory_order_relaxed);
    return n;
}

int al_add_internals(const struct al_log *l) { return l ? l->add_internals : 0; }
