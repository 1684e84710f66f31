/*
 * acme_etcd — see acme_etcd.h.
 *
 * Pieces:
 * - the mirror: a read of P/acme/ then a watch from the revision after
 *   it (re-read when the watch ends or cannot start); sections go to
 *   on_cert and the resolvers' clients, challenges to the hooks (the
 *   mirror remembers the challenge keys it reported, so that a re-read
 *   reports those gone meanwhile);
 * - the lock: taken when this controller leads, then P/acme/ read again
 *   and the clients enabled; released (and the clients paused) when it
 *   stops leading, lost when the watch or a save shows another holder;
 * - saves: one txn in flight per resolver, later changes coalesced
 *   (dirty), a failed compare read and merged before the next attempt;
 * - challenges: one put on the node lease per challenge, then a wait for
 *   the acknowledgements of the live nodes (the mirror delivers those of
 *   P/acme/acks/ to the challenge they name; P/nodes/ is read when the
 *   put is done and every AE_ACK_POLL_MS after), capped at AE_ACK_MAX_MS,
 *   then acme_challenge_ready; a clear deletes (after the put, when it is
 *   still in flight);
 * - acknowledgements: the mirror, once a hook installed a challenge, puts
 *   P/acme/acks/<kind>/<id>/<this node> = the challenge's mod revision on
 *   this node's lease, and deletes it when the challenge goes (one call
 *   in flight per key, the latest wish sent when it ends).
 *
 * P/nodes/ is read here rather than through cluster.c: cluster.c does
 * not keep the node list (its watch skips P/nodes/, whose statuses change
 * every few seconds), and only the ordering node needs it, only while a
 * challenge waits, so a keys-only read of that prefix is cheaper than a
 * second watch or a list kept on every node.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "acme.h"
#include "acme_etcd.h"
#include "acme_store.h"
#include "cluster.h"
#include "etcd.h"
#include "log.h"

#define AE_RETRY_MS 1000      /* after a failed read, lock attempt or save */
#define AE_LOCK_POLL_MS 5000  /* a leader without the lock tries again */
#define AE_SAVE_WARN 10       /* failed attempts of one save before an error
                                 is logged (it keeps trying while this node
                                 holds the lock) */
#define AE_SAVE_MAX_MS 30000  /* cap on the delay between attempts */
#define AE_MAX_MIRROR 4096    /* challenges mirrored at once */
#define AE_ACK_TRIES 5        /* puts of one acknowledgement (AE_RETRY_MS
                                 apart) before giving up: by then the
                                 orderer's cap has passed */

/** Lock states. */
enum { AE_LOCK_NONE = 0, /* not held (not leading, or someone else has it) */
       AE_LOCK_TAKING,   /* the create txn (or the read after a refusal) runs */
       AE_LOCK_HELD,     /* held; P/acme/ being read before ordering */
       AE_LOCK_ACTIVE }; /* held and read: the clients order */

/** One resolver stored in etcd. */
struct ae_res {
    struct ae_res *next;     /* list */
    char *name;              /* resolver name */
    char *key;               /* P/acme/<name> */
    struct acme *acme;       /* its client (ae_attach), or NULL */
    int exists;              /* the key existed at mod */
    int64_t mod;             /* its mod revision as last seen (0: unknown) */
    struct etc_call *call;   /* the save txn or its check read */
    int dirty;               /* a save was asked since the last write began */
    int tries;               /* attempts of the current save */
    struct event *retry_ev;  /* next attempt after a failure */
};

/** Challenge kinds. */
enum { AE_HTTP = 1, AE_ALPN = 2 };

/** A node's acknowledgement of one of our challenges, as the mirror saw
 *  it. */
struct ae_nack {
    char *node;              /* the acknowledging node's name */
    int64_t rev;             /* the challenge revision it acknowledged */
};

/** One challenge this node publishes. */
struct ae_chal {
    struct ae_chal *next;    /* list */
    struct ae_res *r;        /* the resolver whose order set it */
    int kind;                /* AE_HTTP / AE_ALPN */
    char *id;                /* token or domain (acme_challenge_ready key) */
    char *key;               /* its etcd key */
    struct etc_call *call;   /* the put or the delete in flight */
    struct event *wait;      /* ticks every AE_ACK_POLL_MS after the put */
    int put_done;            /* the put succeeded */
    int64_t put_rev;         /* the revision of that put (what acks name) */
    uint64_t put_ms;         /* when it was done (monotonic ms) */
    struct ae_nack *acks;    /* acknowledgements seen, any revision */
    size_t nacks;            /* how many */
    int ready;               /* acme_challenge_ready was called */
    int cleared;             /* the client cleared it: delete, then free */
    int deleting;            /* the delete runs */
};

/** This node's acknowledgement of a mirrored challenge. */
struct ae_ack {
    struct ae_ack *next;     /* list */
    char *key;               /* P/acme/acks/<kind>/<id>/<this node> */
    int64_t want;            /* revision to acknowledge, 0: delete the key */
    int64_t sent;            /* what the last call wrote (0: nothing/deleted) */
    struct etc_call *call;   /* the put or delete in flight */
    struct event *retry_ev;  /* a failed put tried again (a lease renewed) */
    int tries;               /* failed puts of the current wish */
};

/** A challenge key reported to the hooks (for re-reads). */
struct ae_seen {
    char *key;               /* the etcd key */
    int mark;                /* seen by the current re-read */
};

/** Module state (control thread). */
static struct {
    struct event_base *base;   /* the loop */
    struct ae_hooks hooks;     /* the node's hooks */
    int started;               /* ae_start ran */
    char *pfx;                 /* "P/acme/" */
    size_t pfxlen;             /* its length */
    char *lock_key;            /* "P/acme/lock" */
    struct event *init_ev;     /* waits for the etcd client */
    struct etc_client *etc;    /* the client the calls below belong to */
    struct etc_call *read;     /* the mirror's read */
    struct etc_watch *watch;   /* the mirror's watch */
    struct event *read_ev;     /* re-read after a failure */
    int leader;                /* cl says we lead */
    int lock;                  /* AE_LOCK_* */
    int64_t lock_rev;          /* create revision of our lock */
    int64_t release_rev;       /* a lock of ours to delete (not leading) */
    struct etc_call *lock_call; /* lock txn, release, or refresh read */
    int refreshing;            /* applying the read after taking the lock:
                                  etcd's sections replace the clients' */
    struct event *lock_ev;     /* lock retry / poll timer */
    struct ae_res *res;        /* resolvers */
    struct ae_chal *chals;     /* published challenges */
    struct ae_seen *seen;      /* mirrored challenge keys */
    size_t nseen;              /* how many */
    struct ae_ack *acks;       /* this node's acknowledgements */
    char *nodes_pfx;           /* "P/nodes/" */
    char **nodes;              /* live node names, as last read */
    size_t nnodes;             /* how many */
    int64_t nodes_rev;         /* store revision of that read (0: none) */
    struct etc_call *nodes_call; /* the read of P/nodes/ in flight */
} ae;

static void ae_lock_take(void);
static void ae_lock_release(void);
static void ae_save_kick(struct ae_res *r);
static void ae_read_start(void);
static void ae_ack_want(const char *rest, int64_t rev);
static void ae_ack_seen(const char *rest, const char *value, size_t len);

/* ---------------------------------------------------------------- helpers */

/* The etcd client when the calls may use it: NULL before it exists, or
 * when it is not the one our calls belong to (it was replaced). */
static struct etc_client *ae_etc(void)
{
    struct etc_client *c = cl_etcd();

    return c && c == ae.etc ? c : NULL;
}

/* Arms ev for ms milliseconds. */
static void ae_timer(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    if (ev) evtimer_add(ev, &tv);
}

/* The resolver called name (len bytes), or NULL. */
static struct ae_res *ae_find(const char *name, size_t len)
{
    for (struct ae_res *r = ae.res; r; r = r->next)
        if (strlen(r->name) == len && !memcmp(r->name, name, len)) return r;
    return NULL;
}

/* Pauses every client. */
static void ae_pause_all(void)
{
    for (struct ae_res *r = ae.res; r; r = r->next) acme_set_active(r->acme, 0);
}

/* ---------------------------------------------------------------- the mirror */

/* 1 when a write of r's section at revision mod is an edit by someone
 * else (relaisctl, etcdctl) that the ordering node takes as it is: newer
 * than what it saved or read last, and no save of its own running. */
static int ae_edited(const struct ae_res *r, int64_t mod)
{
    return r && r->acme && ae.lock == AE_LOCK_ACTIVE && !r->call && !r->dirty && r->mod &&
           mod > r->mod;
}

/* A section's value (mod: its mod revision): its certificates to on_cert,
 * the whole of it into the resolver's client. */
static void ae_section(const char *name, size_t nlen, const char *text, size_t len, int64_t mod)
{
    struct ae_res *r = ae_find(name, nlen);
    struct as_data d = {0};
    size_t skipped = 0;
    char err[300], who[128];
    int edited = ae.refreshing || ae_edited(r, mod);

    snprintf(who, sizeof(who), "%s%.*s", ae.pfx, (int)nlen, name);
    if (r && mod > r->mod) {
        r->mod = mod;
        r->exists = 1;
    }
    if (as_section_parse(text, len, &d, &skipped, err, sizeof(err)) < 0) {
        log_warn("acme", "%s: %s (ignored)", who, err);
        return;
    }
    if (skipped) log_warn("acme", "%s: %zu certificate(s) could not be read, ignored", who, skipped);
    if (ae.hooks.on_cert) {
        char rname[256];
        snprintf(rname, sizeof(rname), "%.*s", (int)nlen, name);
        for (size_t i = 0; i < d.ncerts; i++) {
            const struct as_cert *c = &d.certs[i];
            int64_t na = acme_pem_not_after(c->cert_pem);
            if (na < 0) continue;
            ae.hooks.on_cert(rname, c->main, (const char *const *)c->sans, c->nsans, c->cert_pem,
                             c->key_pem, na);
        }
    }
    if (r && r->acme) acme_store_merge(r->acme, &d, edited);
    as_data_clear(&d);
}

/* Remembers (1) or forgets (0) a mirrored challenge key.  Returns 1 when
 * the key was new (set) or known (forget). */
static int ae_seen_set(const char *key, int on)
{
    for (size_t i = 0; i < ae.nseen; i++) {
        if (strcmp(ae.seen[i].key, key) != 0) continue;
        ae.seen[i].mark = 1;
        if (on) return 0;
        free(ae.seen[i].key);
        ae.seen[i] = ae.seen[--ae.nseen];
        return 1;
    }
    if (!on || ae.nseen >= AE_MAX_MIRROR) return 0;
    {
        struct ae_seen *n = realloc(ae.seen, (ae.nseen + 1) * sizeof(*n));
        char *k = strdup(key);
        if (!n || !k) {
            if (n) ae.seen = n;
            free(k);
            return 0;
        }
        ae.seen = n;
        ae.seen[ae.nseen].key = k;
        ae.seen[ae.nseen++].mark = 1;
    }
    return 1;
}

/* A challenge key under P/acme/challenges/ (rest: "http/TOKEN" or
 * "alpn/DOMAIN") was put (value; mod: its mod revision) or deleted (value
 * NULL).  Installed by the hooks, then acknowledged (ae_ack_want); a
 * challenge gone (or not installed) has its acknowledgement deleted. */
static void ae_challenge(const char *key, const char *rest, const char *value, size_t len,
                         int64_t mod)
{
    int http = !strncmp(rest, "http/", 5), alpn = !strncmp(rest, "alpn/", 5);
    const char *id = rest + 5;
    int rc = -1;

    if ((!http && !alpn) || !*id || strchr(id, '/')) return;
    if (!value) {
        if (!ae_seen_set(key, 0)) return;
        if (http && ae.hooks.http01) ae.hooks.http01(id, NULL);
        if (alpn && ae.hooks.alpn01) ae.hooks.alpn01(id, NULL, NULL);
        ae_ack_want(rest, 0);
        return;
    }
    ae_seen_set(key, 1);
    if (http && ae.hooks.http01) {
        char *ka = strndup(value, len);
        if (ka) rc = ae.hooks.http01(id, ka);
        free(ka);
    } else if (alpn && ae.hooks.alpn01) {
        json_t *j = json_loadb(value, len, 0, NULL);
        const char *c = json_string_value(json_object_get(j, "certificate"));
        const char *k = json_string_value(json_object_get(j, "key"));
        if (c && k) rc = ae.hooks.alpn01(id, c, k);
        else log_warn("acme", "%s: not a challenge certificate (ignored)", key);
        json_decref(j);
    }
    ae_ack_want(rest, rc == 0 ? mod : 0);
}

/* One key of P/acme/ seen by the read (put = 1) or the watch. */
static void ae_kv(const struct etc_kv *kv, int put, int64_t rev)
{
    const char *rest;

    if (kv->key_len < ae.pfxlen || memcmp(kv->key, ae.pfx, ae.pfxlen) != 0) return;
    rest = kv->key + ae.pfxlen;
    if (!strncmp(rest, "challenges/", 11)) {
        ae_challenge(kv->key, rest + 11, put ? kv->value : NULL, kv->value_len,
                     kv->mod_revision ? kv->mod_revision : rev);
        return;
    }
    if (!strncmp(rest, "acks/", 5)) {
        ae_ack_seen(rest + 5, put ? kv->value : NULL, kv->value_len);
        return;
    }
    if (!strcmp(rest, "lock")) {
        if (put) log_debug("acme", "%s: held by %s", kv->key, kv->value);
        if (ae.lock != AE_LOCK_HELD && ae.lock != AE_LOCK_ACTIVE) {
            if (!put && ae.leader && ae.lock == AE_LOCK_NONE) ae_lock_take();
            return;
        }
        if (put && kv->create_revision == ae.lock_rev) return;
        if (kv->mod_revision && kv->mod_revision < ae.lock_rev) return; /* older than ours */
        log_warn("acme", "%s %s: this node no longer orders", kv->key,
                 put ? "taken by another node" : "deleted");
        ae.lock = AE_LOCK_NONE;
        ae_pause_all();
        if (ae.leader) ae_timer(ae.lock_ev, 0);
        return;
    }
    if (!*rest || strchr(rest, '/')) return;
    if (put) {
        ae_section(rest, strlen(rest), kv->value, kv->value_len, kv->mod_revision);
    } else {
        struct ae_res *r = ae_find(rest, strlen(rest));
        int64_t m = kv->mod_revision ? kv->mod_revision : rev;
        if (ae_edited(r, m)) { /* the ordering node orders them again */
            struct as_data empty = {0};
            acme_store_merge(r->acme, &empty, 1);
        }
        if (r && m > r->mod) {
            r->mod = m;
            r->exists = 0;
        }
        log_info("acme", "%s deleted: the certificates served stay until replaced", kv->key);
    }
}

/* Watch: events of one revision batch. */
static void ae_on_events(void *arg, const struct etc_event *ev, size_t n, int64_t revision)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) ae_kv(&ev[i].kv, ev[i].type == ETC_EV_PUT, revision);
}

/* Watch ended for good (compacted, auth): read again. */
static void ae_on_watch_end(void *arg, int err, const char *message)
{
    (void)arg;
    ae.watch = NULL;
    log_warn("acme", "watch of %s ended (%d: %s): reading it again", ae.pfx, err, message);
    ae_timer(ae.read_ev, err == ETC_ERR_COMPACTED ? 0 : AE_RETRY_MS);
}

/* The mirror's read answered: report everything, forget challenges gone
 * meanwhile, watch from the next revision. */
static void ae_on_read(void *arg, int err, const char *message, const struct etc_range *res)
{
    (void)arg;
    ae.read = NULL;
    if (err || !res) {
        log_warn("acme", "cannot read %s: %s (retrying)", ae.pfx, message);
        ae_timer(ae.read_ev, AE_RETRY_MS);
        return;
    }
    for (size_t i = 0; i < ae.nseen; i++) ae.seen[i].mark = 0;
    for (struct ae_chal *c = ae.chals; c; c = c->next) { /* the read has them all */
        for (size_t i = 0; i < c->nacks; i++) free(c->acks[i].node);
        c->nacks = 0;
    }
    for (size_t i = 0; i < res->n; i++) ae_kv(&res->kvs[i], 1, res->revision);
    for (size_t i = 0; i < ae.nseen;) { /* gone meanwhile */
        const char *rest;
        char *k;
        if (ae.seen[i].mark) {
            i++;
            continue;
        }
        k = ae.seen[i].key;
        ae.seen[i] = ae.seen[--ae.nseen];
        rest = k + ae.pfxlen + strlen("challenges/");
        if (!strncmp(rest, "http/", 5) && ae.hooks.http01) ae.hooks.http01(rest + 5, NULL);
        if (!strncmp(rest, "alpn/", 5) && ae.hooks.alpn01) ae.hooks.alpn01(rest + 5, NULL, NULL);
        ae_ack_want(rest, 0);
        free(k);
    }
    log_debug("acme", "%s read at revision %lld: %zu key(s)", ae.pfx, (long long)res->revision,
              res->n);
    ae.watch = etc_watch(ae.etc, ae.pfx, 1, res->revision + 1, ae_on_events, ae_on_watch_end,
                         NULL);
    if (!ae.watch) ae_timer(ae.read_ev, AE_RETRY_MS);
}

/* Starts (or restarts) the mirror: read, then watch. */
static void ae_read_start(void)
{
    if (!ae_etc()) return;
    etc_watch_cancel(ae.watch);
    ae.watch = NULL;
    etc_cancel(ae.read);
    ae.read = etc_get(ae.etc, ae.pfx, 1, 0, 0, ae_on_read, NULL);
    if (!ae.read) ae_timer(ae.read_ev, AE_RETRY_MS);
}

/* read_ev timer. */
static void ae_read_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ae_read_start();
}

/* ---------------------------------------------------------------- the lock */

/* The read after taking the lock answered: merge, then order. */
static void ae_on_refresh(void *arg, int err, const char *message, const struct etc_range *res)
{
    (void)arg;
    ae.lock_call = NULL;
    if (ae.lock != AE_LOCK_HELD) return;
    if (err || !res) {
        log_warn("acme", "cannot read %s after taking the lock: %s (retrying)", ae.pfx, message);
        ae_timer(ae.lock_ev, AE_RETRY_MS);
        return;
    }
    for (struct ae_res *r = ae.res; r; r = r->next) { /* as of this read */
        r->exists = 0;
        r->mod = 0;
    }
    ae.refreshing = 1; /* etcd is the truth now: what it lacks is ordered */
    for (size_t i = 0; i < res->n; i++) ae_kv(&res->kvs[i], 1, res->revision);
    ae.refreshing = 0;
    for (struct ae_res *r = ae.res; r; r = r->next) {
        struct as_data empty = {0};
        if (!r->exists && r->acme) acme_store_merge(r->acme, &empty, 1);
    }
    if (ae.lock != AE_LOCK_HELD) return; /* the read showed it lost */
    ae.lock = AE_LOCK_ACTIVE;
    log_info("acme", "%s held by this node (%s): it orders and renews the certificates",
             ae.lock_key, cl_node_name());
    for (struct ae_res *r = ae.res; r; r = r->next) acme_set_active(r->acme, 1);
    for (struct ae_res *r = ae.res; r; r = r->next)
        if (r->dirty) ae_save_kick(r);
}

/* Reads P/acme/ with the lock held (before ordering). */
static void ae_refresh(void)
{
    if (!ae_etc()) return;
    ae.lock_call = etc_get(ae.etc, ae.pfx, 1, 0, 0, ae_on_refresh, NULL);
    if (!ae.lock_call) ae_timer(ae.lock_ev, AE_RETRY_MS);
}

/* The lock's holder after a refused create: ours (a lock kept across a
 * leadership flap on the same lease) or another node's. */
static void ae_on_lock_read(void *arg, int err, const char *message, const struct etc_range *res)
{
    (void)arg;
    ae.lock_call = NULL;
    if (ae.lock != AE_LOCK_TAKING) return;
    ae.lock = AE_LOCK_NONE;
    if (err || !res) {
        log_warn("acme", "cannot read %s: %s (retrying)", ae.lock_key, message);
        ae_timer(ae.lock_ev, AE_RETRY_MS);
        return;
    }
    if (res->n == 1 && !strcmp(res->kvs[0].value, cl_node_name()) &&
        res->kvs[0].lease == cl_lease() && cl_lease() != 0) {
        ae.lock_rev = res->kvs[0].create_revision;
        ae.lock = AE_LOCK_HELD;
        if (!ae.leader) ae_lock_release(); /* stopped leading meanwhile */
        else ae_refresh();
        return;
    }
    if (res->n == 0) { /* gone between the txn and the read */
        ae_timer(ae.lock_ev, 0);
        return;
    }
    log_info("acme", "%s is held by %s: waiting for it", ae.lock_key, res->kvs[0].value);
    ae_timer(ae.lock_ev, AE_LOCK_POLL_MS);
}

/* The create txn answered. */
static void ae_on_lock_txn(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    (void)arg;
    ae.lock_call = NULL;
    if (ae.lock != AE_LOCK_TAKING) return;
    if (err) { /* outcome maybe unknown: the read below tells */
        log_warn("acme", "taking %s: %s", ae.lock_key, message);
        value = 0;
    }
    if (value == 1) {
        ae.lock_rev = revision;
        ae.lock = AE_LOCK_HELD;
        log_debug("acme", "%s taken at revision %lld", ae.lock_key, (long long)revision);
        if (!ae.leader) { /* stopped leading meanwhile: give it back */
            ae_lock_release();
            return;
        }
        ae_refresh();
        return;
    }
    ae.lock_call = etc_get(ae.etc, ae.lock_key, 0, 0, 0, ae_on_lock_read, NULL);
    if (!ae.lock_call) {
        ae.lock = AE_LOCK_NONE;
        ae_timer(ae.lock_ev, AE_RETRY_MS);
    }
}

/* Takes the lock when leading and not holding it. */
static void ae_lock_take(void)
{
    struct etc_cmp cmp;
    struct etc_op op;
    const char *name = cl_node_name();
    int64_t lease = cl_lease();

    if (!ae.leader || ae.lock != AE_LOCK_NONE || ae.lock_call || ae.release_rev || !ae_etc())
        return;
    if (!lease) { /* no node lease yet */
        ae_timer(ae.lock_ev, AE_RETRY_MS / 2);
        return;
    }
    memset(&cmp, 0, sizeof(cmp));
    cmp.key = ae.lock_key;
    cmp.target = ETC_CMP_VERSION;
    cmp.op = ETC_EQ;
    cmp.number = 0;
    memset(&op, 0, sizeof(op));
    op.type = ETC_OP_PUT;
    op.key = ae.lock_key;
    op.value = name;
    op.value_len = strlen(name);
    op.lease = lease;
    ae.lock = AE_LOCK_TAKING;
    ae.lock_call = etc_txn(ae.etc, &cmp, 1, &op, 1, NULL, 0, ae_on_lock_txn, NULL);
    if (!ae.lock_call) {
        ae.lock = AE_LOCK_NONE;
        ae_timer(ae.lock_ev, AE_RETRY_MS);
    }
}

static void ae_release_send(void);

/* The release txn ended: done (deleted, or not ours any more), or tried
 * again (a lock left on a live lease would stop every other leader). */
static void ae_on_release(void *arg, int err, const char *message, int64_t revision,
                          int64_t value)
{
    (void)arg;
    (void)revision;
    ae.lock_call = NULL;
    if (err) {
        log_warn("acme", "releasing %s: %s (retrying)", ae.lock_key, message);
        ae_timer(ae.lock_ev, AE_RETRY_MS);
        return;
    }
    if (value == 1) log_info("acme", "%s released", ae.lock_key);
    ae.release_rev = 0;
    if (ae.leader) ae_lock_take();
}

/* Deletes our lock (compare on its create revision). */
static void ae_release_send(void)
{
    struct etc_cmp cmp;
    struct etc_op op;

    if (!ae.release_rev || ae.lock_call || !ae_etc()) return;
    memset(&cmp, 0, sizeof(cmp));
    cmp.key = ae.lock_key;
    cmp.target = ETC_CMP_CREATE;
    cmp.op = ETC_EQ;
    cmp.number = ae.release_rev;
    memset(&op, 0, sizeof(op));
    op.type = ETC_OP_DELETE;
    op.key = ae.lock_key;
    ae.lock_call = etc_txn(ae.etc, &cmp, 1, &op, 1, NULL, 0, ae_on_release, NULL);
    if (!ae.lock_call) ae_timer(ae.lock_ev, AE_RETRY_MS);
}

/* Stops ordering and gives the lock back when it is ours.  A create txn
 * in flight is left to finish: its callback releases what it got. */
static void ae_lock_release(void)
{
    ae_pause_all();
    if (ae.lock == AE_LOCK_TAKING) return;
    if (ae.lock == AE_LOCK_HELD || ae.lock == AE_LOCK_ACTIVE) {
        etc_cancel(ae.lock_call); /* a refresh read */
        ae.lock_call = NULL;
        ae.release_rev = ae.lock_rev;
    }
    ae.lock = AE_LOCK_NONE;
    ae_release_send();
}

/* lock_ev: retry, poll, or a release to try again. */
static void ae_lock_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (ae.release_rev) {
        ae_release_send();
        return;
    }
    if (ae.lock == AE_LOCK_HELD && !ae.lock_call) {
        ae_refresh();
        return;
    }
    ae_lock_take();
}

/* cl_on_leader callback. */
static void ae_on_leader(int leader, void *arg)
{
    (void)arg;
    ae.leader = leader;
    if (leader) {
        ae_lock_take();
    } else {
        ae_lock_release();
    }
}

int ae_ordering(void)
{
    return ae.lock == AE_LOCK_ACTIVE;
}

/* ---------------------------------------------------------------- saves */

static void ae_on_save_txn(void *arg, int err, const char *message, int64_t revision,
                           int64_t value);

/* The section as etcd has it, read after a refused (or unknown) save:
 * merged into the client, then the save is tried again. */
static void ae_on_save_read(void *arg, int err, const char *message, const struct etc_range *res)
{
    struct ae_res *r = arg;
    int lock_seen = 0;

    r->call = NULL;
    if (err || !res) {
        log_warn("acme", "cannot read %s: %s (retrying)", r->key, message);
        ae_timer(r->retry_ev, AE_RETRY_MS);
        return;
    }
    r->exists = 0;
    r->mod = res->revision;
    for (size_t i = 0; i < res->n; i++) {
        const struct etc_kv *kv = &res->kvs[i];
        if (!strcmp(kv->key, ae.lock_key)) {
            lock_seen = kv->create_revision == ae.lock_rev;
        } else if (!strcmp(kv->key, r->key)) {
            r->exists = 1;
            r->mod = kv->mod_revision;
            ae_section(r->name, strlen(r->name), kv->value, kv->value_len, kv->mod_revision);
        }
    }
    if (!lock_seen && (ae.lock == AE_LOCK_HELD || ae.lock == AE_LOCK_ACTIVE)) {
        log_warn("acme", "%s: the lock is no longer this node's: not saved", r->key);
        ae.lock = AE_LOCK_NONE;
        ae_pause_all();
        if (ae.leader) ae_timer(ae.lock_ev, 0);
    }
    ae_save_kick(r);
}

/* Reads the lock and the section (one range over P/acme/, values kept
 * small by the challenges' size; the sections are what we write). */
static void ae_save_check(struct ae_res *r)
{
    r->call = etc_get(ae.etc, ae.pfx, 1, 0, 0, ae_on_save_read, r);
    if (!r->call) ae_timer(r->retry_ev, AE_RETRY_MS);
}

/* The save txn answered. */
static void ae_on_save_txn(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    struct ae_res *r = arg;

    r->call = NULL;
    if (!err && value == 1) {
        if (revision > r->mod) {
            r->mod = revision;
            r->exists = 1;
        }
        r->tries = 0;
        log_info("acme", "%s saved (revision %lld)", r->key, (long long)revision);
        if (r->dirty) ae_save_kick(r);
        return;
    }
    r->dirty = 1; /* write it again once the state is known */
    if (err) log_warn("acme", "saving %s: %s", r->key, message);
    else log_debug("acme", "saving %s: compare failed, reading it", r->key);
    if (++r->tries == AE_SAVE_WARN)
        log_error("acme", "%s: not saved after %d attempts, still trying", r->key, r->tries);
    if (!err && r->tries <= 3) {
        ae_save_check(r); /* read, merge, write again */
    } else { /* unknown outcome, or again and again: the timer reads first */
        int64_t ms = (int64_t)AE_RETRY_MS << (r->tries < 6 ? r->tries - 1 : 5);
        ae_timer(r->retry_ev, ms < AE_SAVE_MAX_MS ? ms : AE_SAVE_MAX_MS);
    }
}

/* Writes the client's section if asked and possible: lock held, nothing
 * in flight.  Fenced on the lock's create revision and on the section's
 * mod revision. */
static void ae_save_kick(struct ae_res *r)
{
    struct etc_cmp cmp[2];
    struct etc_op op;
    char *text;

    if (!r->dirty || r->call || !r->acme || !ae_etc()) return;
    if (ae.lock != AE_LOCK_ACTIVE && ae.lock != AE_LOCK_HELD) {
        log_warn("acme", "%s: not saved, this node does not hold %s", r->key, ae.lock_key);
        r->dirty = 0;
        r->tries = 0;
        return;
    }
    text = as_section_dump(acme_store_data(r->acme));
    if (!text) {
        log_error("acme", "%s: out of memory", r->key);
        return;
    }
    memset(cmp, 0, sizeof(cmp));
    cmp[0].key = ae.lock_key;
    cmp[0].target = ETC_CMP_CREATE;
    cmp[0].op = ETC_EQ;
    cmp[0].number = ae.lock_rev;
    cmp[1].key = r->key;
    cmp[1].op = ETC_EQ;
    if (r->exists) {
        cmp[1].target = ETC_CMP_MOD;
        cmp[1].number = r->mod;
    } else {
        cmp[1].target = ETC_CMP_VERSION;
        cmp[1].number = 0;
    }
    memset(&op, 0, sizeof(op));
    op.type = ETC_OP_PUT;
    op.key = r->key;
    op.value = text;
    op.value_len = strlen(text);
    r->dirty = 0;
    r->call = etc_txn(ae.etc, cmp, 2, &op, 1, NULL, 0, ae_on_save_txn, r);
    free(text);
    if (!r->call) {
        r->dirty = 1;
        ae_timer(r->retry_ev, AE_RETRY_MS);
    }
}

/* retry_ev of a resolver: after an unknown outcome, read then save. */
static void ae_save_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ae_res *r = arg;

    (void)fd;
    (void)what;
    if (r->call || !ae_etc()) return;
    if (r->tries > 0) ae_save_check(r);
    else ae_save_kick(r);
}

/* acme_storage.save of a resolver. */
static int ae_save(void *arg, const struct as_data *d)
{
    struct ae_res *r = arg;

    (void)d; /* written from acme_store_data when the txn starts */
    r->dirty = 1;
    if (!ae_etc()) {
        log_warn("acme", "%s: etcd is not reachable yet, saved later", r->key);
        return 0;
    }
    ae_save_kick(r);
    return 0;
}

/* ---------------------------------------------------------------- challenges */

/* Monotonic milliseconds. */
static uint64_t ae_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Frees a challenge (unlinked by the caller). */
static void ae_chal_free(struct ae_chal *c)
{
    etc_cancel(c->call);
    if (c->wait) event_free(c->wait);
    for (size_t i = 0; i < c->nacks; i++) free(c->acks[i].node);
    free(c->acks);
    free(c->id);
    free(c->key);
    free(c);
}

/* Unlinks and frees c. */
static void ae_chal_drop(struct ae_chal *c)
{
    for (struct ae_chal **pp = &ae.chals; *pp; pp = &(*pp)->next) {
        if (*pp != c) continue;
        *pp = c->next;
        break;
    }
    c->call = NULL;
    ae_chal_free(c);
}

/* The delete of a cleared challenge ended. */
static void ae_on_chal_del(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    struct ae_chal *c = arg;

    (void)revision;
    (void)value;
    if (err) log_warn("acme", "deleting %s: %s (its lease will)", c->key, message);
    ae_chal_drop(c);
}

/* Deletes a cleared challenge's key, then frees it. */
static void ae_chal_delete(struct ae_chal *c)
{
    c->deleting = 1;
    c->call = ae_etc() ? etc_delete(ae.etc, c->key, 0, ae_on_chal_del, c) : NULL;
    if (!c->call) ae_chal_drop(c);
}

/* Appends name to the list in buf (cap bytes, *len used), ", "-separated,
 * truncated at cap. */
static void ae_list_add(char *buf, size_t cap, size_t *len, const char *name)
{
    int n = snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", name);

    if (n > 0) *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* 1 when node acknowledged c's put (its revision). */
static int ae_chal_acked_by(const struct ae_chal *c, const char *node)
{
    for (size_t i = 0; i < c->nacks; i++)
        if (c->acks[i].rev == c->put_rev && !strcmp(c->acks[i].node, node)) return 1;
    return 0;
}

/* Decides for a published challenge: the CA is told (acme_challenge_ready)
 * once every live node — the P/nodes/ keys of a read at or after the put
 * — acknowledged the put (INFO line), or once AE_ACK_MAX_MS passed since
 * the put (WARN naming the nodes that did not).  Returns 1 when it told
 * the client (c may be gone then: the client may clear it at once), else
 * 0. */
static int ae_chal_check(struct ae_chal *c)
{
    char missing[512], acked[512];
    size_t ml = 0, al = 0, nok = 0, nmiss = 0;
    uint64_t waited;
    int capped, listed;
    struct acme *a;

    if (!c->put_done || c->ready || c->cleared) return 0;
    waited = ae_now_ms() - c->put_ms;
    capped = waited >= AE_ACK_MAX_MS;
    listed = ae.nodes_rev >= c->put_rev;
    if (!listed && !capped) return 0;
    missing[0] = acked[0] = '\0';
    for (size_t i = 0; i < ae.nnodes; i++) {
        if (ae_chal_acked_by(c, ae.nodes[i])) {
            nok++;
            ae_list_add(acked, sizeof(acked), &al, ae.nodes[i]);
        } else {
            nmiss++;
            ae_list_add(missing, sizeof(missing), &ml, ae.nodes[i]);
        }
    }
    if ((nmiss || !nok || !listed) && !capped) return 0;
    if (!listed)
        log_warn("acme", "%s: %s could not be read within %d s: the CA validates without "
                 "knowing which nodes have the challenge", c->key, ae.nodes_pfx,
                 AE_ACK_MAX_MS / 1000);
    else if (nmiss || !nok)
        log_warn("acme", "%s: not acknowledged by %s within %d s (acknowledged by: %s): the CA "
                 "validates anyway and may fail on those nodes", c->key,
                 nmiss ? missing : "(no live node listed)", AE_ACK_MAX_MS / 1000,
                 nok ? acked : "none");
    else
        log_info("acme", "%s: all %zu live node(s) acknowledged it (%s) in %llu ms: the CA "
                 "validates", c->key, nok, acked, (unsigned long long)waited);
    c->ready = 1;
    event_del(c->wait);
    a = c->r->acme;
    if (a) acme_challenge_ready(a, c->id, 1);
    return 1;
}

/* Checks every published challenge (from the start again after each one
 * that was told, as the list may have changed). */
static void ae_chal_check_all(void)
{
    int again = 1;

    while (again) {
        again = 0;
        for (struct ae_chal *c = ae.chals; c; c = c->next) {
            if (!ae_chal_check(c)) continue;
            again = 1;
            break;
        }
    }
}

static void ae_nodes_read(void);

/* The keys-only read of P/nodes/ answered: the live node list, then the
 * waiting challenges checked (read again at once when a challenge was put
 * after the revision of this answer). */
static void ae_on_nodes(void *arg, int err, const char *message, const struct etc_range *res)
{
    size_t pl = strlen(ae.nodes_pfx), n = 0;
    char **v;
    int again = 0;

    (void)arg;
    ae.nodes_call = NULL;
    if (err || !res) { /* the waiting challenges' ticks read again */
        log_warn("acme", "cannot read %s: %s", ae.nodes_pfx, message);
        return;
    }
    v = calloc(res->n ? res->n : 1, sizeof(*v));
    if (!v) return;
    for (size_t i = 0; i < res->n; i++) {
        const struct etc_kv *kv = &res->kvs[i];
        if (kv->key_len <= pl || memcmp(kv->key, ae.nodes_pfx, pl) != 0 ||
            strchr(kv->key + pl, '/'))
            continue;
        v[n] = strdup(kv->key + pl);
        if (v[n]) n++;
    }
    for (size_t i = 0; i < ae.nnodes; i++) free(ae.nodes[i]);
    free(ae.nodes);
    ae.nodes = v;
    ae.nnodes = n;
    ae.nodes_rev = res->revision;
    for (struct ae_chal *c = ae.chals; c; c = c->next)
        if (c->put_done && !c->ready && !c->cleared && c->put_rev > ae.nodes_rev) again = 1;
    if (again) ae_nodes_read();
    ae_chal_check_all();
}

/* Reads the names under P/nodes/ (keys only) unless a read runs. */
static void ae_nodes_read(void)
{
    if (ae.nodes_call || !ae_etc()) return;
    ae.nodes_call = etc_get(ae.etc, ae.nodes_pfx, 1, 0, 1, ae_on_nodes, NULL);
}

/* wait timer of a published challenge: P/nodes/ read again, the cap. */
static void ae_chal_tick(evutil_socket_t fd, short what, void *arg)
{
    struct ae_chal *c = arg;

    (void)fd;
    (void)what;
    if (c->ready || c->cleared) return;
    ae_timer(c->wait, AE_ACK_POLL_MS);
    ae_nodes_read();
    ae_chal_check(c);
}

/* An acknowledgement key seen by the mirror (rest: "KIND/ID/NODE"; value:
 * the decimal revision acknowledged, NULL when deleted): recorded on the
 * challenge KIND/ID when this node publishes it, which is then checked. */
static void ae_ack_seen(const char *rest, const char *value, size_t len)
{
    const char *slash = strrchr(rest, '/'), *node;
    size_t base = ae.pfxlen + strlen("challenges/"), idl, i;
    struct ae_chal *c;
    char num[24], *end;
    long long rev;

    if (!slash || slash == rest || !slash[1]) return;
    node = slash + 1;
    idl = (size_t)(slash - rest);
    for (c = ae.chals; c; c = c->next) {
        if (c->cleared || strlen(c->key) != base + idl) continue;
        if (!memcmp(c->key + base, rest, idl)) break;
    }
    if (!c) return;
    for (i = 0; i < c->nacks && strcmp(c->acks[i].node, node); i++) {}
    if (!value) {
        if (i == c->nacks) return;
        free(c->acks[i].node);
        c->acks[i] = c->acks[--c->nacks];
        log_debug("acme", "%s: acknowledgement of %s withdrawn", c->key, node);
        return;
    }
    if (len == 0 || len >= sizeof(num)) return;
    memcpy(num, value, len);
    num[len] = '\0';
    rev = strtoll(num, &end, 10);
    if (*end || rev <= 0) return;
    if (i == c->nacks) {
        struct ae_nack *n;
        char *name;
        if (c->nacks >= AE_MAX_MIRROR) return;
        n = realloc(c->acks, (c->nacks + 1) * sizeof(*n));
        if (!n) return;
        c->acks = n;
        name = strdup(node);
        if (!name) return;
        c->acks[c->nacks].node = name;
        c->nacks++;
    }
    c->acks[i].rev = rev;
    log_debug("acme", "%s: acknowledged by %s (revision %lld)", c->key, node, rev);
    ae_chal_check(c);
}

/* The challenge's put ended: wait for the acknowledgements. */
static void ae_on_chal_put(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    struct ae_chal *c = arg;

    (void)value;
    c->call = NULL;
    if (c->cleared) { /* cleared while the put ran */
        ae_chal_delete(c);
        return;
    }
    if (err) {
        log_warn("acme", "publishing %s: %s", c->key, message);
        if (c->r->acme) acme_challenge_ready(c->r->acme, c->id, 0); /* clears it */
        return;
    }
    c->put_done = 1;
    c->put_rev = revision;
    c->put_ms = ae_now_ms();
    log_debug("acme", "%s published (revision %lld): waiting for the live nodes to acknowledge "
              "it", c->key, (long long)revision);
    ae_timer(c->wait, AE_ACK_POLL_MS);
    ae_nodes_read();
    ae_chal_check(c);
}

/* ---------------------------------------------------------------- acknowledgements */

/* Frees a (our) acknowledgement: unlinked, its call cancelled. */
static void ae_ack_free(struct ae_ack *a)
{
    for (struct ae_ack **pp = &ae.acks; *pp; pp = &(*pp)->next) {
        if (*pp != a) continue;
        *pp = a->next;
        break;
    }
    etc_cancel(a->call);
    if (a->retry_ev) event_free(a->retry_ev);
    free(a->key);
    free(a);
}

static void ae_ack_send(struct ae_ack *a);

/* An acknowledgement's put or delete ended.  A failed put (say, on a
 * lease that expired while this node was stalled) is tried again
 * AE_RETRY_MS later, AE_ACK_TRIES times at most, with the lease of then;
 * a failed delete is not (the lease removes the key with the node). */
static void ae_on_ack_done(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    struct ae_ack *a = arg;

    (void)revision;
    (void)value;
    a->call = NULL;
    if (err) {
        log_warn("acme", "%s %s: %s", a->sent ? "writing" : "deleting", a->key, message);
        if (a->sent && a->sent == a->want && ++a->tries < AE_ACK_TRIES && a->retry_ev) {
            a->sent = 0;
            ae_timer(a->retry_ev, AE_RETRY_MS);
            return;
        }
    }
    ae_ack_send(a);
}

/* retry_ev of an acknowledgement. */
static void ae_ack_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ae_ack_send(arg);
}

/* Sends the latest wish of a (put want, or delete when 0) unless a call
 * runs or etcd has it already; frees a once deleted. */
static void ae_ack_send(struct ae_ack *a)
{
    int64_t lease = cl_lease();

    if (a->call) return;
    if (a->retry_ev) event_del(a->retry_ev);
    if (a->want == a->sent || !ae_etc() || (a->want && !lease)) {
        if (a->want && a->want != a->sent)
            log_warn("acme", "%s: no etcd client or lease: not acknowledged", a->key);
        if (!a->want) ae_ack_free(a);
        return;
    }
    if (a->want) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%lld", (long long)a->want);
        a->call = etc_put(ae.etc, a->key, num, (size_t)n, lease, ae_on_ack_done, a);
    } else {
        a->call = etc_delete(ae.etc, a->key, 0, ae_on_ack_done, a);
    }
    a->sent = a->want;
    if (!a->call && !a->want) ae_ack_free(a);
}

/* The mirror installed the challenge rest ("KIND/ID") at revision rev
 * (acknowledge it), or it is gone or not installed (rev 0: withdraw our
 * acknowledgement). */
static void ae_ack_want(const char *rest, int64_t rev)
{
    struct ae_ack *a;
    char *key;

    if (asprintf(&key, "%sacks/%s/%s", ae.pfx, rest, cl_node_name()) < 0) return;
    for (a = ae.acks; a && strcmp(a->key, key); a = a->next) {}
    if (!a) {
        if (!rev || !(a = calloc(1, sizeof(*a)))) {
            free(key);
            return;
        }
        a->key = key;
        a->retry_ev = evtimer_new(ae.base, ae_ack_timer, a);
        a->next = ae.acks;
        ae.acks = a;
    } else {
        free(key);
    }
    if (a->want != rev) a->tries = 0;
    a->want = rev;
    if (rev) log_debug("acme", "acknowledging %schallenges/%s (revision %lld): installed here",
                       ae.pfx, rest, (long long)rev);
    ae_ack_send(a);
}

/* Publishes a challenge: key P/acme/challenges/KIND/ID = value on the
 * node lease.  1 (acme_challenge_ready follows) or -1. */
static int ae_chal_set(struct ae_res *r, int kind, const char *id, const char *value,
                       size_t len)
{
    struct ae_chal *c;
    int64_t lease = cl_lease();

    if (!r || !ae_etc() || !lease || strchr(id, '/')) return -1;
    c = calloc(1, sizeof(*c));
    if (!c) return -1;
    c->r = r;
    c->kind = kind;
    c->id = strdup(id);
    if (!c->id || asprintf(&c->key, "%schallenges/%s/%s", ae.pfx, kind == AE_HTTP ? "http" : "alpn",
                           id) < 0) {
        c->key = NULL;
        ae_chal_free(c);
        return -1;
    }
    c->wait = evtimer_new(ae.base, ae_chal_tick, c);
    c->call = c->wait ? etc_put(ae.etc, c->key, value, len, lease, ae_on_chal_put, c) : NULL;
    if (!c->call) {
        ae_chal_free(c);
        return -1;
    }
    c->next = ae.chals;
    ae.chals = c;
    log_debug("acme", "publishing %s", c->key);
    return 1;
}

/* Withdraws the challenge (kind, id) of r. */
static void ae_chal_clear(struct ae_res *r, int kind, const char *id)
{
    for (struct ae_chal *c = ae.chals; c; c = c->next) {
        if (c->r != r || c->kind != kind || c->cleared || strcmp(c->id, id) != 0) continue;
        c->cleared = 1;
        if (c->wait) event_del(c->wait);
        if (!c->call) ae_chal_delete(c); /* else after the put */
        return;
    }
}

int ae_http01_set(struct ae_res *r, const char *token, const char *key_auth)
{
    return ae_chal_set(r, AE_HTTP, token, key_auth, strlen(key_auth));
}

void ae_http01_clear(struct ae_res *r, const char *token)
{
    ae_chal_clear(r, AE_HTTP, token);
}

int ae_alpn01_set(struct ae_res *r, const char *domain, const char *cert_pem, const char *key_pem)
{
    json_t *j = json_pack("{ssss}", "certificate", cert_pem, "key", key_pem);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = text ? ae_chal_set(r, AE_ALPN, domain, text, strlen(text)) : -1;

    json_decref(j);
    free(text);
    return rc;
}

void ae_alpn01_clear(struct ae_res *r, const char *domain)
{
    ae_chal_clear(r, AE_ALPN, domain);
}

/* ---------------------------------------------------------------- lifecycle */

struct ae_res *ae_resolver(const char *name, struct acme_storage *st)
{
    struct ae_res *r;

    memset(st, 0, sizeof(*st));
    if (!name || !*name || strchr(name, '/') || !strcmp(name, "lock") ||
        !strcmp(name, "challenges") || !strcmp(name, "acks")) {
        log_error("acme", "resolver \"%s\": this name cannot be stored in etcd (no '/', not "
                  "\"lock\", \"challenges\" or \"acks\")", name ? name : "");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->name = strdup(name);
    if (!r->name || asprintf(&r->key, "%s/acme/%s", cl_prefix(), name) < 0) {
        free(r->name);
        free(r);
        return NULL;
    }
    r->retry_ev = ae.base ? evtimer_new(ae.base, ae_save_timer, r) : NULL;
    r->next = ae.res;
    ae.res = r;
    st->arg = r;
    st->save = ae_save;
    return r;
}

void ae_attach(struct ae_res *r, struct acme *a)
{
    if (!r) return;
    r->acme = a;
    if (a && ae.lock == AE_LOCK_ACTIVE) acme_set_active(a, 1);
}

/* init_ev: waits until the cluster's etcd client exists. */
static void ae_init_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!cl_etcd()) {
        ae_timer(ae.init_ev, 100);
        return;
    }
    ae.etc = cl_etcd();
    ae_read_start();
    if (cl_role() == CL_CONTROLLER && cl_is_leader() && !ae.leader) ae_on_leader(1, NULL);
}

int ae_start(struct event_base *base, const struct ae_hooks *h)
{
    if (ae.started) return 0;
    ae.base = base;
    if (h) ae.hooks = *h;
    if (asprintf(&ae.pfx, "%s/acme/", cl_prefix()) < 0) {
        ae.pfx = NULL;
        return -1;
    }
    if (asprintf(&ae.lock_key, "%slock", ae.pfx) < 0) {
        ae.lock_key = NULL;
        free(ae.pfx);
        ae.pfx = NULL;
        return -1;
    }
    ae.pfxlen = strlen(ae.pfx);
    if (asprintf(&ae.nodes_pfx, "%s/nodes/", cl_prefix()) < 0) {
        ae.nodes_pfx = NULL;
        return -1;
    }
    ae.init_ev = evtimer_new(base, ae_init_timer, NULL);
    ae.read_ev = evtimer_new(base, ae_read_timer, NULL);
    ae.lock_ev = evtimer_new(base, ae_lock_timer, NULL);
    if (!ae.init_ev || !ae.read_ev || !ae.lock_ev) return -1;
    for (struct ae_res *r = ae.res; r; r = r->next)
        if (!r->retry_ev) r->retry_ev = evtimer_new(base, ae_save_timer, r);
    ae.started = 1;
    if (cl_role() == CL_CONTROLLER) cl_on_leader(ae_on_leader, NULL);
    ae_timer(ae.init_ev, 0);
    return 0;
}

void ae_stop(void)
{
    int live = ae_etc() != NULL; /* else the client (and our calls) are gone */
    struct ae_chal *c, *cn;
    struct ae_res *r, *rn;

    if (live) {
        etc_watch_cancel(ae.watch);
        etc_cancel(ae.read);
        etc_cancel(ae.lock_call);
        etc_cancel(ae.nodes_call);
    }
    while (ae.acks) {
        if (!live) ae.acks->call = NULL;
        ae_ack_free(ae.acks);
    }
    for (size_t i = 0; i < ae.nnodes; i++) free(ae.nodes[i]);
    free(ae.nodes);
    free(ae.nodes_pfx);
    for (c = ae.chals; c; c = cn) {
        cn = c->next;
        if (!live) c->call = NULL;
        ae_chal_free(c);
    }
    for (r = ae.res; r; r = rn) {
        rn = r->next;
        if (live) etc_cancel(r->call);
        if (r->retry_ev) event_free(r->retry_ev);
        free(r->name);
        free(r->key);
        free(r);
    }
    for (size_t i = 0; i < ae.nseen; i++) free(ae.seen[i].key);
    free(ae.seen);
    if (ae.init_ev) event_free(ae.init_ev);
    if (ae.read_ev) event_free(ae.read_ev);
    if (ae.lock_ev) event_free(ae.lock_ev);
    free(ae.pfx);
    free(ae.lock_key);
    memset(&ae, 0, sizeof(ae));
}
