/*
 * test_http1_vectors — runs relais' HTTP/1.1 parser over the llhttp
 * request vectors (fenced `http` blocks followed by `log` blocks in the
 * .md files of vectors/llhttp, see vectors/README.md).
 *
 * Usage: test_http1_vectors [DIR]; DIR defaults to $RELAIS_VECTORS, then
 * $RELAIS_SRCDIR/../shared/vectors/llhttp, then /work/shared/vectors/llhttp.
 *
 * Each case is replayed as a proxy would see the bytes on one client
 * connection: head (h1_parse_request), then the body by its framing
 * (Content-Length, or h1_chunk_parse), then the next pipelined request
 * while the connection is persistent.  A CONNECT or an accepted Upgrade
 * ends the HTTP part (the rest is tunnelled); after a non-persistent
 * request any further byte is refused (relais closes the connection).
 *
 * A case whose log holds "error code=" (other than the pause codes 21-23)
 * is rejected by llhttp; it is `ok` when relais refuses it too: by a head
 * error, a chunked-framing error, or by closing before data that follows a
 * non-persistent request.  Cases llhttp accepts are always `ok`; those
 * relais refuses are listed as "#" diagnostics and counted.  Skipped:
 * lenient-* files, metas whose type is not "request"/"request-finish"
 * (lenient flags), and "skipBody" metas (a callback-driven mode).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "tap.h"

#define MAX_FIELDS 100 /* limits the brief asks for */
#define MAX_BLOCK (256 * 1024) /* cap on one decoded case */
#define MAX_FILES 64           /* cap on vector files */

/* How one replay ended. */
enum outcome {
    OUT_DONE,        /* every byte consumed as complete requests */
    OUT_MORE_HEAD,   /* the last head is incomplete (would wait) */
    OUT_MORE_BODY,   /* the last body is incomplete (would stream/wait) */
    OUT_TUNNEL,      /* CONNECT/Upgrade: the rest is tunnelled */
    OUT_HEAD_ERR,    /* h1_parse_request refused a head */
    OUT_BODY_ERR,    /* h1_chunk_parse refused the chunked framing */
    OUT_AFTER_CLOSE  /* bytes after a non-persistent request: closed */
};

/** Result of replaying one case. */
struct replay {
    enum outcome out; /* how it ended */
    int status;       /* negated status on OUT_HEAD_ERR */
    int msg;          /* 1-based index of the request it ended in */
    int hosts_added;  /* requests retried with a Host field added */
};

/* Totals printed at the end. */
static int n_cases, n_skipped, n_rejected, n_rej_head, n_rej_body,
    n_rej_close, n_rej_missed, n_accepted, n_acc_refused;
/* the same with a Host added to requests refused for lacking one */
static int n_rej2_head, n_rej2_body, n_rej2_close, n_acc2_refused;

/** Reads a whole file; returns a malloc'd NUL-terminated buffer or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long sz;

    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)sz + 1))) {
        if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
            free(buf);
            buf = NULL;
        } else {
            buf[sz] = '\0';
            *len = (size_t)sz;
        }
    }
    fclose(f);
    return buf;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/**
 * Turns the text of an `http` block (lines joined by LF, no final LF)
 * into the bytes llhttp's test runner feeds: "\"+newline joins lines,
 * newlines become CRLF, then \r \n \t \f \xHH.. \ooo escapes.  out must
 * hold 2 * n bytes.  Returns the decoded length.
 */
static size_t decode(const char *in, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char ch = in[i];

        if (ch == '\\' && i + 1 < n && in[i + 1] == '\n') {
            i++; /* escaped newline: joins the lines */
            continue;
        }
        if (ch == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            continue;
        }
        if (ch == '\\' && i + 1 < n) {
            char e = in[i + 1];

            if (e == 'r' || e == 'n' || e == 't' || e == 'f') {
                out[o++] = e == 'r' ? '\r' : e == 'n' ? '\n' : e == 't' ? '\t'
                                                                        : '\f';
                i++;
                continue;
            }
            if (e == 'x' && i + 2 < n && hexval((unsigned char)in[i + 2]) >= 0) {
                unsigned v = 0;

                i += 2;
                while (i < n && hexval((unsigned char)in[i]) >= 0)
                    v = (v << 4) | (unsigned)hexval((unsigned char)in[i++]);
                out[o++] = (char)(v & 0xff);
                i--;
                continue;
            }
            if (e >= '0' && e <= '7') {
                unsigned v = 0;
                int k;

                i++;
                for (k = 0; k < 3 && i < n && in[i] >= '0' && in[i] <= '7'; k++)
                    v = v * 8 + (unsigned)(in[i++] - '0');
                out[o++] = (char)(v & 0xff);
                i--;
                continue;
            }
        }
        out[o++] = ch;
    }
    return o;
}

/**
 * Inserts "Host: x" CRLF after the request line of the request starting at
 * (*buf)[pos] (after any empty lines).  *buf is malloc'd and replaced.
 * Returns 0, or -1 if there is no complete request line or no memory.
 */
static int add_host(char **buf, size_t *n, size_t pos)
{
    static const char host[] = "Host: x\r\n";
    size_t p = pos, hl = sizeof host - 1;
    char *nb;

    while (p + 1 < *n && (*buf)[p] == '\r' && (*buf)[p + 1] == '\n') p += 2;
    while (p + 1 < *n && !((*buf)[p] == '\r' && (*buf)[p + 1] == '\n')) p++;
    if (p + 1 >= *n) return -1;
    p += 2;
    nb = malloc(*n + hl);
    if (!nb) return -1;
    memcpy(nb, *buf, p);
    memcpy(nb + p, host, hl);
    memcpy(nb + p + hl, *buf + p, *n - p);
    free(*buf);
    *buf = nb;
    *n += hl;
    return 0;
}

/**
 * Replays the bytes of one case as one client connection.  *buf is
 * malloc'd; with add_hosts, a request refused with 400 is retried with a
 * Host field added after its request line, and the copy is kept when that
 * is no longer 400 (adding a field can only cure a missing Host, so the
 * 400 was "HTTP/1.1 without Host"): the rest of the case is exercised.
 */
static void replay(char **buf, size_t *np, int add_hosts, struct replay *rp)
{
    static struct h1_field fields[MAX_FIELDS];
    const struct h1_limits lim = {8192, MAX_FIELDS, 4096};
    struct h1_head head;
    size_t pos = 0, n = *np;
    int r;

    memset(rp, 0, sizeof *rp);
    for (;;) {
        int persistent;
        const char *b = *buf;

        if (pos == n) {
            rp->out = OUT_DONE;
            return;
        }
        rp->msg++;
        r = h1_parse_request(b + pos, n - pos, &head, fields, &lim);
        if (r == -400 && add_hosts) {
            char *copy = malloc(n);
            size_t cn = n;

            if (copy) {
                memcpy(copy, b, n);
                if (add_host(&copy, &cn, pos) == 0 &&
                    h1_parse_request(copy + pos, cn - pos, &head, fields,
                                     &lim) != -400) {
                    free(*buf);
                    *buf = copy;
                    *np = n = cn;
                    b = copy;
                    copy = NULL;
                    rp->hosts_added++;
                    r = h1_parse_request(b + pos, n - pos, &head, fields, &lim);
                }
                free(copy);
            }
        }
        if (r < 0) {
            rp->out = OUT_HEAD_ERR;
            rp->status = r;
            return;
        }
        if (r == 0) {
            rp->out = OUT_MORE_HEAD;
            return;
        }
        if (h1_span_eq(b + pos, head.method, "CONNECT")) {
            rp->out = OUT_TUNNEL;
            return;
        }
        pos += (size_t)r;
        if (head.flags & H1_F_CHUNKED) {
            struct h1_chunk c;
            size_t off, len;
            ssize_t k;

            h1_chunk_init(&c, 4096, 8192);
            while (!h1_chunk_done(&c)) {
                k = h1_chunk_parse(&c, b + pos, n - pos, &off, &len);
                if (k < 0) {
                    rp->out = OUT_BODY_ERR;
                    return;
                }
                if (k == 0) {
                    rp->out = OUT_MORE_BODY;
                    return;
                }
                pos += (size_t)k;
            }
        } else if (head.content_length > 0) {
            if ((uint64_t)(n - pos) < (uint64_t)head.content_length) {
                rp->out = OUT_MORE_BODY;
                return;
            }
            pos += (size_t)head.content_length;
        }
        if ((head.flags & H1_F_UPGRADE) && (head.flags & H1_F_CONN_UPGRADE)) {
            rp->out = OUT_TUNNEL;
            return;
        }
        persistent = !(head.flags & H1_F_CONN_CLOSE) &&
                     (head.version == 11 ||
                      (head.flags & H1_F_CONN_KEEPALIVE));
        if (!persistent) {
            rp->out = pos < n ? OUT_AFTER_CLOSE : OUT_DONE;
            return;
        }
    }
}

/** 1 if the replay ended with relais refusing the input. */
static int refused(const struct replay *rp)
{
    return rp->out == OUT_HEAD_ERR || rp->out == OUT_BODY_ERR ||
           rp->out == OUT_AFTER_CLOSE;
}

/** Short words for an outcome, written to s[0..cap); returns s. */
static const char *outcome_name(const struct replay *rp, char *s,
                                size_t cap)
{
    switch (rp->out) {
    case OUT_DONE:
        snprintf(s, cap, "accepted");
        break;
    case OUT_MORE_HEAD:
        snprintf(s, cap, "accepted, head incomplete");
        break;
    case OUT_MORE_BODY:
        snprintf(s, cap, "accepted, body incomplete");
        break;
    case OUT_TUNNEL:
        snprintf(s, cap, "accepted, tunnel");
        break;
    case OUT_HEAD_ERR:
        snprintf(s, cap, "head error %d in request %d", -rp->status, rp->msg);
        break;
    case OUT_BODY_ERR:
        snprintf(s, cap, "chunked framing error in request %d", rp->msg);
        break;
    case OUT_AFTER_CLOSE:
        snprintf(s, cap, "data after non-persistent request %d closed",
                 rp->msg);
        break;
    }
    return s;
}

/** The value of "type" in a meta comment, copied to out ("" if none). */
static void meta_type(const char *meta, size_t mlen, char *out, size_t cap)
{
    const char *t = NULL, *e;
    size_t i;

    out[0] = '\0';
    for (i = 0; i + 6 <= mlen; i++)
        if (memcmp(meta + i, "\"type\"", 6) == 0) {
            t = meta + i + 6;
            break;
        }
    if (!t) return;
    while (t < meta + mlen && *t != '"') t++;
    if (t >= meta + mlen) return;
    t++;
    for (e = t; e < meta + mlen && *e != '"'; e++)
        ;
    if ((size_t)(e - t) >= cap) return;
    memcpy(out, t, (size_t)(e - t));
    out[e - t] = '\0';
}

/** 1 if [s, s+n) contains the NUL-terminated needle. */
static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle), i;

    for (i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return 1;
    return 0;
}

/** Runs every case of one markdown file. */
static void run_file(const char *dir, const char *name)
{
    char path[4096], heading[256] = "", type[64] = "";
    char *text, *line, *next, *dec = NULL;
    const char *blk = NULL, *blk_end = NULL;
    size_t len = 0;
    int have_meta = 0, skip_body = 0, in = 0; /* in: 1 http, 2 log, 3 other */
    const char *log = NULL;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        ok(0, "%s: path too long", name);
        return;
    }
    text = slurp(path, &len);
    if (!text) {
        ok(0, "%s: cannot read (%s)", path, strerror(errno));
        return;
    }
    for (line = text; line && *line; line = next) {
        size_t ll;

        next = strchr(line, '\n');
        ll = next ? (size_t)(next - line) : strlen(line);
        if (next) next++;
        if (in) {
            if (ll >= 3 && memcmp(line, "```", 3) == 0) {
                if (in == 1) {
                    blk_end = line;
                    in = 0;
                } else if (in == 2 && blk) {
                    /* log complete: judge the case */
                    char typebuf[64];
                    size_t rawn = blk_end > blk ? (size_t)(blk_end - blk) - 1
                                                : 0;
                    size_t logn = (size_t)(line - log);
                    int rejected = 0, code = -1;
                    const char *e;
                    struct replay rp;
                    size_t dn;

                    memcpy(typebuf, type, sizeof typebuf);
                    e = NULL;
                    for (size_t i = 0; i + 11 <= logn; i++)
                        if (memcmp(log + i, "error code=", 11) == 0) {
                            e = log + i + 11;
                            break;
                        }
                    if (e) code = atoi(e);
                    /* 21-23: HPE_PAUSED*, llhttp hands over (upgrade) */
                    rejected = e && (code < 21 || code > 23);
                    n_cases++;
                    if (!have_meta ||
                        (strcmp(typebuf, "request") != 0 &&
                         strcmp(typebuf, "request-finish") != 0) ||
                        skip_body) {
                        n_skipped++;
                        /* out of scope by the vectors' README: noted,
                         * not counted as a test */
                        printf("# not applicable: %s: %s (meta type \"%s\"%s)\n", name,
                               heading, typebuf, skip_body ? " skipBody" : "");
                    } else {
                        char o1[96], o2[96], *dec2;
                        struct replay rp2;
                        size_t dn2;

                        dec = malloc(2 * rawn + 1);
                        dec2 = malloc(2 * rawn + 1);
                        if (!dec || !dec2) {
                            free(dec);
                            free(dec2);
                            dec = NULL;
                            ok(0, "out of memory");
                            break;
                        }
                        dn = decode(blk, rawn, dec);
                        memcpy(dec2, dec, dn);
                        dn2 = dn;
                        replay(&dec, &dn, 0, &rp);
                        replay(&dec2, &dn2, 1, &rp2);
                        free(dec);
                        free(dec2);
                        dec = NULL;
                        outcome_name(&rp, o1, sizeof o1);
                        outcome_name(&rp2, o2, sizeof o2);
                        if (!rp2.hosts_added) snprintf(o2, sizeof o2, "same");
                        if (rejected) {
                            n_rejected++;
                            if (rp.out == OUT_HEAD_ERR) n_rej_head++;
                            if (rp.out == OUT_BODY_ERR) n_rej_body++;
                            if (rp.out == OUT_AFTER_CLOSE) n_rej_close++;
                            if (rp2.out == OUT_HEAD_ERR) n_rej2_head++;
                            if (rp2.out == OUT_BODY_ERR) n_rej2_body++;
                            if (rp2.out == OUT_AFTER_CLOSE) n_rej2_close++;
                            if (!refused(&rp) || !refused(&rp2))
                                n_rej_missed++;
                            ok(refused(&rp) && refused(&rp2),
                               "%s: %s - llhttp rejects (code %d), relais: "
                               "%s; with Host added: %s",
                               name, heading, code, o1, o2);
                        } else {
                            n_accepted++;
                            if (refused(&rp)) n_acc_refused++;
                            if (refused(&rp2)) n_acc2_refused++;
                            ok(1, "%s: %s - llhttp accepts%s, relais: %s; "
                               "with Host added: %s",
                               name, heading, e ? " (pauses)" : "", o1, o2);
                            if (refused(&rp))
                                printf("# accepted by llhttp, refused by "
                                       "relais: %s: %s: %s%s%s\n",
                                       name, heading,
                                       rp2.hosts_added
                                           ? "HTTP/1.1 without Host"
                                           : o1,
                                       refused(&rp2) && rp2.hosts_added
                                           ? "; with Host added: "
                                           : "",
                                       refused(&rp2) && rp2.hosts_added
                                           ? o2
                                           : "");
                        }
                    }
                    blk = NULL;
                    have_meta = 0;
                    skip_body = 0;
                    in = 0;
                } else {
                    in = 0;
                }
            }
            continue;
        }
        if (ll >= 7 && memcmp(line, "```http", 7) == 0) {
            blk = next;
            blk_end = NULL;
            in = 1;
        } else if (ll >= 6 && memcmp(line, "```log", 6) == 0) {
            log = next;
            in = 2;
        } else if (ll >= 3 && memcmp(line, "```", 3) == 0) {
            in = 3;
        } else if (ll > 0 && line[0] == '#') {
            const char *h = line;
            size_t hl = ll;

            while (hl && (*h == '#' || *h == ' ')) h++, hl--;
            if (hl >= sizeof heading) hl = sizeof heading - 1;
            memcpy(heading, h, hl);
            heading[hl] = '\0';
            /* '#' would start a TAP directive */
            for (char *q = heading; *q; q++)
                if (*q == '#') *q = '+';
        } else if (contains(line, ll, "<!-- meta=")) {
            meta_type(line, ll, type, sizeof type);
            skip_body = contains(line, ll, "\"skipBody\": true") ||
                        contains(line, ll, "\"skipBody\":true");
            have_meta = 1;
        }
    }
    free(text);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    static char fallback[4096];
    const char *dir = argc > 1 ? argv[1] : getenv("RELAIS_VECTORS");
    char *names[MAX_FILES];
    int nn = 0, i;
    struct dirent *de;
    DIR *d;

    if (!dir || !*dir) {
        const char *src = getenv("RELAIS_SRCDIR");

        if (src && *src) {
            snprintf(fallback, sizeof fallback, "%s/../shared/vectors/llhttp",
                     src);
            dir = fallback;
        } else {
            dir = "/work/shared/vectors/llhttp";
        }
    }
    d = opendir(dir);
    if (!d) {
        ok(0, "open vectors directory %s: %s", dir, strerror(errno));
        return tap_done();
    }
    while ((de = readdir(d)) && nn < MAX_FILES) {
        size_t l = strlen(de->d_name);

        if (l < 4 || strcmp(de->d_name + l - 3, ".md") != 0) continue;
        if (strncmp(de->d_name, "lenient", 7) == 0) continue;
        names[nn] = strdup(de->d_name);
        if (names[nn]) nn++;
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmpstr);
    printf("# vectors: %s (%d files)\n", dir, nn);
    for (i = 0; i < nn; i++) {
        run_file(dir, names[i]);
        free(names[i]);
    }
    ok(n_cases > 0, "found vector cases (%d)", n_cases);
    printf("# cases %d, skipped %d, run %d\n", n_cases, n_skipped,
           n_cases - n_skipped);
    printf("# rejected by llhttp: %d; refused by relais: %d "
           "(head %d, chunked body %d, data after close %d); missed: %d\n",
           n_rejected, n_rejected - n_rej_missed, n_rej_head, n_rej_body,
           n_rej_close, n_rej_missed);
    printf("# with Host added: rejected refused by head %d, chunked body %d, "
           "data after close %d\n",
           n_rej2_head, n_rej2_body, n_rej2_close);
    printf("# accepted by llhttp: %d; refused by relais: %d "
           "(with Host added: %d)\n",
           n_accepted, n_acc_refused, n_acc2_refused);
    return tap_done();
}
