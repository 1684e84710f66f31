/*
 * acme_store — the ACME storage file in Traefik's acme.json layout.
 * Module prefix: as_.
 *
 * One JSON file holds one section per certificate resolver:
 *
 *   {"RESOLVER": {
 *      "Account": {"Email": "...",
 *                  "Registration": {"body": {...}, "uri": "https://..."},
 *                  "PrivateKey": "<base64 of the DER key>",
 *                  "KeyType": "4096"},
 *      "Certificates": [{"domain": {"main": "a.example", "sans": ["b.example"]},
 *                        "certificate": "<base64 of the PEM chain>",
 *                        "key": "<base64 of the PEM key>",
 *                        "Store": "default"}]}}
 *
 * A save re-reads the file and replaces only its own section, so other
 * resolvers' sections (written by relais or by Traefik) are kept.  Writes
 * are atomic (temporary file in the same directory, fsync, rename) with
 * mode 0600; a file readable or writable by group or others is refused,
 * as Traefik refuses it.
 *
 * The same section, as JSON text, is what cluster mode keeps under
 * P/acme/<resolver> in etcd (as_section_parse, as_section_dump).
 *
 * Thread-safety: none needed (the control thread); the file is read and
 * written with blocking calls.
 */
#ifndef RELAIS_ACME_STORE_H
#define RELAIS_ACME_STORE_H

#include <stddef.h>
#include <stdint.h>

#define AS_MAX_FILE (64u * 1024 * 1024) /* cap on the storage file's size */
#define AS_MAX_CERTS 10000              /* cap on certificates per resolver */
#define AS_MAX_SANS 100                 /* cap on SANs per certificate */

/** The ACME account of a resolver (all strings owned, NULL when absent). */
struct as_account {
    char *email;           /* "Email": contact address, or NULL */
    char *uri;             /* "Registration"."uri": the account URL (kid) */
    char *body_json;       /* "Registration"."body" serialized (the
                              server's account object), or NULL */
    unsigned char *key_der; /* "PrivateKey" decoded: DER (PKCS#1 RSA or
                               SEC1 EC, as Traefik/lego write it) */
    size_t key_der_len;    /* its length */
    char *key_type;        /* "KeyType" as lego spells it ("4096", "P256") */
};

/** One stored certificate (all strings owned). */
struct as_cert {
    char *main;            /* "domain"."main" */
    char **sans;           /* "domain"."sans" */
    size_t nsans;          /* how many */
    char *cert_pem;        /* "certificate" decoded: leaf + chain, PEM */
    char *key_pem;         /* "key" decoded: the private key, PEM */
    char *store;           /* "Store" ("default") */
};

/** A resolver's section in memory. */
struct as_data {
    int has_account;        /* 1 when acct is filled */
    struct as_account acct; /* the account */
    struct as_cert *certs;  /* the certificates */
    size_t ncerts;          /* used */
    size_t cap;             /* allocated */
};

/**
 * Reads resolver's section of the file at path into out (cleared first).
 * A missing file or section gives an empty out and 0.  -1 with a message
 * in err when the file's mode gives any access to group or others, when it
 * is not valid JSON / not the expected layout, or on a read error.
 * Certificate entries whose fields do not decode are dropped and counted
 * in *skipped (when skipped is not NULL) for the caller to log.
 */
int as_load(const char *path, const char *resolver, struct as_data *out,
            size_t *skipped, char *err, size_t errlen);

/**
 * Writes d as resolver's section of the file at path, keeping every other
 * top-level key of the current file.  Atomic, mode 0600.  0, or -1 with
 * err set (the old file is then untouched).
 */
int as_save(const char *path, const char *resolver, const struct as_data *d,
            char *err, size_t errlen);

/**
 * Writes len bytes to path atomically: PATH.tmp.PID.N in the same
 * directory created with mode 0600, written, fsync'ed, renamed over path,
 * then the directory fsync'ed.  0, or -1 with err set (temp file removed).
 */
int as_write_atomic(const char *path, const char *data, size_t len, char *err,
                    size_t errlen);

/**
 * Parses one resolver's section given as JSON text (the value of
 * P/acme/<resolver> in cluster mode: {"Account": ..., "Certificates":
 * [...]}) into out (cleared first).  Empty text gives an empty out.
 * Skipped entries as in as_load.  0, or -1 with err set.
 */
int as_section_parse(const char *text, size_t len, struct as_data *out, size_t *skipped,
                     char *err, size_t errlen);

/** d as one section's compact JSON text (the layout as_save writes under
 *  the resolver's key), a new string, or NULL when out of memory. */
char *as_section_dump(const struct as_data *d);

/** Replaces *dst with a deep copy of *src.  0, or -1 (out of memory;
 *  dst untouched). */
int as_account_copy(struct as_account *dst, const struct as_account *src);

/** Frees what an account holds (key bytes wiped) and empties it. */
void as_account_clear(struct as_account *a);

/** Frees everything d holds and empties it (d itself is not freed). */
void as_data_clear(struct as_data *d);

/**
 * Replaces (or adds) the certificate whose domain set equals main + sans
 * (same main, same SANs in any order) with copies of the given values,
 * Store "default".  0, or -1 (out of memory, cap reached).
 */
int as_cert_put(struct as_data *d, const char *main, const char *const *sans,
                size_t nsans, const char *cert_pem, const char *key_pem);

/** Removes certificate i of d (the last one takes its place). */
void as_cert_del(struct as_data *d, size_t i);

/** The certificate for main + sans (as in as_cert_put), or NULL. */
struct as_cert *as_cert_find(struct as_data *d, const char *main,
                             const char *const *sans, size_t nsans);

/** Standard base64 (with padding) of data into a new string, or NULL. */
char *as_b64_encode(const unsigned char *data, size_t len);

/** Decodes standard base64 (padding optional, whitespace ignored) into a
 *  new NUL-terminated buffer; *len gets the byte count.  NULL when the
 *  text is not base64 or out of memory. */
unsigned char *as_b64_decode(const char *text, size_t *len);

#endif /* RELAIS_ACME_STORE_H */
