/*
 * mwipfilter — the shared body of ipAllowList and ipDenyList (see
 * mwipfilter.h).  Module prefix: mwf_.
 *
 * The client address is chosen by the ipStrategy (mwsource.c) and checked
 * against sourceRange.  As in Traefik, an address that cannot be chosen
 * (depth beyond the X-Forwarded-For elements, every element excluded) or
 * parsed is never inside sourceRange: ipAllowList refuses it and
 * ipDenyList lets it through.
 */
#include "mwipfilter.h"

#include <stdlib.h>
#include <string.h>

#include "mwsource.h"

/** One configured instance; read-only after create, shared by every
 *  worker thread. */
struct mwf_inst {
    const relais_host *host;     /* host function table */
    int allow;                   /* 1 allow list, 0 deny list */
    struct mws_iplist range;     /* sourceRange */
    struct mws_strategy strategy;/* ipStrategy */
    int status;                  /* rejectStatusCode */
    const char *body;            /* Go's text of status (static) */
};

void mwf_destroy(void *inst)
{
    struct mwf_inst *f = inst;

    if (!f) return;
    mws_iplist_release(&f->range);
    mws_strategy_release(&f->strategy);
    free(f);
}

int mwf_create(const relais_host *host, const relais_cfg *cfg, int allow,
               void **inst)
{
    static const char *const keys[] = {"sourceRange", "ipStrategy", "rejectStatusCode"};
    struct mwf_inst *f;
    int t = host->cfg_type(cfg), rc = 0, present, r;
    int64_t code = 0;

    f = calloc(1, sizeof(*f));
    if (!f) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    f->host = host;
    f->allow = allow;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, NULL, "expected a map (sourceRange, ipStrategy, rejectStatusCode)");
        goto fail;
    }
    rc |= mws_check_keys(host, cfg, keys, sizeof(keys) / sizeof(keys[0]));
    rc |= mws_iplist_parse(host, cfg, "sourceRange", 1, &f->range);
    rc |= mws_strategy_parse(host, cfg, "ipStrategy", &f->strategy, &present);
    r = host->cfg_int(cfg, "rejectStatusCode", &code);
    if (r == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (r == RELAIS_CFG_MISSING || code == 0) {
        code = 403;
    } else if (code < 200 || code > 599 || !mws_status_text((int)code)) {
        host->cfg_error(cfg, "rejectStatusCode", "invalid HTTP status code %lld",
                        (long long)code);
        rc = -1;
    }
    if (rc) goto fail;
    f->status = (int)code;
    f->body = mws_status_text(f->status);
    *inst = f;
    return 0;
fail:
    mwf_destroy(f);
    return -1;
}

int mwf_on_request(void *inst, relais_req *req, void **ctx)
{
    struct mwf_inst *f = inst;
    const relais_host *host = f->host;
    char ip[MWS_IP_TEXT];
    size_t len;
    int inside;

    (void)ctx;
    len = mws_strategy_ip(host, &f->strategy, req, ip, sizeof(ip));
    inside = len > 0 && mws_iplist_match(&f->range, ip, len);
    if (inside == f->allow) return RELAIS_NEXT;
    if (host->respond(req, f->status, NULL, 0, f->body, strlen(f->body)) < 0)
        return RELAIS_ERROR;
    return RELAIS_DONE;
}
