/*
 * httpc — the asynchronous HTTP/1.1 client the host offers to plugins
 * (providers polling an endpoint or streaming events, middlewares asking
 * an authentication server).  Module prefix: hc_.
 *
 * One call is one request on its own connection (TCP or a unix socket),
 * run on the calling thread's event loop; the response head, the decoded
 * body (in pieces, as it arrives) and the end are delivered through
 * callbacks.  Thread-safety: a call belongs to the thread that made it.
 */
#ifndef RELAIS_HTTPC_H
#define RELAIS_HTTPC_H

#include <openssl/ssl.h>

#include <relais/plugin.h>

struct event_base;

/**
 * Starts a request on base.  The request's strings are copied.  Returns
 * the call, or NULL with no callback made when the request is invalid
 * (bad URL, out of memory).  Afterwards exactly one on_done arrives
 * (error 0 when the whole response was read), unless hc_cancel is called
 * first; the call is freed by the host after on_done.
 */
relais_http_call *hc_request(struct event_base *base, const relais_http_req *req,
                             const relais_http_callbacks *cb, void *arg);

/**
 * hc_request for an https:// URL whose TLS is already set up: ssl (taken
 * over, freed on every path) carries the SNI, the verification and the
 * client certificate, as a serversTransport prepares them for its
 * servers (tr_ssl).  NULL ssl is hc_request.  Core only: the health
 * checks probe servers with their service's transport.
 */
relais_http_call *hc_request_ssl(struct event_base *base, const relais_http_req *req, SSL *ssl,
                                 const relais_http_callbacks *cb, void *arg);

/** Cancels a call: no callback follows, the call is freed.  May be called
 *  from inside a callback of the same call.  NULL is a no-op. */
void hc_cancel(relais_http_call *call);

/**
 * Appends len bytes of data to the body being collected in *buf (*used
 * bytes, *cap allocated, kept NUL-terminated), growing it by doubling
 * from 4 KiB.  At most max bytes in all: 0, or -1 when the data would
 * pass max or memory ran out (nothing is appended; the caller records
 * that the body was cut).  Any thread.
 */
int hc_body_append(char **buf, size_t *used, size_t *cap, const char *data, size_t len,
                   size_t max);

#endif /* RELAIS_HTTPC_H */
