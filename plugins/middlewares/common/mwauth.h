/*
 * mwauth — what the basicAuth and digestAuth middlewares share: the user
 * table (Traefik's `users` list merged with its `usersFile`), the common
 * options (realm, headerField, removeHeader), the 401 answer, what happens
 * to the request after a successful login, base64 and a constant-time
 * comparison.  Compiled into each of those plugins (never a library of its
 * own); built only against the SDK header and OpenSSL's libcrypto.
 *
 * Secrets: nothing here ever logs or reports a password, a hash or a line
 * of a users file; configuration errors name the key (and the line number
 * of the users file), never the value.
 */
#ifndef MWAUTH_H
#define MWAUTH_H

#include <stddef.h>

#include <relais/plugin.h>

/** Traefik's default realm (pkg/middlewares/auth: defaultRealm). */
#define MWAUTH_DEFAULT_REALM "traefik"
/** Body of every 401 answer (go-http-auth's UnauthResponse). */
#define MWAUTH_UNAUTH_BODY "401 Unauthorized\n"
/** Largest usersFile read, in bytes. */
#define MWAUTH_FILE_MAX (16u * 1024u * 1024u)
/** Most users one instance holds (file and list together). */
#define MWAUTH_USERS_MAX 100000u
/** Longest user entry ("name:hash" or "name:realm:HA1"), in bytes. */
#define MWAUTH_ENTRY_MAX 4096u

/** One user: the lookup key and its secret. */
struct mwauth_user {
    char *key;      /* "name" (basic) or "name:realm" (digest), NUL-ended */
    size_t key_len; /* strlen(key) */
    char *secret;   /* the hash (basic) or HA1 (digest), NUL-ended */
};

/** The users of one instance, sorted by key, keys unique; read-only after
 *  mwauth_users_load, shared by every worker thread. */
struct mwauth_users {
    struct mwauth_user *v; /* the users (malloc), sorted by key bytes */
    size_t n;              /* how many */
};

/** The options both middlewares have besides the users. */
struct mwauth_opts {
    char *realm;        /* realm, MWAUTH_DEFAULT_REALM when not given */
    char *header_field; /* headerField, NULL when not given or empty */
    int remove_header;  /* removeHeader: drop Authorization upstream */
};

/**
 * Control thread.  Reports with host->cfg_error every key of map cfg that
 * is not one of the n names of known (case-insensitive).  0 when all are
 * known, else -1.
 */
int mwauth_check_keys(const relais_host *host, const relais_cfg *cfg,
                      const char *const *known, size_t n);

/**
 * Control thread.  Reads `users` (a list of strings) and `usersFile` (a path)
 * of map cfg and merges them as Traefik does: the file's lines first
 * (trimmed; blank lines and lines starting with '#' skipped), then the
 * list's entries (taken as they are); an entry must split on ':' into
 * exactly nparts parts (2: name:hash, 3: name:realm:HA1); the key is every
 * part but the last, the secret the last part; a later entry of the same key
 * replaces an earlier one.  Errors (wrong types, unreadable file, malformed
 * entry: named by key path and line number, never by content) go to
 * host->cfg_error.  0 with *out filled (release with mwauth_users_release),
 * or -1 with *out empty.
 */
int mwauth_users_load(const relais_host *host, const relais_cfg *cfg,
                      int nparts, struct mwauth_users *out);

/** Any thread.  The secret of key[0..len), or NULL when there is none. */
const char *mwauth_users_find(const struct mwauth_users *u, const char *key,
                              size_t len);

/** Control thread.  Frees the users (clearing the secrets first); the
 *  struct itself is the caller's.  An empty struct is a no-op. */
void mwauth_users_release(struct mwauth_users *u);

/**
 * Control thread.  Reads realm (string; no control character, no '"'),
 * headerField (string; an HTTP field name, empty means none) and
 * removeHeader (bool) of map cfg into *o.  0, or -1 after cfg_error (*o is
 * then released).
 */
int mwauth_opts_load(const relais_host *host, const relais_cfg *cfg,
                     struct mwauth_opts *o);

/** Control thread.  Frees what *o holds; an empty struct is a no-op. */
void mwauth_opts_release(struct mwauth_opts *o);

/**
 * Worker thread.  Answers req with 401, `Content-Type: text/plain`,
 * `WWW-Authenticate: <www_authenticate>` and MWAUTH_UNAUTH_BODY.  Returns
 * RELAIS_DONE, or RELAIS_ERROR when the host could not take the answer.
 */
int mwauth_unauthorized(const relais_host *host, relais_req *req,
                        const char *www_authenticate);

/**
 * Worker thread.  After a successful login: sets the headerField header
 * (when configured) to user[0..len), then removes Authorization when
 * removeHeader is set (Traefik's order).  RELAIS_NEXT, or RELAIS_ERROR when
 * a header could not be set.
 */
int mwauth_accept(const relais_host *host, relais_req *req,
                  const struct mwauth_opts *o, const char *user, size_t len);

/**
 * Any thread.  Decodes standard base64 (RFC 4648 alphabet, padding
 * required, '=' only at the end; non-zero trailing bits accepted as Go's
 * StdEncoding does) of in[0..len) into out (cap bytes).  Returns the
 * decoded length, or -1 when the input is not valid or does not fit.
 */
long mwauth_b64_decode(const char *in, size_t len, unsigned char *out,
                       size_t cap);

/**
 * Any thread.  Encodes in[0..len) as padded standard base64 into out (cap
 * bytes, NUL-terminated).  Returns the length written, or -1 when cap is
 * too small.
 */
long mwauth_b64_encode(const unsigned char *in, size_t len, char *out,
                       size_t cap);

/** Any thread.  Copies s[0..len) into out (cap >= 1 bytes, NUL-terminated,
 *  truncated to fit) with every byte outside printable ASCII replaced by
 *  '?', for log lines.  Returns out. */
char *mwauth_printable(const char *s, size_t len, char *out, size_t cap);

/** Any thread.  1 when a[0..alen) equals b[0..blen): the lengths are
 *  compared first, then the bytes in constant time (CRYPTO_memcmp). */
int mwauth_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif /* MWAUTH_H */
