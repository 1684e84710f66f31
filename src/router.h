/*
 * router — the per-entry-point routing table: exact hosts in a hash table,
 * wildcard hosts by suffix, then the host-less rules, all walked in one
 * global priority order.  Module prefix: rt_.
 *
 * Built on the control thread as part of a snapshot; read-only afterwards,
 * matched concurrently from every worker thread.
 */
#ifndef RELAIS_ROUTER_H
#define RELAIS_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "rule.h"

/** One routable entry (a router, as far as matching is concerned). */
struct rt_entry {
    const rule_t *rule; /* compiled rule (borrowed) */
    int64_t priority;   /* higher first */
    const char *name;   /* tie-break, ascending */
    void *data;         /* returned on match (the snapshot's router) */
};

struct rt_table;

/** Builds a table over entries[0..n) (copied; rules borrowed).  NULL on
 *  allocation failure. */
struct rt_table *rt_table_new(const struct rt_entry *entries, size_t n);

/** Frees; NULL is a no-op. */
void rt_table_free(struct rt_table *t);

/** The data of the first entry, in priority order, whose rule matches req;
 *  NULL when none.  req->host is looked up in the indexes (any case). */
void *rt_match(const struct rt_table *t, const struct rule_req *req);

/** Number of entries. */
size_t rt_size(const struct rt_table *t);

#endif /* RELAIS_ROUTER_H */
