/*
 * pvtls — the `tls` block of the providers that speak HTTP(S) through the
 * host's client (http, etcd), as Traefik names it: {ca, cert, key,
 * insecureSkipVerify}, each of ca/cert/key a file path or PEM text.
 * Compiled into each provider plugin, which still builds only against the
 * SDK.  Prefix pvt_.
 */
#ifndef RELAIS_PVTLS_H
#define RELAIS_PVTLS_H

#include <relais/plugin.h>

/** A provider's tls options (strings owned). */
struct pvt_tls {
    int present;  /* a tls block was given (even empty) */
    char *ca;     /* tls.ca, or NULL */
    char *cert;   /* tls.cert, or NULL */
    char *key;    /* tls.key, or NULL */
    int insecure; /* tls.insecureSkipVerify */
};

/**
 * Reads cfg's tls block into t (zeroed by the caller).  Control thread.
 * 0, or -1 after host->cfg_error naming the key (providers.NAME.tls.KEY):
 * not a map, an unknown key, a wrong type, cert without key, a host
 * without the https client (ABI < 1.2).  t may hold strings either way:
 * pvt_free releases them.
 */
int pvt_read(const relais_host *host, const relais_cfg *cfg, struct pvt_tls *t);

/** Copies the options into an HTTP request (borrowed strings). */
void pvt_apply(const struct pvt_tls *t, relais_http_req *req);

/** Frees the strings; NULL is a no-op. */
void pvt_free(struct pvt_tls *t);

#endif /* RELAIS_PVTLS_H */
