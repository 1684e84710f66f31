/*
 * acme_store — see acme_store.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "acme_store.h"

static const char as_b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *as_b64_encode(const unsigned char *data, size_t len)
{
    size_t olen = (len + 2) / 3 * 4, o = 0;
    char *out;

    if (len > (SIZE_MAX / 4) * 3 - 3) return NULL;
    out = malloc(olen + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) v |= data[i + 2];
        out[o++] = as_b64chars[(v >> 18) & 63];
        out[o++] = as_b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? as_b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? as_b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Value of one base64 character (standard or URL alphabet), or -1. */
static int as_b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

unsigned char *as_b64_decode(const char *text, size_t *len)
{
    size_t tl = strlen(text), o = 0;
    unsigned char *out = malloc(tl / 4 * 3 + 4);
    uint32_t acc = 0;
    int bits = 0, pad = 0;

    if (!out) return NULL;
    for (const char *p = text; *p; p++) {
        int v;
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        v = as_b64val((unsigned char)*p);
        if (v < 0 || pad) goto fail; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (bits >= 6 || pad > 2) goto fail; /* a lone character */
    out[o] = '\0';
    *len = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* Frees the fields of one certificate. */
static void as_cert_clear(struct as_cert *c)
{
    free(c->main);
    for (size_t i = 0; i < c->nsans; i++) free(c->sans[i]);
    free(c->sans);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->store);
    memset(c, 0, sizeof(*c));
}

void as_account_clear(struct as_account *a)
{
    free(a->email);
    free(a->uri);
    free(a->body_json);
    if (a->key_der) {
        memset(a->key_der, 0, a->key_der_len);
        free(a->key_der);
    }
    free(a->key_type);
    memset(a, 0, sizeof(*a));
}

void as_data_clear(struct as_data *d)
{
    if (!d) return;
    as_account_clear(&d->acct);
    for (size_t i = 0; i < d->ncerts; i++) as_cert_clear(&d->certs[i]);
    free(d->certs);
    memset(d, 0, sizeof(*d));
}

/* strdup of a JSON string member, NULL when absent or not a string. */
static char *as_jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

/* Decodes a base64 JSON string member into *out (NUL-terminated).  0 / -1. */
static int as_jb64(json_t *obj, const char *key, unsigned char **out, size_t *len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t l = 0;

    if (!s) return -1;
    *out = as_b64_decode(s, &l);
    if (!*out) return -1;
    if (len) *len = l;
    return 0;
}

/* Fills d->acct from the "Account" object.  0, or -1 (bad layout). */
static int as_load_account(json_t *acc, struct as_data *d)
{
    json_t *reg = json_object_get(acc, "Registration");
    json_t *body = json_object_get(reg, "body");

    if (!json_is_object(acc)) return -1;
    d->acct.email = as_jstr(acc, "Email");
    d->acct.key_type = as_jstr(acc, "KeyType");
    d->acct.uri = as_jstr(reg, "uri");
    if (json_is_object(body))
        d->acct.body_json = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (as_jb64(acc, "PrivateKey", &d->acct.key_der, &d->acct.key_der_len) < 0) return -1;
    d->has_account = 1;
    return 0;
}

/* Appends one certificate entry.  0 added, 1 skipped (bad entry), -1 out
 * of memory or cap. */
static int as_load_cert(json_t *e, struct as_data *d)
{
    json_t *dom = json_object_get(e, "domain"), *sans = json_object_get(dom, "sans");
    struct as_cert c;
    size_t l;

    memset(&c, 0, sizeof(c));
    if (!json_is_object(e) || !json_is_object(dom)) return 1;
    if (d->ncerts >= AS_MAX_CERTS) return -1;
    c.main = as_jstr(dom, "main");
    if (!c.main || !*c.main) goto skip;
    if (json_is_array(sans) && json_array_size(sans) > 0) {
        size_t n = json_array_size(sans);
        if (n > AS_MAX_SANS) goto skip;
        c.sans = calloc(n, sizeof(char *));
        if (!c.sans) goto skip;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(sans, i));
            if (!s || !(c.sans[c.nsans] = strdup(s))) goto skip;
            c.nsans++;
        }
    }
    if (as_jb64(e, "certificate", (unsigned char **)&c.cert_pem, &l) < 0) goto skip;
    if (as_jb64(e, "key", (unsigned char **)&c.key_pem, &l) < 0) goto skip;
    c.store = as_jstr(e, "Store");
    if (!c.store) c.store = strdup("default");
    if (!c.store) goto skip;
    if (d->ncerts == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        struct as_cert *nc = realloc(d->certs, ncap * sizeof(*nc));
        if (!nc) goto skip;
        d->certs = nc;
        d->cap = ncap;
    }
    d->certs[d->ncerts++] = c;
    return 0;
skip:
    as_cert_clear(&c);
    return 1;
}

/* Reads the whole file at path into *root.  0 with *root (NULL when the
 * file does not exist), or -1 with err set.  Checks the mode. */
static int as_read_root(const char *path, json_t **root, char *err, size_t errlen)
{
    struct stat st;
    json_error_t je;
    FILE *f;
    int fd;

    *root = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "permissions %03o for %s are too open, please use 600",
                 (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > AS_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, AS_MAX_FILE);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) { /* Traefik creates an empty acme.json: valid */
        close(fd);
        return 0;
    }
    f = fdopen(fd, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    *root = json_loadf(f, 0, &je);
    fclose(f);
    if (!*root) {
        snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        return -1;
    }
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        snprintf(err, errlen, "%s: not a JSON object", path);
        return -1;
    }
    return 0;
}

/* Fills out (empty) from one resolver's section sec (NULL or JSON null:
 * empty).  where names the source in messages ("FILE: \"le\"").  0, or
 * -1 with err set (out cleared). */
static int as_parse_section(json_t *sec, const char *where, struct as_data *out,
                            size_t *skipped, char *err, size_t errlen)
{
    json_t *acc, *certs;

    if (!sec || json_is_null(sec)) return 0;
    if (!json_is_object(sec)) {
        snprintf(err, errlen, "%s is not an object", where);
        return -1;
    }
    acc = json_object_get(sec, "Account");
    if (acc && !json_is_null(acc) && as_load_account(acc, out) < 0) {
        snprintf(err, errlen, "%s.Account: bad layout or PrivateKey", where);
        as_data_clear(out);
        return -1;
    }
    certs = json_object_get(sec, "Certificates");
    if (json_is_array(certs)) {
        size_t i;
        json_t *e;
        json_array_foreach(certs, i, e) {
            int r = as_load_cert(e, out);
            if (r < 0) {
                snprintf(err, errlen, "%s: too many certificates or out of memory", where);
                as_data_clear(out);
                return -1;
            }
            if (r > 0 && skipped) (*skipped)++;
        }
    }
    return 0;
}

int as_load(const char *path, const char *resolver, struct as_data *out,
            size_t *skipped, char *err, size_t errlen)
{
    json_t *root = NULL;
    char where[512];
    int rc;

    as_data_clear(out);
    if (skipped) *skipped = 0;
    if (as_read_root(path, &root, err, errlen) < 0) return -1;
    snprintf(where, sizeof(where), "%s: \"%s\"", path, resolver);
    rc = as_parse_section(root ? json_object_get(root, resolver) : NULL, where, out, skipped,
                          err, errlen);
    json_decref(root);
    return rc;
}

int as_section_parse(const char *text, size_t len, struct as_data *out, size_t *skipped,
                     char *err, size_t errlen)
{
    json_error_t je;
    json_t *sec;
    int rc;

    as_data_clear(out);
    if (skipped) *skipped = 0;
    if (len > AS_MAX_FILE) {
        snprintf(err, errlen, "section larger than %u bytes", AS_MAX_FILE);
        return -1;
    }
    if (len == 0) return 0;
    sec = json_loadb(text, len, 0, &je);
    if (!sec) {
        snprintf(err, errlen, "line %d: %s", je.line, je.text);
        return -1;
    }
    rc = as_parse_section(sec, "section", out, skipped, err, errlen);
    json_decref(sec);
    return rc;
}

/* Sets key to a base64 string of data.  0 / -1. */
static int as_set_b64(json_t *obj, const char *key, const void *data, size_t len)
{
    char *s = as_b64_encode(data, len);
    int rc;

    if (!s) return -1;
    rc = json_object_set_new(obj, key, json_string(s));
    free(s);
    return rc;
}

/* The JSON form of d (a new reference), or NULL. */
static json_t *as_section(const struct as_data *d)
{
    json_t *sec = json_object(), *certs = json_array();

    if (!sec || !certs) goto fail;
    if (d->has_account) {
        json_t *acc = json_object(), *reg = json_object(), *body = NULL;
        if (json_object_set_new(sec, "Account", acc) < 0) goto fail;
        if (d->acct.body_json) body = json_loads(d->acct.body_json, 0, NULL);
        if (!body) body = json_object();
        json_object_set_new(acc, "Email", json_string(d->acct.email ? d->acct.email : ""));
        json_object_set_new(reg, "body", body);
        if (d->acct.uri) json_object_set_new(reg, "uri", json_string(d->acct.uri));
        json_object_set_new(acc, "Registration", reg);
        if (as_set_b64(acc, "PrivateKey", d->acct.key_der, d->acct.key_der_len) < 0) goto fail;
        json_object_set_new(acc, "KeyType", json_string(d->acct.key_type ? d->acct.key_type : ""));
    }
    for (size_t i = 0; i < d->ncerts; i++) {
        const struct as_cert *c = &d->certs[i];
        json_t *e = json_object(), *dom = json_object();
        if (json_array_append_new(certs, e) < 0 || !dom) goto fail;
        json_object_set_new(dom, "main", json_string(c->main));
        if (c->nsans) {
            json_t *sa = json_array();
            for (size_t j = 0; j < c->nsans; j++) json_array_append_new(sa, json_string(c->sans[j]));
            json_object_set_new(dom, "sans", sa);
        }
        json_object_set_new(e, "domain", dom);
        if (as_set_b64(e, "certificate", c->cert_pem, strlen(c->cert_pem)) < 0 ||
            as_set_b64(e, "key", c->key_pem, strlen(c->key_pem)) < 0)
            goto fail;
        json_object_set_new(e, "Store", json_string(c->store ? c->store : "default"));
    }
    if (json_object_set_new(sec, "Certificates", certs) < 0) {
        certs = NULL;
        goto fail;
    }
    return sec;
fail:
    json_decref(sec);
    json_decref(certs);
    return NULL;
}

char *as_section_dump(const struct as_data *d)
{
    json_t *sec = as_section(d);
    char *text = sec ? json_dumps(sec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(sec);
    return text;
}

int as_account_copy(struct as_account *dst, const struct as_account *src)
{
    struct as_account n;

    memset(&n, 0, sizeof(n));
    if ((src->email && !(n.email = strdup(src->email))) ||
        (src->uri && !(n.uri = strdup(src->uri))) ||
        (src->body_json && !(n.body_json = strdup(src->body_json))) ||
        (src->key_type && !(n.key_type = strdup(src->key_type))))
        goto fail;
    if (src->key_der_len) {
        if (!(n.key_der = malloc(src->key_der_len))) goto fail;
        memcpy(n.key_der, src->key_der, src->key_der_len);
        n.key_der_len = src->key_der_len;
    }
    as_account_clear(dst);
    *dst = n;
    return 0;
fail:
    as_account_clear(&n);
    return -1;
}

int as_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    static unsigned seq;
    char tmp[4096], dirbuf[4096];
    size_t off = 0;
    int fd, dfd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", path, (long)getpid(), seq++) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0600) < 0) goto fail; /* whatever the umask did */
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) < 0) goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) goto fail;
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some filesystems refuse */
        close(dfd);
    }
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

int as_save(const char *path, const char *resolver, const struct as_data *d, char *err,
            size_t errlen)
{
    json_t *root = NULL, *sec;
    char *text = NULL;
    int rc = -1;

    if (as_read_root(path, &root, err, errlen) < 0) return -1;
    if (!root && !(root = json_object())) goto oom;
    sec = as_section(d);
    if (!sec || json_object_set_new(root, resolver, sec) < 0) goto oom;
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) goto oom;
    rc = as_write_atomic(path, text, strlen(text), err, errlen);
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    free(text);
    json_decref(root);
    return rc;
}

void as_cert_del(struct as_data *d, size_t i)
{
    if (i >= d->ncerts) return;
    as_cert_clear(&d->certs[i]);
    d->certs[i] = d->certs[--d->ncerts];
}

/* 1 when c is for main + sans (SANs in any order, no duplicates assumed). */
static int as_cert_match(const struct as_cert *c, const char *main, const char *const *sans,
                         size_t nsans)
{
    if (strcasecmp(c->main, main) != 0 || c->nsans != nsans) return 0;
    for (size_t i = 0; i < nsans; i++) {
        size_t j;
        for (j = 0; j < c->nsans; j++)
            if (!strcasecmp(c->sans[j], sans[i])) break;
        if (j == c->nsans) return 0;
    }
    return 1;
}

struct as_cert *as_cert_find(struct as_data *d, const char *main, const char *const *sans,
                             size_t nsans)
{
    for (size_t i = 0; i < d->ncerts; i++)
        if (as_cert_match(&d->certs[i], main, sans, nsans)) return &d->certs[i];
    return NULL;
}

int as_cert_put(struct as_data *d, const char *main, const char *const *sans, size_t nsans,
                const char *cert_pem, const char *key_pem)
{
    struct as_cert c, *old;

    if (nsans > AS_MAX_SANS) return -1;
    memset(&c, 0, sizeof(c));
    c.main = strdup(main);
    c.cert_pem = strdup(cert_pem);
    c.key_pem = strdup(key_pem);
    c.store = strdup("default");
    if (nsans && !(c.sans = calloc(nsans, sizeof(char *)))) goto fail;
    if (!c.main || !c.cert_pem || !c.key_pem || !c.store) goto fail;
    for (; c.nsans < nsans; c.nsans++)
        if (!(c.sans[c.nsans] = strdup(sans[c.nsans]))) goto fail;
    old = as_cert_find(d, main, sans, nsans);
    if (old) {
        as_cert_clear(old);
        *old = c;
        return 0;
    }
    if (d->ncerts >= AS_MAX_CERTS) goto fail;
    if (d->ncerts == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        struct as_cert *nc = realloc(d->certs, ncap * sizeof(*nc));
        if (!nc) goto fail;
        d->certs = nc;
        d->cap = ncap;
    }
    d->certs[d->ncerts++] = c;
    return 0;
fail:
    as_cert_clear(&c);
    return -1;
}
