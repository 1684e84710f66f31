/*
 * host_api — see host_api.h.  Thin adapters from the SDK's signatures to
 * the core modules; nothing here keeps state of its own but the control
 * loop pointer and the provider hooks.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "arena.h"
#include "conf.h"
#include "host_api.h"
#include "httpc.h"
#include "log.h"
#include "message.h"
#include "proxy.h"
#include "snapshot.h"
#include "worker.h"

static struct event_base *host_control_base; /* control loop */
static int (*host_publish_fn)(relais_provider *, const relais_doc *, size_t);
static const char *(*host_name_fn)(relais_provider *);
static int (*host_publish_kv_fn)(relais_provider *, const relais_kv *, size_t, int,
                                 const char *);

/** A plugin timer. */
struct relais_timer {
    struct event *ev;          /* the libevent timer */
    void (*cb)(void *arg);     /* plugin callback */
    void *arg;                 /* its argument */
};

/** A plugin fd watch. */
struct relais_watch {
    struct event *ev;                          /* persistent event */
    void (*cb)(int fd, int events, void *arg); /* plugin callback */
    void *arg;                                 /* its argument */
};

void host_set_control_base(struct event_base *base)
{
    host_control_base = base;
}

void host_set_publish(int (*publish)(relais_provider *, const relais_doc *, size_t),
                      int (*publish_kv)(relais_provider *, const relais_kv *, size_t, int,
                                        const char *),
                      const char *(*name)(relais_provider *))
{
    host_publish_fn = publish;
    host_publish_kv_fn = publish_kv;
    host_name_fn = name;
}

/* The loop of the calling thread. */
static struct event_base *host_base(void)
{
    return wk_self ? wk_self->base : host_control_base;
}

struct event_base *host_loop(void)
{
    return host_base();
}

static void host_log(int level, const char *who, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, who, fmt, ap);
    va_end(ap);
}

static void host_cfg_error(const relais_cfg *node, const char *key,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_cfg_verror(node, key, fmt, ap);
    va_end(ap);
}

static const char *host_req_method(relais_req *r, size_t *len)
{
    if (len) *len = r->method_len;
    return r->method;
}

static const char *host_req_scheme(relais_req *r, size_t *len)
{
    if (len) *len = r->scheme_len;
    return r->scheme;
}

static const char *host_req_authority(relais_req *r, size_t *len)
{
    if (len) *len = r->authority_len;
    return r->authority;
}

static const char *host_req_path(relais_req *r, size_t *len)
{
    if (len) *len = r->path_len;
    return r->path;
}

static const char *host_req_query(relais_req *r, size_t *len)
{
    if (len) *len = r->query_len;
    return r->query;
}

static relais_hdrs *host_req_headers(relais_req *r)
{
    return &r->req_hdrs;
}

static const char *host_req_client_ip(relais_req *r)
{
    return r->client_ip;
}

static int host_req_client_port(relais_req *r)
{
    return r->client_port;
}

static int host_req_is_tls(relais_req *r)
{
    return r->tls != NULL && r->conn != NULL;
}

/* The client's certificate chain, element idx, as DER in request memory
 * (leaf first; OpenSSL's server side keeps the chain without the leaf). */
static const unsigned char *host_req_tls_peer_cert(relais_req *r, size_t idx, size_t *len)
{
    SSL *ssl = r->conn ? r->tls : NULL;
    X509 *x = NULL;
    unsigned char *der = NULL, *p;
    int n;

    *len = 0;
    if (!ssl) return NULL;
    if (idx == 0) {
        x = SSL_get1_peer_certificate(ssl);
    } else {
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
        /* the server side's chain lacks the leaf; tolerate one that has it */
        X509 *leaf = SSL_get0_peer_certificate(ssl);
        int skip = (chain && sk_X509_num(chain) > 0 && leaf &&
                    X509_cmp(sk_X509_value(chain, 0), leaf) == 0) ? 0 : 1;
        if (chain && idx - (size_t)skip < (size_t)sk_X509_num(chain)) {
            x = sk_X509_value(chain, (int)(idx - (size_t)skip));
            X509_up_ref(x);
        }
    }
    if (!x) return NULL;
    n = i2d_X509(x, NULL);
    if (n > 0 && (der = arena_alloc(r->arena, (size_t)n)) != NULL) {
        p = der;
        i2d_X509(x, &p);
        *len = (size_t)n;
    }
    X509_free(x);
    return der;
}

static const char *host_req_entrypoint(relais_req *r)
{
    return r->ep_name;
}

static const char *host_req_router(relais_req *r)
{
    return r->router ? r->router->name : NULL;
}

static const char *host_req_service(relais_req *r)
{
    return r->service ? r->service->name : NULL;
}

static void *host_req_alloc(relais_req *r, size_t size)
{
    return arena_alloc(r->arena, size);
}

static int host_resp_status(relais_req *r)
{
    return r->has_resp ? r->status : 0;
}

static void host_resp_set_status(relais_req *r, int status)
{
    if (r->has_resp && !r->resp_started && status >= 100 && status <= 999)
        r->status = status;
}

static relais_hdrs *host_resp_headers(relais_req *r)
{
    return r->has_resp ? &r->resp_hdrs : NULL;
}

static size_t host_servers_count(const relais_servers *s)
{
    return s->n;
}

static uint32_t host_server_weight(const relais_servers *s, size_t i)
{
    return i < s->n ? s->v[i].weight : 0;
}

static int host_server_up(const relais_servers *s, size_t i)
{
    return i < s->n ? __atomic_load_n(&s->v[i].up, __ATOMIC_RELAXED) : 0;
}

static const char *host_server_url(const relais_servers *s, size_t i)
{
    return i < s->n ? s->v[i].url : NULL;
}

static uint32_t host_server_inflight(const relais_servers *s, size_t i)
{
    return i < s->n ? __atomic_load_n(&s->v[i].inflight, __ATOMIC_RELAXED) : 0;
}

static int host_provider_publish(relais_provider *p, const relais_doc *docs, size_t n)
{
    return host_publish_fn ? host_publish_fn(p, docs, n) : -1;
}

static int host_provider_publish_kv(relais_provider *p, const relais_kv *pairs, size_t n,
                                    int sep, const char *root)
{
    return host_publish_kv_fn ? host_publish_kv_fn(p, pairs, n, sep, root) : -1;
}

static const char *host_provider_name(relais_provider *p)
{
    return host_name_fn ? host_name_fn(p) : NULL;
}

static uint64_t host_now_ms(void)
{
    return wk_now_ms();
}

/* libevent callback of a plugin timer. */
static void host_timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct relais_timer *t = arg;

    (void)fd;
    (void)what;
    t->cb(t->arg);
}

static relais_timer *host_timer_new(void (*cb)(void *arg), void *arg)
{
    struct relais_timer *t;
    struct event_base *b = host_base();

    if (!b || !cb) return NULL;
    t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cb = cb;
    t->arg = arg;
    t->ev = evtimer_new(b, host_timer_fire, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    return t;
}

static int host_timer_start(relais_timer *t, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    return t ? evtimer_add(t->ev, &tv) : -1;
}

static void host_timer_stop(relais_timer *t)
{
    if (t) evtimer_del(t->ev);
}

static void host_timer_free(relais_timer *t)
{
    if (!t) return;
    event_free(t->ev);
    free(t);
}

/* libevent callback of a plugin watch. */
static void host_watch_fire(evutil_socket_t fd, short what, void *arg)
{
    struct relais_watch *w = arg;
    int ev = 0;

    if (what & EV_READ) ev |= RELAIS_WATCH_READ;
    if (what & EV_WRITE) ev |= RELAIS_WATCH_WRITE;
    w->cb((int)fd, ev, w->arg);
}

static relais_watch *host_watch_new(int fd, int events,
                                    void (*cb)(int fd, int events, void *arg), void *arg)
{
    struct relais_watch *w;
    struct event_base *b = host_base();
    short what = EV_PERSIST;

    if (!b || !cb || fd < 0) return NULL;
    if (events & RELAIS_WATCH_READ) what |= EV_READ;
    if (events & RELAIS_WATCH_WRITE) what |= EV_WRITE;
    w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->cb = cb;
    w->arg = arg;
    w->ev = event_new(b, fd, what, host_watch_fire, w);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        if (w->ev) event_free(w->ev);
        free(w);
        return NULL;
    }
    return w;
}

static void host_watch_free(relais_watch *w)
{
    if (!w) return;
    event_free(w->ev);
    free(w);
}

static unsigned host_thread_index(void)
{
    return wk_self ? wk_self->index : wk_count();
}

static unsigned host_thread_count(void)
{
    return wk_count();
}

static relais_http_call *host_http_request(const relais_http_req *req,
                                           const relais_http_callbacks *cb, void *arg)
{
    return hc_request(host_base(), req, cb, arg);
}

static const relais_host host_tbl = {
    .size = sizeof(relais_host),
    .abi_major = RELAIS_ABI_MAJOR,
    .abi_minor = RELAIS_ABI_MINOR,
    .log = host_log,
    .cfg_type = conf_cfg_type,
    .cfg_get = conf_cfg_get,
    .cfg_len = conf_cfg_len,
    .cfg_at = conf_cfg_at,
    .cfg_string = conf_cfg_string,
    .cfg_int = conf_cfg_int,
    .cfg_bool = conf_cfg_bool,
    .cfg_real = conf_cfg_real,
    .cfg_duration = conf_cfg_duration,
    .cfg_error = host_cfg_error,
    .req_method = host_req_method,
    .req_scheme = host_req_scheme,
    .req_authority = host_req_authority,
    .req_path = host_req_path,
    .req_query = host_req_query,
    .req_set_path = px_api_set_path,
    .req_set_query = px_api_set_query,
    .req_headers = host_req_headers,
    .req_client_ip = host_req_client_ip,
    .req_client_port = host_req_client_port,
    .req_is_tls = host_req_is_tls,
    .req_tls_peer_cert = host_req_tls_peer_cert,
    .resp_body_filter = px_api_body_filter,
    .resp_body_write = px_api_body_write,
    .req_set_authority = px_api_set_authority,
    .req_on_end = px_api_on_end,
    .resp_trailers = px_api_resp_trailers,
    .req_trailers = px_api_req_trailers,
    .req_body_filter = px_api_req_body_filter,
    .req_body_write = px_api_req_body_write,
    .req_entrypoint = host_req_entrypoint,
    .req_router = host_req_router,
    .req_service = host_req_service,
    .req_alloc = host_req_alloc,
    .respond = px_api_respond,
    .req_resume = px_api_resume,
    .resp_status = host_resp_status,
    .resp_set_status = host_resp_set_status,
    .resp_headers = host_resp_headers,
    .hdr_count = msg_api_count,
    .hdr_at = msg_api_at,
    .hdr_get = msg_api_get,
    .hdr_set = msg_api_set,
    .hdr_add = msg_api_add,
    .hdr_del = msg_api_del,
    .servers_count = host_servers_count,
    .server_weight = host_server_weight,
    .server_up = host_server_up,
    .server_url = host_server_url,
    .server_inflight = host_server_inflight,
    .provider_publish = host_provider_publish,
    .provider_name = host_provider_name,
    .now_ms = host_now_ms,
    .timer_new = host_timer_new,
    .timer_start = host_timer_start,
    .timer_stop = host_timer_stop,
    .timer_free = host_timer_free,
    .watch_new = host_watch_new,
    .watch_free = host_watch_free,
    .thread_index = host_thread_index,
    .thread_count = host_thread_count,
    .http_request = host_http_request,
    .http_cancel = hc_cancel,
    .provider_publish_kv = host_provider_publish_kv,
};

const relais_host *host_table(void)
{
    return &host_tbl;
}
