/*
 * inflightreq — Traefik's inFlightReq middleware (config key
 * "inFlightReq").  Module prefix: ifr_.
 *
 * Counts the requests in flight per source (sourceCriterion; by default
 * requestHost, as in Traefik) across every worker thread; a request that
 * finds `amount` requests of its source already in flight is answered 429
 * with body "max connections reached: AMOUNT" (oxy's connlimit text, which
 * Traefik uses).
 *
 *   http:
 *     middlewares:
 *       limit:
 *         inFlightReq:
 *           amount: 10
 *           sourceCriterion: {ipStrategy: {depth: 1}}
 *
 * A request counts from on_request until the host calls on_response for it
 * (the response head, or the local answer of a later middleware, or the
 * 502/504 the host makes).  Traefik counts until the whole response body
 * was sent; the SDK has no callback at the end of the exchange, see
 * the notes in the report of this plugin.  The counters live in a
 * sharded table (mwsource.c) under one lock per shard; a source whose
 * count falls to 0 is dropped, so the table only holds sources with
 * requests in flight (65536 sources at most; beyond, 429).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwsource.h"

/** Sources with requests in flight at most. */
#define IFR_MAX_SOURCES 65536u
/** Cap on amount. */
#define IFR_MAX_AMOUNT 1000000000ll

/** One configured instance; the table is shared by every worker thread,
 *  the rest is read-only after create. */
struct ifr_inst {
    const relais_host *host;  /* host function table */
    struct mws_source source; /* sourceCriterion */
    int64_t amount;           /* requests in flight allowed per source */
    char body[48];            /* "max connections reached: AMOUNT" */
    struct mws_table table;   /* counters of the sources in flight */
};

/** What a counted request remembers (in the request's memory). */
struct ifr_ctx {
    struct mws_shard *sh; /* shard of the entry */
    struct mws_entry *e;  /* the source's counter; alive while counted */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void ifr_destroy(void *inst)
{
    struct ifr_inst *f = inst;

    if (!f) return;
    mws_source_release(&f->source);
    mws_table_release(&f->table);
    free(f);
}

/**
 * Control thread.  Reads amount (required, >= 1) and sourceCriterion;
 * reports every problem with its key path.  0 and *inst set, or -1.
 */
static int ifr_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"amount", "sourceCriterion"};
    struct ifr_inst *f;
    int64_t amount = 0;
    int rc = 0, r;

    (void)name;
    f = calloc(1, sizeof(*f));
    if (!f) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    f->host = host;
    if (host->cfg_type(cfg) != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, NULL, "expected a map (amount, sourceCriterion)");
        goto fail;
    }
    rc |= mws_check_keys(host, cfg, keys, sizeof(keys) / sizeof(keys[0]));
    r = host->cfg_int(cfg, "amount", &amount);
    if (r == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (r == RELAIS_CFG_MISSING) {
        host->cfg_error(cfg, "amount", "required: the requests in flight allowed per source");
        rc = -1;
    } else if (amount < 1 || amount > IFR_MAX_AMOUNT) {
        host->cfg_error(cfg, "amount", "must be between 1 and %lld", IFR_MAX_AMOUNT);
        rc = -1;
    }
    rc |= mws_source_parse(host, cfg, MWS_SRC_HOST, &f->source);
    if (rc) goto fail;
    f->amount = amount;
    snprintf(f->body, sizeof(f->body), "max connections reached: %lld", (long long)amount);
    if (mws_table_init(&f->table, IFR_MAX_SOURCES, 0, 0) < 0) {
        host->cfg_error(cfg, NULL, "out of memory");
        goto fail;
    }
    *inst = f;
    return 0;
fail:
    ifr_destroy(f);
    return -1;
}

/** Worker thread: answers the 429.  RELAIS_DONE, or RELAIS_ERROR. */
static int ifr_refuse(struct ifr_inst *f, relais_req *req)
{
    if (f->host->respond(req, 429, NULL, 0, f->body, strlen(f->body)) < 0)
        return RELAIS_ERROR;
    return RELAIS_DONE;
}

static void ifr_release(void *arg);

/**
 * Worker thread.  Counts the request against its source: RELAIS_NEXT, or
 * RELAIS_DONE after a 429 when the source has amount requests in flight.
 * *ctx remembers the counter for on_response.
 */
static int ifr_on_request(void *inst, relais_req *req, void **ctx)
{
    struct ifr_inst *f = inst;
    const relais_host *host = f->host;
    char buf[MWS_IP_TEXT];
    const char *key = NULL;
    struct ifr_ctx *c;
    struct mws_shard *sh;
    struct mws_entry *e;
    size_t klen;
    int created;

    c = host->req_alloc(req, sizeof(*c));
    if (!c) return RELAIS_ERROR;
    klen = mws_source_key(host, &f->source, req, buf, sizeof(buf), &key);
    e = mws_table_get(&f->table, key, klen, 0, 1, &created, &sh);
    if (!e) return ifr_refuse(f, req); /* IFR_MAX_SOURCES sources in flight */
    if (e->p.count >= f->amount) {
        mws_table_unlock(sh);
        return ifr_refuse(f, req);
    }
    e->p.count++;
    mws_table_unlock(sh);
    c->sh = sh;
    c->e = e;
    *ctx = c;
    if (RELAIS_HOST_HAS(host, req_on_end) && host->req_on_end(req, ifr_release, c) < 0) {
        ifr_release(c);
        return RELAIS_ERROR;
    }
    return RELAIS_NEXT;
}

/** Worker thread.  The request is no longer in flight: its count goes. */
/* Releases the request's slot (once).  Worker thread. */
static void ifr_release(void *arg)
{
    struct ifr_ctx *c = arg;

    if (!c || !c->e) return;
    mws_table_lock(c->sh);
    if (--c->e->p.count <= 0) mws_table_remove(c->sh, c->e);
    mws_table_unlock(c->sh);
    c->e = NULL;
}

/* Worker thread: on a host without req_on_end (ABI < 1.4), the slot is
 * released with the response head; otherwise when the exchange ends,
 * whatever ended it (Traefik counts until the response is sent). */
static int ifr_on_response(void *inst, relais_req *req, void **ctx)
{
    struct ifr_inst *f = inst;

    (void)req;
    if (!RELAIS_HOST_HAS(f->host, req_on_end)) ifr_release(*ctx);
    return RELAIS_NEXT;
}

/** The middleware operations. */
static const relais_middleware_ops ifr_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = ifr_create,
    .destroy = ifr_destroy,
    .on_request = ifr_on_request,
    .on_response = ifr_on_response,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "inflightreq",
    "1.0.0",
    "inFlightReq",
    "limits the requests in flight per source (Traefik inFlightReq)",
    NULL,
    NULL,
    &ifr_ops,
};
