/*
 * mwsource — helpers shared by the client-address middlewares (ipAllowList,
 * ipDenyList, rateLimit, inFlightReq), compiled into each of their plugins.
 * Module prefix: mws_.
 *
 *  - IP address lists (sourceRange, excludedIPs): plain IPv4/IPv6 addresses
 *    and CIDRs; IPv4-mapped IPv6 addresses count as IPv4, as in Traefik;
 *  - Traefik's ipStrategy (depth, excludedIPs, ipv6Subnet) choosing the
 *    client address from X-Forwarded-For or the connection;
 *  - Traefik's sourceCriterion (ipStrategy, requestHeaderName, requestHost)
 *    naming the source a request is counted against;
 *  - a bounded, sharded, thread-safe table of per-source entries (token
 *    buckets, in-flight counters) with LRU eviction of idle entries;
 *  - option checking with key paths, Go's status texts, Go's duration text.
 *
 * Built only against the SDK header.  Configuration functions run on the
 * control thread; the request-side functions on any worker thread.
 */
#ifndef MWSOURCE_H
#define MWSOURCE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

/** Cap on the entries of one address list. */
#define MWS_LIST_MAX 4096u
/** Cap on the text of a source key (longer header values are cut). */
#define MWS_KEY_MAX 1024u
/** Size of a buffer holding an address in text form. */
#define MWS_IP_TEXT 64u

/** One address or network of a list. */
struct mws_net {
    uint8_t addr[16]; /* network address, masked (IPv4: first 4 bytes) */
    unsigned bits;    /* prefix length (32 / 128 for a plain address) */
    int v4;           /* 1: an IPv4 network, 0: IPv6 */
};

/** A list of addresses and networks (sourceRange, excludedIPs). */
struct mws_iplist {
    struct mws_net *v; /* the entries (malloc), NULL when empty */
    size_t n;          /* how many */
};

/** How the client address is chosen (Traefik's ipStrategy). */
enum mws_strategy_kind {
    MWS_STRAT_REMOTE = 0, /* the connection's address */
    MWS_STRAT_DEPTH = 1,  /* X-Forwarded-For, depth-th from the right */
    MWS_STRAT_POOL = 2    /* X-Forwarded-For, first from the right not in
                             excludedIPs */
};

/** A parsed ipStrategy. */
struct mws_strategy {
    int kind;                   /* enum mws_strategy_kind */
    int depth;                  /* MWS_STRAT_DEPTH: depth (>= 1) */
    struct mws_iplist excluded; /* MWS_STRAT_POOL: excludedIPs */
    int subnet;                 /* ipv6Subnet (1..128), or 0 when unset */
};

/** What a request is grouped by (Traefik's sourceCriterion). */
enum mws_source_kind {
    MWS_SRC_IP = 0,     /* ipStrategy */
    MWS_SRC_HEADER = 1, /* requestHeaderName */
    MWS_SRC_HOST = 2    /* requestHost */
};

/** A parsed sourceCriterion. */
struct mws_source {
    int kind;                /* enum mws_source_kind */
    struct mws_strategy ip;  /* MWS_SRC_IP: the strategy */
    char *header;            /* MWS_SRC_HEADER: header name (malloc) */
};

/** The payload of a table entry (one per source). */
union mws_payload {
    struct {
        double tokens;   /* tokens in the bucket (may be negative) */
        int64_t last_ns; /* monotonic time tokens was computed at */
    } bucket;            /* rateLimit */
    int64_t count;       /* inFlightReq: requests in flight */
};

/** One source in a table. */
struct mws_entry {
    struct mws_entry *chain;    /* next entry of the hash bucket */
    struct mws_entry *lru_prev; /* more recently used neighbour */
    struct mws_entry *lru_next; /* less recently used neighbour */
    uint64_t hash;              /* hash of the key */
    int64_t used_ns;            /* last lookup, monotonic ns */
    union mws_payload p;        /* the user's data */
    size_t klen;                /* key length */
    char key[];                 /* key bytes (not NUL-terminated) */
};

/** One shard of a table: a lock and its part of the entries. */
struct mws_shard {
    pthread_mutex_t lock;      /* guards everything below */
    struct mws_entry **bucket; /* hash buckets (nbuckets) */
    size_t nbuckets;           /* power of two */
    size_t n;                  /* entries held */
    size_t cap;                /* entries allowed */
    struct mws_entry *lru;     /* most recently used entry */
    struct mws_entry *lru_tail;/* least recently used entry */
    char pad[64];              /* keeps shards on separate cache lines */
};

/** Number of shards of a table. */
#define MWS_SHARDS 64u

/** A table of per-source entries shared by the worker threads. */
struct mws_table {
    struct mws_shard shard[MWS_SHARDS]; /* the shards */
    int64_t idle_ns;   /* entries unused this long are dropped; 0: never */
    int evict_full;    /* 1: a full shard drops its LRU entry for a new
                          one; 0: the lookup fails instead */
    int ready;         /* init succeeded (mws_table_release may run) */
};

/* ---- configuration (control thread) ------------------------------------ */

/** Reports every key of map node not among the n names of known
 *  (case-insensitive).  0, or -1 after cfg_error. */
int mws_check_keys(const relais_host *host, const relais_cfg *node,
                   const char *const *known, size_t n);

/** Reads parent.key, a list of addresses and CIDRs (or one string of
 *  comma-separated ones), into *out.  Absent/null leaves *out empty and
 *  returns 0 unless required (then an error).  0, or -1 after cfg_error. */
int mws_iplist_parse(const relais_host *host, const relais_cfg *parent,
                     const char *key, int required, struct mws_iplist *out);
/** Frees the entries of l (l itself is the caller's). */
void mws_iplist_release(struct mws_iplist *l);

/** Reads the map parent.key as an ipStrategy into *out (zeroed first; an
 *  absent key gives MWS_STRAT_REMOTE).  *present is set to 1 when the key
 *  holds a map.  0, or -1 after cfg_error. */
int mws_strategy_parse(const relais_host *host, const relais_cfg *parent,
                       const char *key, struct mws_strategy *out,
                       int *present);
/** Frees what a strategy holds. */
void mws_strategy_release(struct mws_strategy *s);

/** Reads parent.sourceCriterion into *out; when none of its three options
 *  is set the kind is dflt (MWS_SRC_IP with the connection's address, or
 *  MWS_SRC_HOST).  0, or -1 after cfg_error. */
int mws_source_parse(const relais_host *host, const relais_cfg *parent,
                     int dflt, struct mws_source *out);
/** Frees what a source criterion holds. */
void mws_source_release(struct mws_source *s);

/* ---- requests (worker threads) ----------------------------------------- */

/** 1 when text[0..len) is an address (an optional ":port" or "[v6]:port"
 *  is ignored, as Go's SplitHostPort does) inside one entry of l. */
int mws_iplist_match(const struct mws_iplist *l, const char *text,
                     size_t len);

/** Writes the client address that s selects for req into out (cap bytes,
 *  NUL-terminated; "" when the strategy yields none) and returns its
 *  length. */
size_t mws_strategy_ip(const relais_host *host, const struct mws_strategy *s,
                       relais_req *req, char *out, size_t cap);

/** The source key of req: *key points into buf (cap >= MWS_IP_TEXT) or
 *  into host-owned memory valid during the callback; returns its length
 *  (0 for an empty source, which is a source like any other). */
size_t mws_source_key(const relais_host *host, const struct mws_source *s,
                      relais_req *req, char *buf, size_t cap,
                      const char **key);

/* ---- the table (init/release on the control thread) -------------------- */

/** Prepares t for at most max_entries entries (spread over the shards).
 *  0, or -1 when out of memory. */
int mws_table_init(struct mws_table *t, size_t max_entries, int64_t idle_ns,
                   int evict_full);
/** Frees every entry and the shards.  Safe on a zeroed table. */
void mws_table_release(struct mws_table *t);
/** Any thread.  Finds (or, when create, adds with a zeroed payload and
 *  *created = 1) the entry of key and returns it with its shard locked
 *  (*sh); the caller changes the payload and calls mws_table_unlock.
 *  Returns NULL, with nothing locked, when the entry is absent and not
 *  created, or the shard is full (evict_full 0) or out of memory. */
struct mws_entry *mws_table_get(struct mws_table *t, const char *key,
                                size_t klen, int64_t now_ns, int create,
                                int *created, struct mws_shard **sh);
/** Removes e from its locked shard and frees it. */
void mws_table_remove(struct mws_shard *sh, struct mws_entry *e);
/** Unlocks a shard that mws_table_get returned. */
void mws_table_unlock(struct mws_shard *sh);
/** Locks the shard of an entry the caller knows is alive (it holds a
 *  count in it). */
void mws_table_lock(struct mws_shard *sh);

/* ---- misc -------------------------------------------------------------- */

/** Go's http.StatusText(code), or NULL for a code Go does not know. */
const char *mws_status_text(int code);
/** Writes Go's time.Duration.String() of ns into out (cap >= 32). */
void mws_go_duration(int64_t ns, char *out, size_t cap);
/** Monotonic clock in nanoseconds (any thread). */
int64_t mws_now_ns(void);

#endif /* MWSOURCE_H */
