/*
 * mwredirect — the redirection engine shared by redirectScheme and
 * redirectRegex, as Traefik v3's pkg/middlewares/redirect does it: the
 * request's URL as text, a Go regexp replaced into a new URL, a 30x answer
 * when the URL changed.  Module prefix: mwrd_.
 *
 * Status: 302 for GET, 307 for any other method; permanent: 301 for GET,
 * 308 otherwise.  Headers: Location (the new URL as Go's url.Parse then
 * URL.String() writes it), Content-Type text/plain; charset=utf-8.  Body:
 * the status text ("Found", "Moved Permanently", "Temporary Redirect",
 * "Permanent Redirect"), no newline.  A new URL that Go's url.Parse
 * refuses is answered 500 "Internal Server Error" (oxy's error handler).
 * When the regexp does not match, or the new URL equals the old one, the
 * request goes on unchanged.
 *
 * Worker threads; the request's memory and malloc (freed before return).
 */
#ifndef MWREDIRECT_H
#define MWREDIRECT_H

#include <stddef.h>

#include <relais/plugin.h>

#include "mwregex.h"

/** redirectRegex's view of the request (Traefik's rawURL): scheme (https
 *  on TLS, else http) + "://" + the authority as sent + the path and query
 *  as they stand now.  Appends to b; 0, or -1 (b->failed). */
int mwrd_url_raw(const relais_host *host, relais_req *req, struct mwr_buf *b);

/** redirectScheme's view (Traefik's clientRequestURL): the scheme also
 *  from X-Forwarded-Proto (http/ws -> http, https/wss -> https, any other
 *  value ignored), the port split off the authority and left out when it
 *  is the scheme's default.  Appends to b; 0, or -1. */
int mwrd_url_client(const relais_host *host, relais_req *req,
                    struct mwr_buf *b);

/** Go's url.Parse(u) then String(): appends the normalized URL to out.
 *  0; -1 when Go would refuse u (control byte, bad %-escape, bad port,
 *  missing scheme before ':', colon in a relative first segment); -2 when
 *  out of memory or past MWR_MAX. */
int mwrd_location(const char *u, size_t n, struct mwr_buf *out);

/** Runs the redirection on old_url: the verdict on_request returns
 *  (RELAIS_NEXT, RELAIS_DONE after host->respond, or RELAIS_ERROR). */
int mwrd_redirect(const relais_host *host, relais_req *req,
                  const struct mwr_re *re, const char *replacement,
                  int permanent, const char *old_url, size_t old_len);

#endif /* MWREDIRECT_H */
