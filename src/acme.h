/*
 * acme — an ACME client (RFC 8555) for Traefik's
 * certificatesResolvers.NAME.acme.  Module prefix: acme_.
 *
 * One struct acme is one certificate resolver: one CA directory, one
 * account, one storage section (acme_store.h, Traefik's acme.json
 * layout).  Certificates are wanted by domain set; each missing or
 * expiring one is ordered (newOrder, one challenge per authorization
 * answered through the hooks, finalize with a CSR, download), stored and
 * handed to on_cert.  Failed orders are retried with exponential backoff
 * (1 s, 2 s, 4 s ... capped at 1 h); a timer re-orders the certificates
 * of the domain sets wanted since acme_new that expire within
 * renew_before_s (stored certificates nobody wants are delivered at start
 * but not renewed).
 *
 * The account: the stored one is reused when its URL is on the caServer's
 * host (newAccount with its key answers the same URL), else a new RSA 2048
 * key is made and registered (termsOfServiceAgreed, mailto:email) and
 * stored as PKCS#1 DER, which Traefik reads back.  Stored EC (SEC1) or
 * PKCS#8 keys are accepted too.
 *
 * Storage: the acme.json file (acme_new), or an external storage given by
 * the caller (acme_new_stored: cluster mode keeps the same section in
 * etcd).  With an external storage the resolver starts empty and
 * paused: the caller feeds it the stored section (acme_store_merge),
 * enables ordering while this node may order (acme_set_active) and is
 * told of every change to save.  A paused resolver records the domain
 * sets wanted and orders nothing; enabling it orders those whose
 * certificate is missing or due, with the account found in the storage
 * (or a new one, saved).
 *
 * Hooks must not call acme_free.
 *
 * Everything runs on the event loop given to acme_new (the control
 * thread): HTTP through the host's asynchronous client (httpc.h), hooks
 * called on that loop.  Key generation runs in a short-lived helper thread
 * (RSA 4096 takes seconds) and reports back through a pipe; the storage
 * file is read and written with blocking calls (an external storage saves
 * as it likes).
 */
#ifndef RELAIS_ACME_H
#define RELAIS_ACME_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct as_data;

/** How a domain's control is proved. */
enum acme_challenge { ACME_HTTP01 = 1, ACME_TLSALPN01 = 2 };

/** Configuration of one resolver (strings borrowed during acme_new). */
struct acme_cfg {
    const char *resolver;        /* resolver name, for logs and storage ("le") */
    const char *ca_server;       /* directory URL (caServer) */
    const char *email;           /* account contact, may be NULL */
    const char *key_type;        /* certificate keys: EC256, EC384, RSA2048,
                                    RSA4096 (default, also for NULL), RSA8192 */
    const char *ca_certificates; /* PEM file (or PEM text) trusted for the
                                    CA's HTTPS, or NULL for the system's */
    int ca_insecure;             /* 1 = do not verify the CA's certificate */
    const char *storage;         /* the JSON file (acme_store.h) */
    int64_t renew_before_s;      /* renew when it expires sooner than this;
                                    <= 0 means 30 days */
    int64_t check_interval_ms;   /* renewal check period; <= 0 means 24 h */
};

/** What the resolver calls back with, on the loop thread.  A NULL hook is
 *  skipped (a challenge type whose set hook is NULL fails). */
struct acme_hooks {
    void *arg; /* passed to every hook */
    /** http-01: serve key_auth at /.well-known/acme-challenge/TOKEN until
     *  cleared.  0 (served now), 1 (being published: the CA is told once
     *  acme_challenge_ready(TOKEN) is called, later, from the loop), or -1
     *  (the order fails). */
    int (*http01_set)(void *arg, const char *token, const char *key_auth);
    /** http-01: stop serving TOKEN. */
    void (*http01_clear)(void *arg, const char *token);
    /** tls-alpn-01: serve this certificate for SNI domain with ALPN
     *  acme-tls/1 until cleared.  0, 1 (acme_challenge_ready(domain)
     *  follows, as for http01_set) or -1. */
    int (*alpn01_set)(void *arg, const char *domain, const char *cert_pem,
                      const char *key_pem);
    /** tls-alpn-01: stop serving domain's challenge certificate. */
    void (*alpn01_clear)(void *arg, const char *domain);
    /** A certificate is available: from storage (once, from the loop just
     *  after acme_new), newly issued, or renewed.  chain_pem is leaf +
     *  chain; not_after in seconds since the epoch.  Strings valid during
     *  the call only. */
    void (*on_cert)(void *arg, const char *main_domain, const char *const *sans,
                    size_t nsans, const char *chain_pem, const char *key_pem,
                    int64_t not_after);
    /** An order failed for good this round (it is retried later with
     *  backoff). */
    void (*on_error)(void *arg, const char *main_domain, const char *message);
};

/**
 * Creates the resolver on base: reads its storage section (refusing a
 * file with wider permissions than 0600, or one that does not parse) and
 * schedules on_cert for every stored certificate and the renewal timer.
 * Nothing is sent to the CA until a certificate is wanted.  Returns NULL
 * with a message in err on failure.  Control thread.
 */
struct acme *acme_new(struct event_base *base, const struct acme_cfg *cfg,
                      const struct acme_hooks *hooks, char *err, size_t errlen);

/** An external storage (cluster mode). */
struct acme_storage {
    void *arg; /* passed to save */
    /** The resolver's section changed (new account, new certificate): d is
     *  all of it, valid during the call (acme_store_data gives it again
     *  later).  Saving is the callee's business (asynchronous, retried);
     *  0, or -1 when it cannot even start (logged as an error). */
    int (*save)(void *arg, const struct as_data *d);
};

/**
 * As acme_new, with the storage st instead of cfg->storage (NULL or a
 * NULL st->save: the file, exactly acme_new).  The resolver starts with
 * an empty section and paused (see the top).  Control thread.
 */
struct acme *acme_new_stored(struct event_base *base, const struct acme_cfg *cfg,
                             const struct acme_hooks *hooks, const struct acme_storage *st,
                             char *err, size_t errlen);

/**
 * Enables (on = 1) or pauses (0) ordering and renewing.  Pausing cancels
 * every order in flight (challenges cleared, retries dropped); enabling
 * orders at once the wanted sets whose certificate is missing or due.
 * No-op when unchanged.  Control thread.
 */
void acme_set_active(struct acme *a, int on);

/**
 * Merges a section read from the external storage into the resolver's:
 * each certificate is taken when the resolver has none for its domain set
 * or an older one (earlier notAfter); the account is taken when it is
 * usable with our caServer and differs from ours (work in flight with the
 * old one restarts).  With replace (d is an edit newer than anything this
 * resolver saved), certificates absent from d are dropped as well, and,
 * active, those still wanted are ordered again.  Nothing is delivered
 * through on_cert and nothing is saved.  Returns the number of
 * certificates taken or dropped.  Control thread.
 */
size_t acme_store_merge(struct acme *a, const struct as_data *d, int replace);

/** The resolver's section as it is now (what a save would write). */
const struct as_data *acme_store_data(const struct acme *a);

/**
 * A challenge hook that answered 1 reports: key is the token (http-01) or
 * the domain (tls-alpn-01); ok 1 = published (the CA is told now), 0 =
 * failed (the order fails and is retried with backoff).  Unknown keys are
 * ignored; without a report within 30 s the order fails.  Control thread.
 */
void acme_challenge_ready(struct acme *a, const char *key, int ok);

/**
 * Wants a certificate for domains[0] (main) + domains[1..n) (SANs;
 * duplicates ignored).  Returns 0 when a stored certificate covers exactly
 * that set and is not due for renewal (it was or will be delivered by the
 * start-up on_cert), 1 when an order was started or one for the same set
 * is already in flight (asking twice is one order) or, paused, when the
 * set is recorded for later, -1 on bad arguments
 * (n == 0, empty name, unknown how) or out of memory.  Control thread.
 */
int acme_want(struct acme *a, const char *const *domains, size_t n,
              enum acme_challenge how);

/** Cancels everything in flight (clearing any challenge still set, waiting
 *  for a running key generation), frees a.  NULL is a no-op. */
void acme_free(struct acme *a);

/* ---- building blocks, exposed for the unit tests ---------------------- */

/** base64url without padding (RFC 7515 §2) of data, a new string or NULL. */
char *acme_b64url(const void *data, size_t len);

/**
 * The JWK thumbprint (RFC 7638, SHA-256) of a public key given as its
 * canonical JWK members: for RSA kty "RSA" with n and e (base64url), for
 * EC kty "EC" with crv, x, y.  out gets base64url text.  0 / -1.
 */
int acme_jwk_thumbprint_members(const char *kty, const char *a1, const char *a2,
                                const char *a3, char *out, size_t outlen);

struct evp_pkey_st;
/**
 * The JWS (flattened JSON serialization, RFC 7515 §7.2.2) of payload
 * (NULL = the empty payload of POST-as-GET) signed with key (RSA → RS256,
 * EC P-256 → ES256, P-384 → ES384); the protected header holds alg, nonce,
 * url and kid, or the public jwk when kid is NULL.  A new string, or NULL.
 */
char *acme_jws(struct evp_pkey_st *key, const char *kid, const char *nonce,
               const char *url, const char *payload);

/** The canonical public JWK of key (members in lexicographic order, no
 *  whitespace) as a new string, or NULL. */
char *acme_jwk(struct evp_pkey_st *key);

/**
 * The tls-alpn-01 certificate (RFC 8737) for domain and key_auth: a new
 * EC P-256 key and a self-signed certificate with SAN domain and the
 * critical id-pe-acmeIdentifier extension holding SHA-256(key_auth).
 * *cert_pem and *key_pem are new strings.  0 / -1.
 */
int acme_alpn_cert(const char *domain, const char *key_auth, char **cert_pem,
                   char **key_pem);

/** Parses the notAfter of the first certificate in a PEM text (seconds
 *  since the epoch), or -1. */
int64_t acme_pem_not_after(const char *pem);

#endif /* RELAIS_ACME_H */
