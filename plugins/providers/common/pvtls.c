/*
 * pvtls — see pvtls.h.
 */
#include <stdlib.h>
#include <string.h>

#include "pvtls.h"

int pvt_read(const relais_host *host, const relais_cfg *cfg, struct pvt_tls *t)
{
    static const char *const names[] = {"ca", "cert", "key"};
    const relais_cfg *b = host->cfg_get(cfg, "tls");
    char **dst[] = {&t->ca, &t->cert, &t->key};
    const char *s;
    int bad = 0, rc;

    if (!b || host->cfg_type(b) == RELAIS_CFG_NULL) return 0;
    if (host->cfg_type(b) != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, "tls", "expected a map (ca, cert, key, insecureSkipVerify)");
        return -1;
    }
    if (!RELAIS_HOST_ABI_AT_LEAST(host, 1, 2)) {
        host->cfg_error(cfg, "tls", "needs a relais with ABI 1.2 (https client)");
        return -1;
    }
    t->present = 1;
    for (size_t i = 0; i < host->cfg_len(b); i++) {
        const char *k;
        host->cfg_at(b, i, &k);
        if (k && strcmp(k, "ca") && strcmp(k, "cert") && strcmp(k, "key") &&
            strcmp(k, "insecureSkipVerify")) {
            host->cfg_error(b, k, "unknown option (expected ca, cert, key, insecureSkipVerify)");
            bad = 1;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        rc = host->cfg_string(b, names[i], &s);
        if (rc == RELAIS_CFG_OK && *s) {
            if (!(*dst[i] = strdup(s))) bad = 1;
        } else if (rc == RELAIS_CFG_INVALID) {
            bad = 1;
        }
    }
    if (host->cfg_bool(b, "insecureSkipVerify", &t->insecure) == RELAIS_CFG_INVALID) bad = 1;
    if (!t->cert != !t->key) {
        host->cfg_error(b, t->cert ? "key" : "cert", "cert and key go together");
        bad = 1;
    }
    return bad ? -1 : 0;
}

void pvt_apply(const struct pvt_tls *t, relais_http_req *req)
{
    req->tls_ca = t->ca;
    req->tls_cert = t->cert;
    req->tls_key = t->key;
    req->tls_insecure = t->insecure;
}

void pvt_free(struct pvt_tls *t)
{
    if (!t) return;
    free(t->ca);
    free(t->cert);
    free(t->key);
    t->ca = t->cert = t->key = NULL;
}
