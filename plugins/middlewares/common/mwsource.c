/*
 * mwsource — client address, source criterion and per-source table helpers
 * of the ipAllowList, ipDenyList, rateLimit and inFlightReq plugins (see
 * mwsource.h).  Module prefix: mws_.
 *
 * Traefik semantics kept here:
 *  - an address list entry is an address ("192.0.2.7", "2001:db8::7") or a
 *    CIDR ("192.0.2.0/24", "2001:db8::/32"); IPv4-mapped IPv6 addresses
 *    ("::ffff:192.0.2.7") are the IPv4 address;
 *  - ipStrategy: depth > 0 takes the depth-th X-Forwarded-For element from
 *    the right ("" when there are fewer); else excludedIPs takes the first
 *    element from the right that is not in the list ("" when none); else
 *    the connection's address.  ipv6Subnet (1..128) replaces an IPv6
 *    result by the first address of its subnet (not for excludedIPs, as in
 *    Traefik).  Only the first X-Forwarded-For header counts (Go's
 *    Header.Get);
 *  - sourceCriterion: ipStrategy, requestHeaderName (the header's first
 *    value, "" when absent) and requestHost (the Host / authority as sent)
 *    are mutually exclusive.
 *
 * relais' host appends the connection's address to X-Forwarded-For before
 * the middlewares run, where Traefik appends it after them; mws_xff()
 * removes that last element again so that depth counts as in Traefik.
 */
#include "mwsource.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- addresses --------------------------------------------------------- */

/** A parsed address. */
struct mws_ip {
    uint8_t a[16]; /* the address (IPv4: first 4 bytes) */
    int v4;        /* IPv4, or an IPv4-mapped IPv6 address made IPv4 */
    int mapped;    /* it was written as IPv4-mapped IPv6 */
};

/** Any thread.  1 for the bytes Go's strings.TrimSpace removes (ASCII). */
static int mws_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/** Any thread.  Trims white space around s[0..*len): returns the start. */
static const char *mws_trim(const char *s, size_t *len)
{
    size_t n = *len;

    while (n && mws_space(*s)) {
        s++;
        n--;
    }
    while (n && mws_space(s[n - 1])) n--;
    *len = n;
    return s;
}

/**
 * Any thread.  Parses the address s[0..len) (no port, no brackets; a zone
 * "%eth0" of an IPv6 address is ignored).  0, or -1 when it is not an
 * address.
 */
static int mws_ip_parse(const char *s, size_t len, struct mws_ip *ip)
{
    char buf[MWS_IP_TEXT];
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char *pct;

    memset(ip, 0, sizeof(*ip));
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, ip->a) == 1) {
        ip->v4 = 1;
        return 0;
    }
    pct = strchr(buf, '%');
    if (pct) {
        if (pct[1] == '\0') return -1;
        *pct = '\0';
    }
    if (inet_pton(AF_INET6, buf, ip->a) != 1) return -1;
    if (!memcmp(ip->a, pfx, 12)) {
        memmove(ip->a, ip->a + 12, 4);
        memset(ip->a + 4, 0, 12);
        ip->v4 = 1;
        ip->mapped = 1;
    }
    return 0;
}

/** Any thread.  1 when the first bits of a and b agree. */
static int mws_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (full && memcmp(a, b, full)) return 0;
    if (rest) {
        uint8_t m = (uint8_t)(0xff << (8 - rest));
        if ((a[full] & m) != (b[full] & m)) return 0;
    }
    return 1;
}

/** Any thread.  Clears every bit of a[0..16) after the first bits. */
static void mws_mask(uint8_t *a, unsigned bits)
{
    unsigned i;

    for (i = 0; i < 16; i++) {
        if (bits >= 8) {
            bits -= 8;
        } else {
            a[i] &= (uint8_t)(0xff << (8 - bits));
            bits = 0;
        }
    }
}

/** Any thread.  1 when ip is inside an entry of l. */
static int mws_list_has(const struct mws_iplist *l, const struct mws_ip *ip)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (l->v[i].v4 == ip->v4 && mws_prefix_eq(l->v[i].addr, ip->a, l->v[i].bits))
            return 1;
    return 0;
}

/** Any thread.  Go's net.SplitHostPort as IsAuthorized uses it: the host
 *  part of "[h]:p" or "h:p" (one colon only); otherwise s itself. */
static const char *mws_split_hostport(const char *s, size_t *len)
{
    size_t n = *len, i, colons = 0, last = 0;

    if (n && s[0] == '[') {
        for (i = 1; i < n; i++)
            if (s[i] == ']') break;
        if (i < n && i + 1 < n && s[i + 1] == ':' &&
            !memchr(s + i + 2, ':', n - i - 2) && !memchr(s + 1, '[', i - 1)) {
            *len = i - 1;
            return s + 1;
        }
        return s;
    }
    for (i = 0; i < n; i++)
        if (s[i] == ':') {
            colons++;
            last = i;
        }
    if (colons == 1) *len = last;
    return s;
}

int mws_iplist_match(const struct mws_iplist *l, const char *text, size_t len)
{
    struct mws_ip ip;

    text = mws_split_hostport(text, &len);
    if (mws_ip_parse(text, len, &ip) < 0) return 0;
    return mws_list_has(l, &ip);
}

/**
 * Control thread.  Parses one list entry, an address or a CIDR, into *net.
 * 0, or -1 when it is neither.
 */
static int mws_net_parse(const char *s, struct mws_net *net)
{
    const char *slash = strchr(s, '/');
    struct mws_ip ip;
    unsigned bits;
    size_t i, blen;

    memset(net, 0, sizeof(*net));
    if (!slash) {
        if (mws_ip_parse(s, strlen(s), &ip) < 0) return -1;
        memcpy(net->addr, ip.a, 16);
        net->v4 = ip.v4;
        net->bits = ip.v4 ? 32 : 128;
        return 0;
    }
    if (mws_ip_parse(s, (size_t)(slash - s), &ip) < 0 || strchr(s, '%')) return -1;
    blen = strlen(slash + 1);
    if (blen == 0 || blen > 3 || (blen > 1 && slash[1] == '0')) return -1;
    for (bits = 0, i = 0; i < blen; i++) {
        if (slash[1 + i] < '0' || slash[1 + i] > '9') return -1;
        bits = bits * 10 + (unsigned)(slash[1 + i] - '0');
    }
    if (ip.mapped) {
        /* "::ffff:a.b.c.d/n": an IPv4 network when n >= 96 */
        if (bits > 128) return -1;
        if (bits >= 96) {
            bits -= 96;
        } else {
            /* a wider IPv6 prefix: keep it IPv6 */
            static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            memmove(ip.a + 12, ip.a, 4);
            memcpy(ip.a, pfx, 12);
            ip.v4 = 0;
        }
    }
    if (bits > (ip.v4 ? 32u : 128u)) return -1;
    mws_mask(ip.a, bits);
    memcpy(net->addr, ip.a, 16);
    net->v4 = ip.v4;
    net->bits = bits;
    return 0;
}

void mws_iplist_release(struct mws_iplist *l)
{
    if (!l) return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/**
 * Control thread.  Appends the entry text[0..len) (trimmed) to l, reporting
 * a bad one at node (the list item; key NULL) or at parent.key.  0, or -1.
 */
static int mws_iplist_add(const relais_host *host, const relais_cfg *node,
                          const char *key, struct mws_iplist *l,
                          const char *text, size_t len)
{
    char buf[160];
    struct mws_net net;

    text = mws_trim(text, &len);
    if (len == 0 || len >= sizeof(buf)) {
        host->cfg_error(node, key, "invalid IP address or CIDR \"%.*s\"",
                        (int)(len > 64 ? 64 : len), text);
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (mws_net_parse(buf, &net) < 0) {
        host->cfg_error(node, key, "invalid IP address or CIDR \"%s\"", buf);
        return -1;
    }
    if (l->n >= MWS_LIST_MAX) {
        host->cfg_error(node, key, "too many entries (at most %u)", MWS_LIST_MAX);
        return -1;
    }
    l->v[l->n++] = net;
    return 0;
}

int mws_iplist_parse(const relais_host *host, const relais_cfg *parent,
                     const char *key, int required, struct mws_iplist *out)
{
    const relais_cfg *node = host->cfg_get(parent, key);
    int t = host->cfg_type(node), rc = 0;
    size_t i, n = 0;

    memset(out, 0, sizeof(*out));
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) goto empty;
    if (t == RELAIS_CFG_STRING) {
        const char *s = NULL, *p;
        if (host->cfg_string(parent, key, &s) != RELAIS_CFG_OK) return -1;
        for (p = s, n = 1; *p; p++)
            if (*p == ',') n++;
        if (!*s) goto empty;
    } else if (t == RELAIS_CFG_LIST) {
        n = host->cfg_len(node);
        if (n == 0) goto empty;
    } else {
        host->cfg_error(parent, key, "expected a list of IP addresses or CIDRs");
        return -1;
    }
    if (n > MWS_LIST_MAX) {
        host->cfg_error(parent, key, "too many entries (at most %u)", MWS_LIST_MAX);
        return -1;
    }
    out->v = calloc(n, sizeof(*out->v));
    if (!out->v) {
        host->cfg_error(parent, key, "out of memory");
        return -1;
    }
    if (t == RELAIS_CFG_STRING) {
        const char *s = NULL, *p, *start;
        host->cfg_string(parent, key, &s);
        for (start = p = s;; p++) {
            if (*p == ',' || *p == '\0') {
                rc |= mws_iplist_add(host, parent, key, out, start, (size_t)(p - start));
                if (!*p) break;
                start = p + 1;
            }
        }
    } else {
        for (i = 0; i < n; i++) {
            const relais_cfg *item = host->cfg_at(node, i, NULL);
            const char *s = NULL;
            if (host->cfg_type(item) != RELAIS_CFG_STRING ||
                host->cfg_string(item, NULL, &s) != RELAIS_CFG_OK) {
                host->cfg_error(item, NULL, "expected an IP address or CIDR (a string)");
                rc = -1;
                continue;
            }
            rc |= mws_iplist_add(host, item, NULL, out, s, strlen(s));
        }
    }
    if (rc) mws_iplist_release(out);
    return rc ? -1 : 0;
empty:
    if (required) {
        host->cfg_error(parent, key, "required: a non-empty list of IP addresses or CIDRs");
        return -1;
    }
    return 0;
}

/* ---- configuration ----------------------------------------------------- */

int mws_check_keys(const relais_host *host, const relais_cfg *node,
                   const char *const *known, size_t n)
{
    char expected[256];
    size_t i, j, len = host->cfg_len(node), used = 0;
    int rc = 0;

    expected[0] = '\0';
    for (j = 0; j < n; j++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s",
                         j ? ", " : "", known[j]);
        if (w < 0 || (size_t)w >= sizeof(expected) - used) break;
        used += (size_t)w;
    }
    for (i = 0; i < len; i++) {
        const char *key = NULL;

        if (!host->cfg_at(node, i, &key) || !key) continue;
        for (j = 0; j < n; j++)
            if (!strcasecmp(key, known[j])) break;
        if (j == n) {
            host->cfg_error(node, key, "unknown option (expected %s)", expected);
            rc = -1;
        }
    }
    return rc;
}

void mws_strategy_release(struct mws_strategy *s)
{
    if (!s) return;
    mws_iplist_release(&s->excluded);
}

int mws_strategy_parse(const relais_host *host, const relais_cfg *parent,
                       const char *key, struct mws_strategy *out,
                       int *present)
{
    static const char *const keys[] = {"depth", "excludedIPs", "ipv6Subnet"};
    const relais_cfg *node = host->cfg_get(parent, key);
    int t = host->cfg_type(node), rc = 0, r;
    int64_t depth = 0, subnet = 0;

    memset(out, 0, sizeof(*out));
    *present = 0;
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(parent, key, "expected a map (depth, excludedIPs, ipv6Subnet)");
        return -1;
    }
    *present = 1;
    rc |= mws_check_keys(host, node, keys, sizeof(keys) / sizeof(keys[0]));
    if (host->cfg_int(node, "depth", &depth) == RELAIS_CFG_INVALID) rc = -1;
    else if (depth < 0 || depth > 1024) {
        host->cfg_error(node, "depth", "must be between 0 and 1024");
        rc = -1;
    }
    r = host->cfg_int(node, "ipv6Subnet", &subnet);
    if (r == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (r == RELAIS_CFG_OK && (subnet <= 0 || subnet > 128)) {
        host->cfg_error(node, "ipv6Subnet",
                        "invalid IPv6 subnet %lld value, should be greater to 0 "
                        "and lower or equal to 128", (long long)subnet);
        rc = -1;
    }
    rc |= mws_iplist_parse(host, node, "excludedIPs", 0, &out->excluded);
    if (rc) {
        mws_strategy_release(out);
        return -1;
    }
    out->subnet = (int)subnet;
    if (depth > 0) {
        out->kind = MWS_STRAT_DEPTH;
        out->depth = (int)depth;
        mws_iplist_release(&out->excluded); /* depth wins, as in Traefik */
    } else if (out->excluded.n) {
        out->kind = MWS_STRAT_POOL;
    } else {
        out->kind = MWS_STRAT_REMOTE;
    }
    return 0;
}

void mws_source_release(struct mws_source *s)
{
    if (!s) return;
    mws_strategy_release(&s->ip);
    free(s->header);
    s->header = NULL;
}

int mws_source_parse(const relais_host *host, const relais_cfg *parent,
                     int dflt, struct mws_source *out)
{
    static const char *const keys[] = {"ipStrategy", "requestHeaderName", "requestHost"};
    const relais_cfg *node = host->cfg_get(parent, "sourceCriterion");
    int t = host->cfg_type(node), rc = 0, has_ip = 0, reqhost = 0;
    const char *hname = NULL;

    memset(out, 0, sizeof(*out));
    out->kind = dflt;
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(parent, "sourceCriterion",
                        "expected a map (ipStrategy, requestHeaderName, requestHost)");
        return -1;
    }
    rc |= mws_check_keys(host, node, keys, sizeof(keys) / sizeof(keys[0]));
    rc |= mws_strategy_parse(host, node, "ipStrategy", &out->ip, &has_ip);
    if (host->cfg_string(node, "requestHeaderName", &hname) == RELAIS_CFG_INVALID) rc = -1;
    if (host->cfg_bool(node, "requestHost", &reqhost) == RELAIS_CFG_INVALID) rc = -1;
    if (hname && !hname[0]) hname = NULL;
    if (!rc && has_ip && hname) {
        host->cfg_error(parent, "sourceCriterion",
                        "ipStrategy and requestHeaderName are mutually exclusive");
        rc = -1;
    }
    if (!rc && has_ip && reqhost) {
        host->cfg_error(parent, "sourceCriterion",
                        "ipStrategy and requestHost are mutually exclusive");
        rc = -1;
    }
    if (!rc && hname && reqhost) {
        host->cfg_error(parent, "sourceCriterion",
                        "requestHost and requestHeaderName are mutually exclusive");
        rc = -1;
    }
    if (!rc && hname) {
        out->header = strdup(hname);
        if (!out->header) {
            host->cfg_error(node, "requestHeaderName", "out of memory");
            rc = -1;
        }
    }
    if (rc) {
        mws_source_release(out);
        return -1;
    }
    if (has_ip) out->kind = MWS_SRC_IP;
    else if (hname) out->kind = MWS_SRC_HEADER;
    else if (reqhost) out->kind = MWS_SRC_HOST;
    return 0;
}

/* ---- requests ---------------------------------------------------------- */

/**
 * Any thread.  The X-Forwarded-For value the client sent (its first
 * header), as Traefik's middlewares see it: the element relais appended
 * (the connection's address, last) is left out.  *len gets its length;
 * NULL when there was none.
 */
static const char *mws_xff(const relais_host *host, relais_req *req, size_t *len)
{
    relais_hdrs *h = host->req_headers(req);
    const char *v, *peer = host->req_client_ip(req), *last;
    size_t vl = 0, ll, cut;

    v = h ? host->hdr_get(h, "X-Forwarded-For", 0, &vl) : NULL;
    if (!v) return NULL;
    cut = vl;
    while (cut && v[cut - 1] != ',') cut--;
    ll = vl - cut;
    last = mws_trim(v + cut, &ll);
    if (peer && ll == strlen(peer) && !memcmp(last, peer, ll)) {
        if (cut == 0) return NULL; /* only the appended address */
        *len = cut - 1;
        return v;
    }
    *len = vl;
    return v;
}

/** Any thread.  Copies s[0..len) into out (cap bytes, NUL-terminated),
 *  replaced by the first address of its ipv6Subnet when it is IPv6.
 *  Returns the length written; 0 ("") when s does not fit. */
static size_t mws_put_ip(const char *s, size_t len, int subnet, char *out,
                         size_t cap)
{
    struct mws_ip ip;

    if (len >= cap) {
        /* longer than any address: not one (an empty result) */
        out[0] = '\0';
        return 0;
    }
    if (subnet > 0 && mws_ip_parse(s, len, &ip) == 0 && (!ip.v4 || ip.mapped)) {
        uint8_t a[16];
        char txt[INET6_ADDRSTRLEN];
        if (ip.mapped) {
            static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            memcpy(a, pfx, 12);
            memcpy(a + 12, ip.a, 4);
        } else {
            memcpy(a, ip.a, 16);
        }
        mws_mask(a, (unsigned)subnet);
        if (inet_ntop(AF_INET6, a, txt, sizeof(txt))) {
            s = txt;
            len = strlen(txt);
            if (len >= cap) len = cap - 1;
            memcpy(out, s, len);
            out[len] = '\0';
            return len;
        }
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return len;
}

size_t mws_strategy_ip(const relais_host *host, const struct mws_strategy *s,
                       relais_req *req, char *out, size_t cap)
{
    const char *xff, *el;
    size_t xl = 0, count, i, start, el_len;

    out[0] = '\0';
    if (s->kind == MWS_STRAT_REMOTE) {
        const char *ip = host->req_client_ip(req);
        return ip ? mws_put_ip(ip, strlen(ip), s->subnet, out, cap) : 0;
    }
    xff = mws_xff(host, req, &xl);
    if (!xff) {
        xff = "";
        xl = 0;
    }
    for (count = 1, i = 0; i < xl; i++)
        if (xff[i] == ',') count++;
    if (s->kind == MWS_STRAT_DEPTH) {
        size_t want, idx = 0;
        if (count < (size_t)s->depth) return 0;
        want = count - (size_t)s->depth;
        for (start = 0, i = 0; i <= xl; i++) {
            if (i == xl || xff[i] == ',') {
                if (idx == want) {
                    el_len = i - start;
                    el = mws_trim(xff + start, &el_len);
                    return mws_put_ip(el, el_len, s->subnet, out, cap);
                }
                idx++;
                start = i + 1;
            }
        }
        return 0;
    }
    /* MWS_STRAT_POOL: from the right, the first element not excluded */
    for (i = xl + 1; i > 0;) {
        size_t end = i - 1;
        struct mws_ip ip;
        start = end;
        while (start > 0 && xff[start - 1] != ',') start--;
        el_len = end - start;
        el = mws_trim(xff + start, &el_len);
        i = start;
        if (el_len && (mws_ip_parse(el, el_len, &ip) < 0 || !mws_list_has(&s->excluded, &ip)))
            return mws_put_ip(el, el_len, 0, out, cap);
        if (start == 0) break;
    }
    return 0;
}

size_t mws_source_key(const relais_host *host, const struct mws_source *s,
                      relais_req *req, char *buf, size_t cap, const char **key)
{
    const char *v = NULL;
    size_t len = 0;

    if (s->kind == MWS_SRC_IP) {
        *key = buf;
        return mws_strategy_ip(host, &s->ip, req, buf, cap);
    }
    if (s->kind == MWS_SRC_HEADER) {
        relais_hdrs *h = host->req_headers(req);
        v = h ? host->hdr_get(h, s->header, 0, &len) : NULL;
    } else {
        v = host->req_authority(req, &len);
    }
    if (!v) {
        v = "";
        len = 0;
    }
    if (len > MWS_KEY_MAX) len = MWS_KEY_MAX;
    *key = v;
    return len;
}

/* ---- the table --------------------------------------------------------- */

/** Any thread.  64-bit FNV-1a of s[0..n). */
static uint64_t mws_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int mws_table_init(struct mws_table *t, size_t max_entries, int64_t idle_ns,
                   int evict_full)
{
    size_t per = (max_entries + MWS_SHARDS - 1) / MWS_SHARDS, nb = 16, i;

    memset(t, 0, sizeof(*t));
    if (per == 0) per = 1;
    while (nb < per) nb *= 2;
    t->idle_ns = idle_ns;
    t->evict_full = evict_full;
    for (i = 0; i < MWS_SHARDS; i++) {
        struct mws_shard *sh = &t->shard[i];
        sh->cap = per;
        sh->nbuckets = nb;
        sh->bucket = calloc(nb, sizeof(*sh->bucket));
        if (!sh->bucket || pthread_mutex_init(&sh->lock, NULL) != 0) {
            free(sh->bucket);
            sh->bucket = NULL;
            while (i-- > 0) {
                pthread_mutex_destroy(&t->shard[i].lock);
                free(t->shard[i].bucket);
                t->shard[i].bucket = NULL;
            }
            return -1;
        }
    }
    t->ready = 1;
    return 0;
}

/** Unlinks e from the LRU list of sh. */
static void mws_lru_unlink(struct mws_shard *sh, struct mws_entry *e)
{
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next;
    else sh->lru = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev;
    else sh->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

/** Puts e at the head (most recent) of the LRU list of sh. */
static void mws_lru_push(struct mws_shard *sh, struct mws_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = sh->lru;
    if (sh->lru) sh->lru->lru_prev = e;
    sh->lru = e;
    if (!sh->lru_tail) sh->lru_tail = e;
}

void mws_table_remove(struct mws_shard *sh, struct mws_entry *e)
{
    struct mws_entry **pp = &sh->bucket[(e->hash / MWS_SHARDS) & (sh->nbuckets - 1)];

    while (*pp && *pp != e) pp = &(*pp)->chain;
    if (*pp) *pp = e->chain;
    mws_lru_unlink(sh, e);
    sh->n--;
    free(e);
}

void mws_table_release(struct mws_table *t)
{
    size_t i;

    if (!t || !t->ready) return;
    for (i = 0; i < MWS_SHARDS; i++) {
        struct mws_shard *sh = &t->shard[i];
        struct mws_entry *e = sh->lru, *next;
        for (; e; e = next) {
            next = e->lru_next;
            free(e);
        }
        free(sh->bucket);
        sh->bucket = NULL;
        pthread_mutex_destroy(&sh->lock);
    }
    t->ready = 0;
}

struct mws_entry *mws_table_get(struct mws_table *t, const char *key,
                                size_t klen, int64_t now_ns, int create,
                                int *created, struct mws_shard **sh_out)
{
    uint64_t h = mws_hash(key, klen);
    struct mws_shard *sh = &t->shard[h % MWS_SHARDS];
    struct mws_entry *e, **slot;

    *created = 0;
    pthread_mutex_lock(&sh->lock);
    if (t->idle_ns > 0)
        while (sh->lru_tail && now_ns - sh->lru_tail->used_ns >= t->idle_ns)
            mws_table_remove(sh, sh->lru_tail);
    slot = &sh->bucket[(h / MWS_SHARDS) & (sh->nbuckets - 1)];
    for (e = *slot; e; e = e->chain)
        if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)) break;
    if (!e) {
        if (!create) goto fail;
        if (sh->n >= sh->cap) {
            if (!t->evict_full || !sh->lru_tail) goto fail;
            mws_table_remove(sh, sh->lru_tail);
        }
        e = calloc(1, sizeof(*e) + klen);
        if (!e) goto fail;
        e->hash = h;
        e->klen = klen;
        memcpy(e->key, key, klen);
        e->chain = *slot;
        *slot = e;
        sh->n++;
        *created = 1;
    } else {
        mws_lru_unlink(sh, e);
    }
    mws_lru_push(sh, e);
    if (now_ns > e->used_ns) e->used_ns = now_ns;
    *sh_out = sh;
    return e;
fail:
    pthread_mutex_unlock(&sh->lock);
    return NULL;
}

void mws_table_unlock(struct mws_shard *sh)
{
    pthread_mutex_unlock(&sh->lock);
}

void mws_table_lock(struct mws_shard *sh)
{
    pthread_mutex_lock(&sh->lock);
}

/* ---- misc -------------------------------------------------------------- */

const char *mws_status_text(int code)
{
    static const struct {
        int code;         /* status */
        const char *text; /* Go's text */
    } tab[] = {
        {100, "Continue"}, {101, "Switching Protocols"}, {102, "Processing"},
        {103, "Early Hints"}, {200, "OK"}, {201, "Created"}, {202, "Accepted"},
        {203, "Non-Authoritative Information"}, {204, "No Content"},
        {205, "Reset Content"}, {206, "Partial Content"}, {207, "Multi-Status"},
        {208, "Already Reported"}, {226, "IM Used"}, {300, "Multiple Choices"},
        {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
        {304, "Not Modified"}, {305, "Use Proxy"}, {307, "Temporary Redirect"},
        {308, "Permanent Redirect"}, {400, "Bad Request"}, {401, "Unauthorized"},
        {402, "Payment Required"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"}, {408, "Request Timeout"},
        {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
        {412, "Precondition Failed"}, {413, "Request Entity Too Large"},
        {414, "Request URI Too Long"}, {415, "Unsupported Media Type"},
        {416, "Requested Range Not Satisfiable"}, {417, "Expectation Failed"},
        {418, "I'm a teapot"}, {421, "Misdirected Request"},
        {422, "Unprocessable Entity"}, {423, "Locked"}, {424, "Failed Dependency"},
        {425, "Too Early"}, {426, "Upgrade Required"}, {428, "Precondition Required"},
        {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"},
        {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
        {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
        {506, "Variant Also Negotiates"}, {507, "Insufficient Storage"},
        {508, "Loop Detected"}, {510, "Not Extended"},
        {511, "Network Authentication Required"},
    };
    size_t i;

    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (tab[i].code == code) return tab[i].text;
    return NULL;
}

/** Any thread.  Writes the decimal digits of v just before *w (moving *w
 *  back) in the buffer that starts at buf. */
static void mws_put_int(char *buf, char **w, uint64_t v)
{
    do {
        if (*w == buf) return;
        *--*w = (char)('0' + v % 10);
        v /= 10;
    } while (v);
}

/** Any thread.  Writes the prec fractional digits of v (without trailing
 *  zeros, with a '.' when any is left) before *w; returns v / 10^prec. */
static uint64_t mws_put_frac(char *buf, char **w, uint64_t v, int prec)
{
    int i, print = 0;

    for (i = 0; i < prec; i++) {
        unsigned d = (unsigned)(v % 10);
        print = print || d != 0;
        if (print && *w > buf) *--*w = (char)('0' + d);
        v /= 10;
    }
    if (print && *w > buf) *--*w = '.';
    return v;
}

void mws_go_duration(int64_t ns, char *out, size_t cap)
{
    char buf[40], *w = buf + sizeof(buf);
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    size_t n;

    if (u < 1000000000ull) {
        int prec = 0;
        *--w = 's';
        if (u == 0) {
            *--w = '0';
        } else {
            if (u < 1000ull) {
                *--w = 'n';
            } else if (u < 1000000ull) {
                prec = 3;
                *--w = '\xb5'; /* "µ" in UTF-8: C2 B5 */
                *--w = '\xc2';
            } else {
                prec = 6;
                *--w = 'm';
            }
            u = mws_put_frac(buf, &w, u, prec);
            mws_put_int(buf, &w, u);
        }
    } else {
        *--w = 's';
        u = mws_put_frac(buf, &w, u, 9);
        mws_put_int(buf, &w, u % 60);
        u /= 60;
        if (u > 0) {
            *--w = 'm';
            mws_put_int(buf, &w, u % 60);
            u /= 60;
            if (u > 0) {
                *--w = 'h';
                mws_put_int(buf, &w, u);
            }
        }
    }
    if (ns < 0) *--w = '-';
    n = (size_t)(buf + sizeof(buf) - w);
    if (n >= cap) n = cap - 1;
    memcpy(out, w, n);
    out[n] = '\0';
}

int64_t mws_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
