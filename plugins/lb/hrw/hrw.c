/*
 * hrw — highest random weight (rendezvous hashing) load-balancing
 * strategy keyed on the client IP (config key "hrw", Traefik v3's name).
 * Module prefix: hrw_.
 *
 * For a request from client address K, every usable server i gets the
 * score  w_i / -ln(u(K, i))  where u is a hash of K and the server's URL
 * mapped into (0, 1); the highest score wins (weighted rendezvous
 * hashing).  So one client address always goes to the same server while
 * the set of usable servers stays the same; a server going down moves only
 * its own clients (each to its next-highest server), and each server gets
 * a share of the addresses proportional to its weight.  Servers of weight
 * 0 take part (as weight 1) only when no server of positive weight is up.
 *
 * The URL hashes are computed once at create; a pick reads only immutable
 * data and the host's accessors: no lock, no shared write.  The natural
 * logarithm is computed here (no libm dependency for a plugin).
 *
 * Options: none (the loadBalancer map is not read).
 *
 * Built only against the SDK headers, hidden visibility by default.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "lbcommon.h"

/** Cap on the servers of one service. */
#define HRW_MAX_SERVERS 65536u

/** One load-balancer instance (one per service). */
struct hrw_inst {
    const relais_host *host; /* host function table */
    size_t nservers;         /* entries of url_hash */
    uint64_t *url_hash;      /* per server: hash of its URL (immutable) */
};

/** Natural logarithm of x > 0 (normal doubles): exponent times ln 2 plus
 *  an atanh series on the mantissa brought into [0.707, 1.415); absolute
 *  error below 1e-12.  Pure. */
static double hrw_ln(double x)
{
    uint64_t bits;
    double m, s, s2, term, sum;
    int e, k;

    memcpy(&bits, &x, sizeof(bits));
    e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0xfffffffffffffull) | 0x3ff0000000000000ull;
    memcpy(&m, &bits, sizeof(m));
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    s = (m - 1.0) / (m + 1.0);
    s2 = s * s;
    term = s;
    sum = 0.0;
    for (k = 1; k <= 21; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return e * 0.6931471805599453 + 2.0 * sum;
}

/** Score of a server of weight w for the combined hash h: w / -ln(u),
 *  u = h mapped into (0, 1).  Pure. */
static double hrw_score(uint64_t h, uint64_t w)
{
    double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */

    return (double)w / -hrw_ln(u);
}

/**
 * Control thread.  Hashes every server's URL.  cfg is not read (hrw has
 * no options).  0, or -1 after cfg_error when the host lacks a needed
 * function or memory runs out.
 */
static int hrw_create(const relais_host *host, const relais_cfg *cfg,
                      const relais_servers *servers, void **inst)
{
    struct hrw_inst *r;
    size_t i;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->server_url || !host->req_client_ip) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "hrw: host lacks server or request accessors");
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (!r) goto nomem;
    r->host = host;
    r->nservers = host->servers_count(servers);
    if (r->nservers > HRW_MAX_SERVERS) r->nservers = HRW_MAX_SERVERS;
    r->url_hash = calloc(r->nservers ? r->nservers : 1, sizeof(uint64_t));
    if (!r->url_hash) goto nomem;
    for (i = 0; i < r->nservers; i++) {
        const char *url = host->server_url(servers, i);
        r->url_hash[i] = lbc_mix(url ? lbc_fnv1a(url, strlen(url)) : i);
    }
    *inst = r;
    return 0;

nomem:
    free(r);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "hrw: out of memory");
    return -1;
}

/** Control thread: frees the instance; NULL is a no-op. */
static void hrw_destroy(void *inst)
{
    struct hrw_inst *r = inst;

    if (!r) return;
    free(r->url_hash);
    free(r);
}

/**
 * Worker thread (or the control thread).  The usable server with the
 * highest weighted rendezvous score for the request's client address (an
 * absent address hashes as the empty string).  Returns the server index,
 * or -1 when no server is up.
 */
static int hrw_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct hrw_inst *r = inst;
    const relais_host *h = r->host;
    size_t n = h->servers_count(servers), i;
    const char *ip = req ? h->req_client_ip(req) : NULL;
    uint64_t key = lbc_fnv1a(ip ? ip : "", ip ? strlen(ip) : 0);
    double best_score = 0.0;
    long best = -1;
    int zero_mode;

    if (n > r->nservers) n = r->nservers;
    zero_mode = lbc_mode(h, servers, n);
    if (zero_mode < 0) return -1;
    for (i = 0; i < n; i++) {
        uint32_t w;
        double sc;
        if (!h->server_up(servers, i)) continue;
        w = h->server_weight(servers, i);
        if (zero_mode) {
            if (w) continue;
            w = 1;
        } else if (w == 0) {
            continue;
        }
        sc = hrw_score(lbc_mix(key ^ r->url_hash[i]), w);
        if (best < 0 || sc > best_score) {
            best_score = sc;
            best = (long)i;
        }
    }
    return (int)best;
}

/** The operations table. */
static const relais_lb_ops hrw_ops = {
    .size = sizeof(relais_lb_ops),
    .create = hrw_create,
    .destroy = hrw_destroy,
    .pick = hrw_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "hrw",
    .version = "1.0.0",
    .config_key = "hrw",
    .description = "highest random weight (rendezvous hashing) on the client "
                   "IP, weighted",
    .load = NULL,
    .unload = NULL,
    .ops = &hrw_ops,
};
