/*
 * mwipfilter — the shared body of the ipAllowList and ipDenyList plugins
 * (compiled into each).  Module prefix: mwf_.
 *
 * Options (Traefik's ipAllowList): sourceRange (required: addresses and
 * CIDRs), ipStrategy (depth, excludedIPs, ipv6Subnet), rejectStatusCode
 * (default 403).  A refused request gets the status and Go's status text as
 * its body ("Forbidden"), Content-Type text/plain; charset=utf-8.
 */
#ifndef MWIPFILTER_H
#define MWIPFILTER_H

#include <relais/plugin.h>

/** Control thread.  Creates an instance: allow 1 lets only the client
 *  addresses inside sourceRange through (ipAllowList), allow 0 refuses
 *  exactly those (ipDenyList).  Arguments and result as
 *  relais_middleware_ops.create. */
int mwf_create(const relais_host *host, const relais_cfg *cfg, int allow,
               void **inst);
/** Control thread: frees an instance; NULL is a no-op. */
void mwf_destroy(void *inst);
/** Worker thread: RELAIS_NEXT, or RELAIS_DONE after answering the refusal
 *  (RELAIS_ERROR when the answer could not be made). */
int mwf_on_request(void *inst, relais_req *req, void **ctx);

#endif /* MWIPFILTER_H */
