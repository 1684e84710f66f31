/*
 * whoami — relais' own HTTP/1.1 test backend.
 *
 * A small, fast origin server in the spirit of traefik/whoami, written on
 * libevent (event_base + evconnlistener + bufferevent, not evhttp) with its
 * own strict HTTP/1.1 request parser. Request and response bodies are
 * streamed with back-pressure (read/write watermarks), never buffered whole,
 * so gigabyte uploads and downloads cost a few hundred KiB of memory.
 *
 * Endpoints (see README.md): / (echo, any unmatched path), /health, /data,
 * /bench, /api, /upload, /echo (WebSocket), /sse; ?wait=DURATION anywhere.
 *
 * Threading: one event_base per worker thread (--threads N, default 1). A
 * connection lives and dies on the worker that accepted it; the only state
 * shared between workers is the read-only configuration, the health status
 * (an atomic int) and the log file descriptor (one O_APPEND writev per line).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/evp.h>

/* ---- limits (every buffer has a cap checked where data is appended) ---- */

#define WO_HEAD_MAX (64u * 1024u)        /* request line + headers */
#define WO_HDR_MAX 128u                  /* header fields per request */
#define WO_READ_HIGH (256u * 1024u)      /* input watermark: stop reading */
#define WO_OUT_HIGH (256u * 1024u)       /* stop producing output above */
#define WO_OUT_LOW (64u * 1024u)         /* resume producing below */
#define WO_BLOCK (64u * 1024u)           /* /data chunk (static block) */
#define WO_CHUNK_LINE_MAX 4096u          /* chunk-size line incl. exts */
#define WO_TRAILER_MAX (16u * 1024u)     /* total trailer bytes */
#define WO_WS_MAX (1024u * 1024u)        /* WebSocket frame payload */
#define WO_NAME_MAX 256u                 /* --name length */
#define WO_LINGER_MS 2000                /* lingering close */
#define WO_IDLE_S 60                     /* idle keep-alive timeout */
#define WO_WAIT_MAX_US (3600ull * 1000000ull) /* ?wait= cap: one hour */
#define WO_DATA_MAX (1ull << 50)         /* /data?size= cap: 1 PiB */
#define WO_SSE_MAX 1000000u              /* /sse?count= cap */
#define WO_THREADS_MAX 256               /* --threads cap */
#define WO_CL_MAX (1ull << 62)           /* Content-Length / chunk cap */

#define WO_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- types ---- */

/* Command-line configuration; written by main() before any worker runs,
 * read-only afterwards (safe to read from every worker thread). */
typedef struct wo_config {
	const char *addr;       /* listen address literal (IPv4 or IPv6) */
	int port;               /* listen port; 0 = ephemeral (printed) */
	const char *unix_path;  /* listen on this Unix socket instead, or NULL */
	const char *name;       /* --name, or NULL */
	size_t name_len;        /* strlen(name), 0 when unset */
	int log_fd;             /* --log file (O_APPEND), -1 when unset */
	int threads;            /* number of workers (event bases) */
	uint64_t delay_us;      /* --delay, microseconds */
	char hostname[256];     /* gethostname() at startup */
	size_t hostname_len;    /* strlen(hostname) */
} wo_config;

struct wo_conn;

/* One worker: an event loop with its own listener and connections. */
typedef struct wo_worker {
	struct event_base *base;      /* this worker's loop (only touched by it) */
	struct evconnlistener *lst;   /* listener on the shared address */
	struct event *stop_ev;        /* stop-pipe watcher (workers > 0) */
	struct event *sig_int;        /* SIGINT handler (worker 0 only) */
	struct event *sig_term;       /* SIGTERM handler (worker 0 only) */
	struct wo_conn *conns;        /* live connections, for shutdown */
	pthread_t tid;                /* thread id (workers > 0) */
	int started;                  /* 1 once tid is a running thread */
} wo_worker;

/* Connection state machine. */
enum wo_state {
	WO_ST_HEAD,     /* waiting for a request head */
	WO_ST_BODY,     /* reading (and discarding/hashing) a request body */
	WO_ST_DELAY,    /* request complete, response delayed by a timer */
	WO_ST_STREAM,   /* streaming a response (/data, /sse) */
	WO_ST_WS,       /* WebSocket echo after a 101 */
	WO_ST_CLOSING,  /* flushing the last output, then lingering close */
	WO_ST_LINGER    /* write side shut, discarding input until EOF/timer */
};

/* Endpoint a request was routed to. */
enum wo_ep {
	WO_EP_ECHO, WO_EP_HEALTH, WO_EP_DATA, WO_EP_BENCH, WO_EP_API,
	WO_EP_UPLOAD, WO_EP_WS, WO_EP_SSE, WO_EP_ERROR
};

/* Request body framing. */
enum wo_body { WO_BODY_NONE, WO_BODY_CL, WO_BODY_CHUNKED };

/* Chunked decoder state. */
enum wo_chunk { WO_CH_SIZE, WO_CH_DATA, WO_CH_DATA_CRLF, WO_CH_TRAILER };

/* Response framing for wo_send_head(). */
enum wo_len { WO_LEN_FIXED, WO_LEN_CHUNKED, WO_LEN_CLOSE, WO_LEN_NONE };

/* Kind of streamed response. */
enum wo_stream { WO_STREAM_DATA, WO_STREAM_SSE };

/* One header field: offsets into wo_conn.head (no copies). */
typedef struct wo_hdr {
	uint32_t name_off;  /* field name start */
	uint32_t name_len;  /* field name length */
	uint32_t val_off;   /* value start (leading OWS skipped) */
	uint32_t val_len;   /* value length (trailing OWS trimmed) */
} wo_hdr;

/* Per-request facts, zeroed when a new head is parsed. */
typedef struct wo_req {
	uint32_t meth_len;        /* method length (method starts at head[0]) */
	uint32_t tgt_off;         /* request-target offset in head */
	uint32_t tgt_len;         /* request-target length */
	uint32_t line_len;        /* request line length without CRLF */
	uint32_t path_off;        /* path offset in head (after absolute-form) */
	uint32_t path_len;        /* path length (up to '?') */
	uint32_t query_off;       /* query offset (after '?') */
	uint32_t query_len;       /* query length, 0 if none */
	int minor;                /* HTTP/1.minor */
	int is_head;              /* method is HEAD: no response body */
	int is_get;               /* method is GET */
	int is_post;              /* method is POST */
	int is_put;               /* method is PUT */
	int keep_alive;           /* connection persists after this response */
	int host_count;           /* Host fields seen */
	int host_idx;             /* index of the Host field, -1 if none */
	int conn_close;           /* Connection: close seen */
	int conn_keepalive;       /* Connection: keep-alive seen */
	int conn_upgrade;         /* Connection: upgrade seen */
	int upgrade_ws;           /* Upgrade: websocket seen */
	int ws_key_idx;           /* index of Sec-WebSocket-Key, -1 if none */
	int ws_version_bad;       /* Sec-WebSocket-Version present and != 13 */
	int expect_continue;      /* Expect: 100-continue */
	int expect_other;         /* an Expect we cannot meet (417) */
	int cl_seen;              /* a Content-Length field was seen */
	uint64_t cl;              /* its value */
	int te_seen;              /* a Transfer-Encoding field was seen */
	int te_chunked;           /* times "chunked" was listed */
	int te_other;             /* another coding was listed */
	int te_last_chunked;      /* the last listed coding is chunked */
	enum wo_ep ep;            /* endpoint */
	int err_status;           /* WO_EP_ERROR: status to answer */
	const char *err_msg;      /* WO_EP_ERROR: body (static string) */
	const char *err_extra;    /* WO_EP_ERROR: extra header lines or NULL */
	int status;               /* echo: ?status= (0 = 200) */
	uint64_t wait_us;         /* ?wait= in microseconds */
	enum wo_body body_kind;   /* request body framing */
	int has_body;             /* the request declared a body */
	uint64_t body_left;       /* CL bytes, or current chunk bytes, left */
	uint64_t body_len;        /* decoded body bytes consumed so far */
	enum wo_chunk chunk_state;/* chunked decoder state */
	size_t trailer_bytes;     /* trailer bytes seen (cap WO_TRAILER_MAX) */
	int want_sha;             /* hash the body (/upload) */
	int want_small;           /* capture a small body (POST /health) */
	char small[16];           /* captured small body */
	size_t small_len;         /* bytes in small */
	int small_over;           /* body did not fit in small */
	uint64_t data_size;       /* /data?size= in bytes */
	int data_chunked;         /* /data?chunked=1 */
	uint32_t sse_count;       /* /sse?count= */
	uint64_t sse_interval_us; /* /sse?interval= */
	enum wo_stream stream_kind; /* which stream is running */
	int stream_chunked;       /* stream uses chunked framing */
	uint64_t stream_left;     /* /data bytes left to produce */
	uint32_t sse_i;           /* /sse events sent */
} wo_req;

/* One client connection; owned by its worker, freed by wo_conn_free(). */
typedef struct wo_conn {
	wo_worker *w;                 /* owning worker */
	struct wo_conn *prev;         /* worker list links */
	struct wo_conn *next;         /* worker list links */
	struct bufferevent *bev;      /* socket (owns the fd) */
	struct event *timer;          /* delay / sse / linger timer, lazy */
	EVP_MD_CTX *sha;              /* /upload digest context, lazy */
	enum wo_state state;          /* see enum wo_state */
	int paused_out;               /* processing paused until output drains */
	int write_on;                 /* EV_WRITE enabled: libevent flushes */
	int read_eof;                 /* peer closed its write side */
	char local_ip[INET6_ADDRSTRLEN + 8];  /* "IP:" of the connection */
	char remote[INET6_ADDRSTRLEN + 16];   /* "RemoteAddr:" ip:port */
	size_t scan_pos;              /* bytes of input already searched */
	char *head;                   /* current request head (copied) */
	size_t head_cap;              /* allocated size of head */
	size_t head_len;              /* bytes in head incl. final CRLFCRLF */
	wo_hdr hdrs[WO_HDR_MAX];      /* header fields of the current request */
	unsigned nhdrs;               /* used entries of hdrs */
	int ws_frag;                  /* WebSocket: inside a fragmented message */
	wo_req req;                   /* current request */
} wo_conn;

/* ---- globals ---- */

static wo_config wo_cfg;                 /* configuration (read-only) */
static atomic_int wo_health = 200;       /* current /health status */
static unsigned char wo_tchar[256];      /* RFC 9110 tchar table */
static char wo_block[WO_BLOCK];          /* 'x' * WO_BLOCK for /data */
static int wo_stop_pipe[2] = {-1, -1};   /* wakes workers on shutdown */

/* ---- forward declarations ---- */

static void wo_process(wo_conn *c);
static void wo_conn_free(wo_conn *c);

/* ---- small helpers ---- */

/* Fill the tchar lookup table (RFC 9110 5.6.2). Called once from main. */
static void wo_tables_init(void)
{
	const char *extra = "!#$%&'*+-.^_`|~";
	for (int ch = 0; ch < 256; ch++)
		wo_tchar[ch] = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		               (ch >= 'A' && ch <= 'Z');
	for (const char *p = extra; *p; p++)
		wo_tchar[(unsigned char)*p] = 1;
	memset(wo_block, 'x', sizeof wo_block);
}

/* Reason phrase for a status code ("" for unknown codes). */
static const char *wo_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

/* Case-insensitive compare of a (ptr,len) with a NUL-terminated literal. */
static int wo_ieq(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && strncasecmp(p, lit, l) == 0;
}

/* Parse a strict decimal (1+ digits, no sign) into *out; fails (returns -1)
 * on empty input, a non-digit, or a value above max. */
static int wo_parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

/* Parse a Go-style duration ("100ms", "2s", "1m30s", "1.5s", "250us") into
 * microseconds; a bare number means milliseconds. Returns -1 on a syntax
 * error or a value above WO_WAIT_MAX_US. */
static int wo_parse_duration(const char *p, size_t n, uint64_t *us_out)
{
	double total = 0.0;
	size_t i = 0;
	if (n == 0)
		return -1;
	while (i < n) {
		double num = 0.0, scale = 1.0, mult;
		int digits = 0;
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			num = num * 10 + (p[i++] - '0');
			digits++;
		}
		if (i < n && p[i] == '.') {
			i++;
			while (i < n && p[i] >= '0' && p[i] <= '9') {
				scale /= 10;
				num += (p[i++] - '0') * scale;
				digits++;
			}
		}
		if (digits == 0)
			return -1;
		size_t u = i;
		while (i < n && !(p[i] >= '0' && p[i] <= '9') && p[i] != '.')
			i++;
		const char *unit = p + u;
		size_t ul = i - u;
		if (ul == 0 && u == n && total == 0.0)
			mult = 1000.0;                      /* bare number: ms */
		else if (wo_ieq(unit, ul, "ns"))
			mult = 0.001;
		else if (wo_ieq(unit, ul, "us") || (ul == 3 && memcmp(unit, "\xc2\xb5s", 3) == 0) ||
		         (ul == 3 && memcmp(unit, "\xce\xbcs", 3) == 0))
			mult = 1.0;
		else if (wo_ieq(unit, ul, "ms"))
			mult = 1000.0;
		else if (ul == 1 && unit[0] == 's')
			mult = 1e6;
		else if (ul == 1 && unit[0] == 'm')
			mult = 60e6;
		else if (ul == 1 && unit[0] == 'h')
			mult = 3600e6;
		else
			return -1;
		total += num * mult;
		if (total > (double)WO_WAIT_MAX_US)
			return -1;
	}
	*us_out = (uint64_t)(total + 0.5);
	return 0;
}

/* Find query parameter key in the current request's query string (no
 * percent-decoding). Returns 1 and sets *v and *vlen when found, else 0. */
static int wo_query(const wo_conn *c, const char *key, const char **v, size_t *vlen)
{
	const char *q = c->head + c->req.query_off;
	const char *end = q + c->req.query_len;
	size_t kl = strlen(key);
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *e = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(e - q));
		const char *ke = eq ? eq : e;
		if ((size_t)(ke - q) == kl && memcmp(q, key, kl) == 0) {
			*v = eq ? eq + 1 : e;
			*vlen = (size_t)(e - *v);
			return 1;
		}
		q = e + 1;
	}
	return 0;
}

/* Write "<u64>" in decimal into buf (>= 21 bytes); returns its length. */
static size_t wo_u64_str(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/* Does the comma-separated list value (p,n) contain token tok
 * (case-insensitive, OWS trimmed)? */
static int wo_list_has(const char *p, size_t n, const char *tok)
{
	const char *end = p + n;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		const char *s = p;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		const char *t = e;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (wo_ieq(s, (size_t)(t - s), tok))
			return 1;
		p = e + 1;
	}
	return 0;
}

/* ---- output ---- */

/* Append l bytes of s to buf (capacity cap, *n used). The caller sized
 * buf for the worst case; an overflow would drop the piece, never write
 * out of bounds. */
static void wo_cat(char *buf, size_t cap, size_t *n, const char *s, size_t l)
{
	if (*n >= cap || l >= cap - *n)
		return;                    /* cannot happen: buf sized for worst case */
	memcpy(buf + *n, s, l);
	*n += l;
}

/* Write a response head into the connection's output with one
 * evbuffer_add. len_mode says how the body is framed; clen is used with
 * WO_LEN_FIXED. extra: additional CRLF-terminated header lines or NULL
 * (callers pass short literals). Adds X-Whoami-Name and the Connection
 * header implied by c->req.keep_alive / minor. */
static void wo_send_head(wo_conn *c, int status, const char *ctype,
                         enum wo_len len_mode, uint64_t clen, const char *extra)
{
	char buf[1024 + WO_NAME_MAX];
	char num[24];
	size_t n = 0, l;
	const char *reason = wo_reason(status);

	wo_cat(buf, sizeof buf, &n, "HTTP/1.1 ", 9);
	l = wo_u64_str(num, (uint64_t)status);
	wo_cat(buf, sizeof buf, &n, num, l);
	wo_cat(buf, sizeof buf, &n, " ", 1);
	wo_cat(buf, sizeof buf, &n, reason, strlen(reason));
	wo_cat(buf, sizeof buf, &n, "\r\n", 2);
	if (ctype) {
		wo_cat(buf, sizeof buf, &n, "Content-Type: ", 14);
		wo_cat(buf, sizeof buf, &n, ctype, strlen(ctype));
		wo_cat(buf, sizeof buf, &n, "\r\n", 2);
	}
	if (len_mode == WO_LEN_FIXED) {
		wo_cat(buf, sizeof buf, &n, "Content-Length: ", 16);
		l = wo_u64_str(num, clen);
		wo_cat(buf, sizeof buf, &n, num, l);
		wo_cat(buf, sizeof buf, &n, "\r\n", 2);
	} else if (len_mode == WO_LEN_CHUNKED) {
		wo_cat(buf, sizeof buf, &n, "Transfer-Encoding: chunked\r\n", 28);
	}
	if (wo_cfg.name) {
		wo_cat(buf, sizeof buf, &n, "X-Whoami-Name: ", 15);
		wo_cat(buf, sizeof buf, &n, wo_cfg.name, wo_cfg.name_len);
		wo_cat(buf, sizeof buf, &n, "\r\n", 2);
	}
	if (status != 101) {
		if (!c->req.keep_alive)
			wo_cat(buf, sizeof buf, &n, "Connection: close\r\n", 19);
		else if (c->req.minor == 0)
			wo_cat(buf, sizeof buf, &n, "Connection: keep-alive\r\n", 24);
	}
	if (extra)
		wo_cat(buf, sizeof buf, &n, extra, strlen(extra));
	wo_cat(buf, sizeof buf, &n, "\r\n", 2);
	evbuffer_add(bufferevent_get_output(c->bev), buf, n);
}

/* Response to the current request is complete: either get ready for the
 * next request (keep-alive) or start closing. Never frees c. */
static void wo_finish(wo_conn *c)
{
	if (c->req.keep_alive) {
		c->state = WO_ST_HEAD;
		return;
	}
	c->state = WO_ST_CLOSING;
	/* be told when the output is completely flushed */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

/* Status codes that carry no body and no Content-Length. */
static int wo_bodyless(int status)
{
	return status == 204 || status == 304 || (status >= 100 && status < 200);
}

/* Send a complete small response (head + body in the same output chain)
 * and finish the request. The body is omitted for HEAD requests. */
static void wo_send_simple(wo_conn *c, int status, const char *ctype,
                           const char *body, size_t len, const char *extra)
{
	if (wo_bodyless(status)) {
		wo_send_head(c, status, NULL, WO_LEN_NONE, 0, extra);
	} else {
		wo_send_head(c, status, ctype, WO_LEN_FIXED, len, extra);
		if (!c->req.is_head && len)
			evbuffer_add(bufferevent_get_output(c->bev), body, len);
	}
	wo_finish(c);
}

/* A fatal protocol error: answer status with a short text body, then
 * close. Returns -1 so parsers can `return wo_fail(...)`. */
static int wo_fail(wo_conn *c, int status, const char *msg)
{
	char body[128];
	int n = snprintf(body, sizeof body, "%s\n", msg);
	c->req.keep_alive = 0;
	if (c->req.meth_len == 0)
		c->req.is_head = 0;
	wo_send_simple(c, status, "text/plain; charset=utf-8", body, (size_t)n, NULL);
	return -1;
}

/* wo_fail() before a new request head was parsed: forget the previous
 * request's facts first (HEAD, version) so they do not shape the answer. */
static int wo_fail_new(wo_conn *c, int status, const char *msg)
{
	memset(&c->req, 0, sizeof c->req);
	c->req.minor = 1;
	return wo_fail(c, status, msg);
}

/* Byte sink used to build a body twice: once to count (buf == NULL), once
 * to write into buf, so the Content-Length is exact without a copy. */
typedef struct wo_emit {
	struct evbuffer *buf;  /* destination, or NULL to only count */
	size_t len;            /* bytes emitted so far */
} wo_emit;

/* Emit n bytes. */
static void wo_put(wo_emit *e, const void *p, size_t n)
{
	if (e->buf && n)
		evbuffer_add(e->buf, p, n);
	e->len += n;
}

/* Emit a NUL-terminated string. */
static void wo_puts(wo_emit *e, const char *s)
{
	wo_put(e, s, strlen(s));
}

/* ---- log ---- */

/* Append "METHOD TARGET\n" to the --log file with one writev(2) on an
 * O_APPEND descriptor (atomic with respect to other workers). */
static void wo_log_request(const wo_conn *c)
{
	struct iovec iov[4];
	if (wo_cfg.log_fd < 0)
		return;
	iov[0].iov_base = c->head;
	iov[0].iov_len = c->req.meth_len;
	iov[1].iov_base = (void *)" ";
	iov[1].iov_len = 1;
	iov[2].iov_base = c->head + c->req.tgt_off;
	iov[2].iov_len = c->req.tgt_len;
	iov[3].iov_base = (void *)"\n";
	iov[3].iov_len = 1;
	if (writev(wo_cfg.log_fd, iov, 4) < 0)
		perror("whoami: log write");
}

/* ---- request head ---- */

/* Interpret one header field of the current request (framing, connection
 * options, expectations, upgrade). Returns 0, or -1 after wo_fail(). */
static int wo_hdr_special(wo_conn *c, unsigned idx)
{
	wo_req *r = &c->req;
	const wo_hdr *h = &c->hdrs[idx];
	const char *name = c->head + h->name_off;
	const char *v = c->head + h->val_off;
	size_t vl = h->val_len;

	switch (h->name_len) {
	case 4:
		if (wo_ieq(name, 4, "host")) {
			r->host_count++;
			r->host_idx = (int)idx;
		}
		break;
	case 6:
		if (wo_ieq(name, 6, "expect")) {
			if (wo_ieq(v, vl, "100-continue"))
				r->expect_continue = 1;
			else
				r->expect_other = 1;
		}
		break;
	case 7:
		if (wo_ieq(name, 7, "upgrade") && wo_list_has(v, vl, "websocket"))
			r->upgrade_ws = 1;
		break;
	case 10:
		if (wo_ieq(name, 10, "connection")) {
			r->conn_close |= wo_list_has(v, vl, "close");
			r->conn_keepalive |= wo_list_has(v, vl, "keep-alive");
			r->conn_upgrade |= wo_list_has(v, vl, "upgrade");
		}
		break;
	case 14:
		if (wo_ieq(name, 14, "content-length")) {
			uint64_t cl;
			if (wo_parse_u64(v, vl, WO_CL_MAX, &cl) < 0)
				return wo_fail(c, 400, "bad Content-Length");
			if (r->cl_seen && cl != r->cl)
				return wo_fail(c, 400, "conflicting Content-Length");
			r->cl_seen = 1;
			r->cl = cl;
		}
		break;
	case 17:
		if (wo_ieq(name, 17, "transfer-encoding")) {
			const char *p = v, *end = v + vl;
			r->te_seen = 1;
			while (p < end) {
				const char *comma = memchr(p, ',', (size_t)(end - p));
				const char *e = comma ? comma : end;
				const char *s = p, *t = e;
				while (s < e && (*s == ' ' || *s == '\t'))
					s++;
				while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
					t--;
				if (t > s) {
					if (wo_ieq(s, (size_t)(t - s), "chunked")) {
						r->te_chunked++;
						r->te_last_chunked = 1;
					} else {
						r->te_other = 1;
						r->te_last_chunked = 0;
					}
				}
				p = e + 1;
			}
		} else if (wo_ieq(name, 17, "sec-websocket-key")) {
			r->ws_key_idx = (int)idx;
		}
		break;
	case 21:
		if (wo_ieq(name, 21, "sec-websocket-version") && !wo_ieq(v, vl, "13"))
			r->ws_version_bad = 1;
		break;
	default:
		break;
	}
	return 0;
}

/* Is the Sec-WebSocket-Key value a base64-encoded 16-byte nonce? */
static int wo_ws_key_ok(const char *k, size_t n)
{
	if (n != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (size_t i = 0; i < 22; i++) {
		char ch = k[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return 0;
	}
	return 1;
}

/* Mark the current request for a non-fatal error answer (sent after the
 * body was consumed; the connection is kept). */
static void wo_set_error(wo_conn *c, int status, const char *msg, const char *extra)
{
	c->req.ep = WO_EP_ERROR;
	c->req.err_status = status;
	c->req.err_msg = msg;
	c->req.err_extra = extra;
}

/* Route the parsed request: endpoint, query parameters, method checks,
 * body sinks. Never fails fatally (errors become WO_EP_ERROR). */
static void wo_route(wo_conn *c)
{
	wo_req *r = &c->req;
	const char *t = c->head + r->tgt_off;
	size_t tl = r->tgt_len, po = 0;
	const char *v;
	size_t vl;

	/* absolute-form: skip scheme://authority */
	if ((tl > 7 && strncasecmp(t, "http://", 7) == 0) ||
	    (tl > 8 && strncasecmp(t, "https://", 8) == 0)) {
		const char *a = memchr(t, '/', tl);
		a += 2;
		const char *s = memchr(a, '/', tl - (size_t)(a - t));
		po = s ? (size_t)(s - t) : tl;
	}
	const char *path = t + po;
	size_t pl = tl - po;
	const char *qm = memchr(path, '?', pl);
	if (qm) {
		r->query_off = (uint32_t)(qm + 1 - c->head);
		r->query_len = (uint32_t)(path + pl - qm - 1);
		pl = (size_t)(qm - path);
	}
	r->path_off = (uint32_t)(path - c->head);
	r->path_len = (uint32_t)pl;

	if (pl == 7 && memcmp(path, "/health", 7) == 0)
		r->ep = WO_EP_HEALTH;
	else if (pl == 5 && memcmp(path, "/data", 5) == 0)
		r->ep = WO_EP_DATA;
	else if (pl == 6 && memcmp(path, "/bench", 6) == 0)
		r->ep = WO_EP_BENCH;
	else if (pl == 4 && memcmp(path, "/api", 4) == 0)
		r->ep = WO_EP_API;
	else if (pl == 7 && memcmp(path, "/upload", 7) == 0)
		r->ep = WO_EP_UPLOAD;
	else if (pl == 5 && memcmp(path, "/echo", 5) == 0)
		r->ep = WO_EP_WS;
	else if (pl == 4 && memcmp(path, "/sse", 4) == 0)
		r->ep = WO_EP_SSE;
	else
		r->ep = WO_EP_ECHO;

	if (wo_query(c, "wait", &v, &vl) && wo_parse_duration(v, vl, &r->wait_us) < 0) {
		wo_set_error(c, 400, "bad wait duration\n", NULL);
		return;
	}

	switch (r->ep) {
	case WO_EP_ECHO:
		if (wo_query(c, "status", &v, &vl)) {
			uint64_t st;
			if (wo_parse_u64(v, vl, 599, &st) < 0 || st < 200) {
				wo_set_error(c, 400, "bad status (200-599)\n", NULL);
				return;
			}
			r->status = (int)st;
		}
		break;
	case WO_EP_HEALTH:
		if (r->is_post)
			r->want_small = 1;
		else if (!r->is_get && !r->is_head)
			wo_set_error(c, 405, "method not allowed\n", "Allow: GET, HEAD, POST\r\n");
		break;
	case WO_EP_UPLOAD:
		if (!r->is_post && !r->is_put)
			wo_set_error(c, 405, "method not allowed\n", "Allow: POST, PUT\r\n");
		else
			r->want_sha = 1;
		break;
	case WO_EP_DATA: {
		uint64_t size, mult = 1;
		if (!wo_query(c, "size", &v, &vl) || wo_parse_u64(v, vl, WO_DATA_MAX, &size) < 0) {
			wo_set_error(c, 400, "bad or missing size\n", NULL);
			return;
		}
		if (wo_query(c, "unit", &v, &vl)) {
			if (wo_ieq(v, vl, "b")) mult = 1;
			else if (wo_ieq(v, vl, "kb")) mult = 1000ull;
			else if (wo_ieq(v, vl, "mb")) mult = 1000ull * 1000;
			else if (wo_ieq(v, vl, "gb")) mult = 1000ull * 1000 * 1000;
			else if (wo_ieq(v, vl, "kib")) mult = 1ull << 10;
			else if (wo_ieq(v, vl, "mib")) mult = 1ull << 20;
			else if (wo_ieq(v, vl, "gib")) mult = 1ull << 30;
			else {
				wo_set_error(c, 400, "bad unit\n", NULL);
				return;
			}
		}
		if (size > WO_DATA_MAX / mult) {
			wo_set_error(c, 400, "size too large\n", NULL);
			return;
		}
		r->data_size = size * mult;
		if (wo_query(c, "chunked", &v, &vl))
			r->data_chunked = wo_ieq(v, vl, "1") || wo_ieq(v, vl, "true");
		break;
	}
	case WO_EP_SSE: {
		uint64_t n = 3, ms = 100;
		if ((wo_query(c, "count", &v, &vl) && wo_parse_u64(v, vl, WO_SSE_MAX, &n) < 0) ||
		    (wo_query(c, "interval", &v, &vl) && wo_parse_u64(v, vl, 3600000, &ms) < 0)) {
			wo_set_error(c, 400, "bad count or interval\n", NULL);
			return;
		}
		r->sse_count = (uint32_t)n;
		r->sse_interval_us = ms * 1000;
		break;
	}
	case WO_EP_WS: {
		const wo_hdr *k = r->ws_key_idx >= 0 ? &c->hdrs[r->ws_key_idx] : NULL;
		if (!r->is_get || !r->upgrade_ws || !r->conn_upgrade || !k ||
		    !wo_ws_key_ok(c->head + k->val_off, k->val_len) || r->ws_version_bad ||
		    r->body_kind != WO_BODY_NONE || r->minor == 0)
			wo_set_error(c, 400, "WebSocket upgrade required\n", NULL);
		break;
	}
	default:
		break;
	}
}

/* Parse the request head in c->head (c->head_len bytes ending in
 * CRLFCRLF): request line, header fields, framing. On success the request
 * is routed, logged, and c->state is WO_ST_BODY; returns 1. On a protocol
 * error an error response is queued, the connection is closing; returns -1. */
static int wo_parse_head(wo_conn *c)
{
	char *h = c->head;
	char *end = h + c->head_len;
	char *p = h, *eol, *le, *q;
	wo_req *r = &c->req;

	memset(r, 0, sizeof *r);
	r->host_idx = -1;
	r->ws_key_idx = -1;
	r->keep_alive = 0;
	c->nhdrs = 0;

	/* request-line = method SP request-target SP HTTP-version CRLF */
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol || eol == p || eol[-1] != '\r')
		return wo_fail(c, 400, "bad request line");
	le = eol - 1;
	q = p;
	while (q < le && wo_tchar[(unsigned char)*q])
		q++;
	if (q == p || q >= le || *q != ' ')
		return wo_fail(c, 400, "bad method");
	r->meth_len = (uint32_t)(q - p);
	r->is_head = r->meth_len == 4 && memcmp(p, "HEAD", 4) == 0;
	r->is_get = r->meth_len == 3 && memcmp(p, "GET", 3) == 0;
	r->is_post = r->meth_len == 4 && memcmp(p, "POST", 4) == 0;
	r->is_put = r->meth_len == 3 && memcmp(p, "PUT", 3) == 0;
	char *t = ++q;
	while (q < le && (unsigned char)*q > 0x20 && *q != 0x7f)
		q++;
	if (q == t || q >= le || *q != ' ')
		return wo_fail(c, 400, "bad request target");
	r->tgt_off = (uint32_t)(t - h);
	r->tgt_len = (uint32_t)(q - t);
	q++;
	if (le - q != 8 || memcmp(q, "HTTP/", 5) != 0 || q[5] < '0' || q[5] > '9' ||
	    q[6] != '.' || q[7] < '0' || q[7] > '9')
		return wo_fail(c, 400, "bad HTTP version");
	if (q[5] != '1')
		return wo_fail(c, 505, "only HTTP/1.x is supported");
	r->minor = q[7] - '0';
	r->line_len = (uint32_t)(le - h);
	p = eol + 1;

	/* field-line = field-name ":" OWS field-value OWS CRLF */
	for (;;) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol || eol == p || eol[-1] != '\r')
			return wo_fail(c, 400, "bad header line");
		le = eol - 1;
		if (le == p)
			break;                                  /* empty line */
		if (*p == ' ' || *p == '\t')
			return wo_fail(c, 400, "obsolete line folding");
		q = p;
		while (q < le && wo_tchar[(unsigned char)*q])
			q++;
		if (q == p || q >= le || *q != ':')
			return wo_fail(c, 400, "bad header name");
		char *v = q + 1, *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (char *x = v; x < ve; x++) {
			unsigned char ch = (unsigned char)*x;
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return wo_fail(c, 400, "bad header value");
		}
		if (c->nhdrs == WO_HDR_MAX)
			return wo_fail(c, 431, "too many header fields");
		wo_hdr *hd = &c->hdrs[c->nhdrs];
		hd->name_off = (uint32_t)(p - h);
		hd->name_len = (uint32_t)(q - p);
		hd->val_off = (uint32_t)(v - h);
		hd->val_len = (uint32_t)(ve - v);
		if (wo_hdr_special(c, c->nhdrs++) < 0)
			return -1;
		p = eol + 1;
	}

	/* message framing (RFC 9112 6) — ambiguity is a 400, never a guess */
	if (r->minor >= 1 && r->host_count != 1)
		return wo_fail(c, 400, "exactly one Host header is required");
	if (r->host_count > 1)
		return wo_fail(c, 400, "multiple Host headers");
	if (r->te_seen) {
		if (r->minor == 0)
			return wo_fail(c, 400, "Transfer-Encoding in HTTP/1.0");
		if (r->cl_seen)
			return wo_fail(c, 400, "both Transfer-Encoding and Content-Length");
		if (!r->te_last_chunked || r->te_chunked != 1) {
			if (r->te_other && r->te_last_chunked)
				return wo_fail(c, 501, "unsupported transfer coding");
			return wo_fail(c, 400, "bad Transfer-Encoding");
		}
		if (r->te_other)
			return wo_fail(c, 501, "unsupported transfer coding");
		r->body_kind = WO_BODY_CHUNKED;
		r->chunk_state = WO_CH_SIZE;
		r->has_body = 1;
	} else if (r->cl_seen) {
		r->body_kind = r->cl ? WO_BODY_CL : WO_BODY_NONE;
		r->body_left = r->cl;
		r->has_body = 1;
	}
	if (r->expect_other)
		return wo_fail(c, 417, "unsupported expectation");
	r->keep_alive = r->minor >= 1 ? !r->conn_close : (r->conn_keepalive && !r->conn_close);

	wo_log_request(c);
	wo_route(c);

	if (r->want_sha) {
		if (!c->sha && !(c->sha = EVP_MD_CTX_new()))
			return wo_fail(c, 500, "out of memory");
		if (!EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL))
			return wo_fail(c, 500, "digest init failed");
	}
	if (r->expect_continue && r->minor >= 1 && r->body_kind != WO_BODY_NONE)
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->state = WO_ST_BODY;
	return 1;
}

/* Look for a complete request head in the input; copy it into c->head and
 * parse it. Returns 1 (parsed, state BODY), 0 (need more bytes) or -1
 * (error answered, closing). */
static int wo_read_head(wo_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in);
	struct evbuffer_ptr ptr;
	unsigned char two[2];

	/* RFC 9112 2.2: ignore empty lines before the request line */
	while (avail >= 2 && evbuffer_copyout(in, two, 2) == 2 && two[0] == '\r' && two[1] == '\n') {
		evbuffer_drain(in, 2);
		avail -= 2;
		c->scan_pos = 0;
	}
	if (avail < 4) {
		c->scan_pos = 0;
		return 0;
	}
	size_t start = c->scan_pos > 3 ? c->scan_pos - 3 : 0;
	if (start >= avail)
		start = 0;
	if (evbuffer_ptr_set(in, &ptr, start, EVBUFFER_PTR_SET) < 0)
		return wo_fail_new(c, 500, "internal error");
	ptr = evbuffer_search(in, "\r\n\r\n", 4, &ptr);
	if (ptr.pos < 0) {
		c->scan_pos = avail;
		if (avail > WO_HEAD_MAX)
			return wo_fail_new(c, 431, "request head too large");
		return 0;
	}
	size_t hlen = (size_t)ptr.pos + 4;
	c->scan_pos = 0;
	if (hlen > WO_HEAD_MAX)
		return wo_fail_new(c, 431, "request head too large");
	if (hlen > c->head_cap) {
		size_t cap = c->head_cap ? c->head_cap : 1024;
		while (cap < hlen)
			cap *= 2;
		char *nh = realloc(c->head, cap);
		if (!nh)
			return wo_fail_new(c, 500, "out of memory");
		c->head = nh;
		c->head_cap = cap;
	}
	evbuffer_remove(in, c->head, hlen);
	c->head_len = hlen;
	return wo_parse_head(c);
}

/* ---- request body ---- */

/* Feed n body bytes at p to the request's sinks (count, digest, capture). */
static void wo_body_feed(wo_conn *c, const void *p, size_t n)
{
	wo_req *r = &c->req;
	if (r->want_sha)
		EVP_DigestUpdate(c->sha, p, n);
	if (r->want_small) {
		if (r->small_len + n <= sizeof r->small) {
			memcpy(r->small + r->small_len, p, n);
			r->small_len += n;
		} else {
			r->small_over = 1;
		}
	}
}

/* Consume n body bytes from the front of the input (n <= its length). */
static void wo_body_consume(wo_conn *c, struct evbuffer *in, size_t n)
{
	if (c->req.want_sha || c->req.want_small) {
		struct evbuffer_iovec vec[16];
		size_t left = n;
		while (left) {
			int nv = evbuffer_peek(in, (ev_ssize_t)left, NULL, vec, 16);
			size_t done = 0;
			for (int i = 0; i < nv && i < 16 && done < left; i++) {
				size_t l = vec[i].iov_len;
				if (l > left - done)
					l = left - done;
				wo_body_feed(c, vec[i].iov_base, l);
				done += l;
			}
			evbuffer_drain(in, done);
			left -= done;
		}
	} else {
		evbuffer_drain(in, n);
	}
	c->req.body_len += n;
}

/* Parse "HEX [ext]" of a chunk-size line (len bytes, no CRLF). Returns the
 * size, or -1 if malformed. */
static int64_t wo_chunk_size(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < len; i++) {
		int d;
		char ch = s[i];
		if (ch >= '0' && ch <= '9') d = ch - '0';
		else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
		else break;
		if (v > (WO_CL_MAX >> 4))
			return -1;
		v = (v << 4) | (uint64_t)d;
	}
	if (i == 0)
		return -1;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < len) {
		if (s[i] != ';')
			return -1;
		for (; i < len; i++) {
			unsigned char ch = (unsigned char)s[i];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -1;
		}
	}
	return (int64_t)v;
}

/* Read as much of the request body as is available. Returns 1 (body
 * complete), 0 (need more) or -1 (malformed, answered, closing). */
static int wo_read_body(wo_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	wo_req *r = &c->req;

	if (r->body_kind == WO_BODY_NONE)
		return 1;
	if (r->body_kind == WO_BODY_CL) {
		size_t avail = evbuffer_get_length(in);
		size_t n = avail < r->body_left ? avail : (size_t)r->body_left;
		if (n)
			wo_body_consume(c, in, n);
		r->body_left -= n;
		return r->body_left == 0;
	}
	for (;;) {
		size_t avail = evbuffer_get_length(in), eol_len = 0;
		struct evbuffer_ptr e;
		char line[WO_CHUNK_LINE_MAX + 1];
		switch (r->chunk_state) {
		case WO_CH_SIZE: {
			e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
			if (e.pos < 0) {
				if (avail > WO_CHUNK_LINE_MAX)
					return wo_fail(c, 400, "chunk size line too long");
				return 0;
			}
			if ((size_t)e.pos > WO_CHUNK_LINE_MAX)
				return wo_fail(c, 400, "chunk size line too long");
			evbuffer_remove(in, line, (size_t)e.pos);
			evbuffer_drain(in, 2);
			int64_t sz = wo_chunk_size(line, (size_t)e.pos);
			if (sz < 0)
				return wo_fail(c, 400, "bad chunk size");
			if (sz == 0) {
				r->chunk_state = WO_CH_TRAILER;
			} else {
				r->body_left = (uint64_t)sz;
				r->chunk_state = WO_CH_DATA;
			}
			break;
		}
		case WO_CH_DATA: {
			size_t n = avail < r->body_left ? avail : (size_t)r->body_left;
			if (n)
				wo_body_consume(c, in, n);
			r->body_left -= n;
			if (r->body_left)
				return 0;
			r->chunk_state = WO_CH_DATA_CRLF;
			break;
		}
		case WO_CH_DATA_CRLF: {
			unsigned char two[2];
			if (avail < 2)
				return 0;
			evbuffer_copyout(in, two, 2);
			if (two[0] != '\r' || two[1] != '\n')
				return wo_fail(c, 400, "missing CRLF after chunk data");
			evbuffer_drain(in, 2);
			r->chunk_state = WO_CH_SIZE;
			break;
		}
		case WO_CH_TRAILER: {
			e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
			if (e.pos < 0) {
				if (r->trailer_bytes + avail > WO_TRAILER_MAX)
					return wo_fail(c, 400, "trailer section too large");
				return 0;
			}
			if (e.pos == 0) {
				evbuffer_drain(in, 2);
				return 1;
			}
			r->trailer_bytes += (size_t)e.pos + 2;
			if (r->trailer_bytes > WO_TRAILER_MAX)
				return wo_fail(c, 400, "trailer section too large");
			/* discarded; must at least look like a field line */
			size_t l = (size_t)e.pos, i = 0;
			evbuffer_remove(in, line, l);
			evbuffer_drain(in, 2);
			while (i < l && wo_tchar[(unsigned char)line[i]])
				i++;
			if (i == 0 || i == l || line[i] != ':')
				return wo_fail(c, 400, "bad trailer field");
			break;
		}
		}
	}
}

/* ---- responses ---- */

/* Emit the echo body (traefik/whoami style, LF line endings). */
static void wo_echo_body(const wo_conn *c, wo_emit *e)
{
	if (wo_cfg.name) {
		wo_puts(e, "Name: ");
		wo_put(e, wo_cfg.name, wo_cfg.name_len);
		wo_puts(e, "\n");
	}
	wo_puts(e, "Hostname: ");
	wo_put(e, wo_cfg.hostname, wo_cfg.hostname_len);
	wo_puts(e, "\nIP: ");
	wo_puts(e, c->local_ip);
	wo_puts(e, "\nRemoteAddr: ");
	wo_puts(e, c->remote);
	wo_puts(e, "\n");
	wo_put(e, c->head, c->req.line_len);
	wo_puts(e, "\n");
	for (unsigned i = 0; i < c->nhdrs; i++) {
		const wo_hdr *h = &c->hdrs[i];
		wo_put(e, c->head + h->name_off, h->name_len);
		wo_puts(e, ": ");
		wo_put(e, c->head + h->val_off, h->val_len);
		wo_puts(e, "\n");
	}
	if (c->req.has_body) {
		char num[24];
		wo_puts(e, "Body-Length: ");
		wo_put(e, num, wo_u64_str(num, c->req.body_len));
		wo_puts(e, "\n");
	}
}

/* Answer the echo endpoint (status from ?status=, default 200). */
static void wo_send_echo(wo_conn *c)
{
	int status = c->req.status ? c->req.status : 200;
	wo_emit cnt = { NULL, 0 };
	if (wo_bodyless(status)) {
		wo_send_simple(c, status, NULL, NULL, 0, NULL);
		return;
	}
	wo_echo_body(c, &cnt);
	wo_send_head(c, status, "text/plain; charset=utf-8", WO_LEN_FIXED, cnt.len, NULL);
	if (!c->req.is_head) {
		wo_emit out = { bufferevent_get_output(c->bev), 0 };
		wo_echo_body(c, &out);
	}
	wo_finish(c);
}

/* Emit s (n bytes) as a JSON string literal: quotes, escapes, control
 * characters as \u00XX, invalid UTF-8 bytes replaced by U+FFFD. */
static void wo_json_str(wo_emit *e, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
	wo_put(e, "\"", 1);
	while (p < end) {
		unsigned char ch = *p;
		if (ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x80) {
			p++;
			continue;
		}
		if (ch >= 0x80) {
			/* validate one UTF-8 sequence */
			size_t need = ch >= 0xf0 && ch <= 0xf4 ? 3 : ch >= 0xe0 ? 2 : ch >= 0xc2 && ch <= 0xdf ? 1 : 0;
			if (ch > 0xf4)
				need = 0;
			int ok = need > 0 && (size_t)(end - p) > need;
			for (size_t k = 1; ok && k <= need; k++)
				ok = (p[k] & 0xc0) == 0x80;
			if (ok && ch == 0xe0 && p[1] < 0xa0) ok = 0;   /* overlong */
			if (ok && ch == 0xed && p[1] > 0x9f) ok = 0;   /* surrogates */
			if (ok && ch == 0xf0 && p[1] < 0x90) ok = 0;   /* overlong */
			if (ok && ch == 0xf4 && p[1] > 0x8f) ok = 0;   /* > U+10FFFF */
			if (ok) {
				p += need + 1;
				continue;
			}
			wo_put(e, run, (size_t)(p - run));
			wo_puts(e, "\\ufffd");
			run = ++p;
			continue;
		}
		wo_put(e, run, (size_t)(p - run));
		if (ch == '"')
			wo_puts(e, "\\\"");
		else if (ch == '\\')
			wo_puts(e, "\\\\");
		else if (ch == '\n')
			wo_puts(e, "\\n");
		else if (ch == '\r')
			wo_puts(e, "\\r");
		else if (ch == '\t')
			wo_puts(e, "\\t");
		else {
			char u[8];
			snprintf(u, sizeof u, "\\u%04x", ch);
			wo_puts(e, u);
		}
		run = ++p;
	}
	wo_put(e, run, (size_t)(p - run));
	wo_put(e, "\"", 1);
}

/* Emit the /api JSON document. Header fields are grouped by name
 * (case-insensitive, first spelling kept), values in arrival order. */
static void wo_api_body(const wo_conn *c, wo_emit *e)
{
	const wo_req *r = &c->req;
	wo_puts(e, "{\"hostname\":");
	wo_json_str(e, wo_cfg.hostname, wo_cfg.hostname_len);
	wo_puts(e, ",\"ip\":[");
	wo_json_str(e, c->local_ip, strlen(c->local_ip));
	wo_puts(e, "],\"remoteAddr\":");
	wo_json_str(e, c->remote, strlen(c->remote));
	wo_puts(e, ",\"headers\":{");
	int first = 1;
	for (unsigned i = 0; i < c->nhdrs; i++) {
		const wo_hdr *h = &c->hdrs[i];
		const char *nm = c->head + h->name_off;
		unsigned j;
		for (j = 0; j < i; j++)
			if (c->hdrs[j].name_len == h->name_len &&
			    strncasecmp(c->head + c->hdrs[j].name_off, nm, h->name_len) == 0)
				break;
		if (j < i)
			continue;                   /* already emitted with its group */
		if (!first)
			wo_puts(e, ",");
		first = 0;
		wo_json_str(e, nm, h->name_len);
		wo_puts(e, ":[");
		int fv = 1;
		for (unsigned k = i; k < c->nhdrs; k++) {
			const wo_hdr *g = &c->hdrs[k];
			if (g->name_len != h->name_len || strncasecmp(c->head + g->name_off, nm, h->name_len) != 0)
				continue;
			if (!fv)
				wo_puts(e, ",");
			fv = 0;
			wo_json_str(e, c->head + g->val_off, g->val_len);
		}
		wo_puts(e, "]");
	}
	wo_puts(e, "},\"url\":");
	wo_json_str(e, c->head + r->tgt_off, r->tgt_len);
	wo_puts(e, ",\"host\":");
	if (r->host_idx >= 0)
		wo_json_str(e, c->head + c->hdrs[r->host_idx].val_off, c->hdrs[r->host_idx].val_len);
	else
		wo_puts(e, "\"\"");
	wo_puts(e, ",\"method\":");
	wo_json_str(e, c->head, r->meth_len);
	wo_puts(e, ",\"name\":");
	wo_json_str(e, wo_cfg.name ? wo_cfg.name : "", wo_cfg.name_len);
	wo_puts(e, "}\n");
}

/* Answer /api. */
static void wo_send_api(wo_conn *c)
{
	wo_emit cnt = { NULL, 0 };
	wo_api_body(c, &cnt);
	wo_send_head(c, 200, "application/json", WO_LEN_FIXED, cnt.len, NULL);
	if (!c->req.is_head) {
		wo_emit out = { bufferevent_get_output(c->bev), 0 };
		wo_api_body(c, &out);
	}
	wo_finish(c);
}

/* Answer /health: GET/HEAD report the current status (body: its reason
 * phrase); POST sets it from the body ("503"). */
static void wo_send_health(wo_conn *c)
{
	wo_req *r = &c->req;
	if (r->is_post) {
		const char *s = r->small;
		size_t n = r->small_len;
		uint64_t st;
		while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		while (n && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		if (r->small_over || wo_parse_u64(s, n, 599, &st) < 0 || st < 200) {
			wo_send_simple(c, 400, "text/plain; charset=utf-8", "bad status (200-599)\n", 21, NULL);
			return;
		}
		atomic_store(&wo_health, (int)st);
		wo_send_simple(c, 200, "text/plain; charset=utf-8", "OK", 2, NULL);
		return;
	}
	int st = atomic_load(&wo_health);
	const char *reason = wo_reason(st);
	wo_send_simple(c, st, "text/plain; charset=utf-8", reason, strlen(reason), NULL);
}

/* Answer /upload: byte count and SHA-256 of the body. */
static void wo_send_upload(wo_conn *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char body[160], hex[2 * EVP_MAX_MD_SIZE + 1];
	if (!EVP_DigestFinal_ex(c->sha, md, &mdlen)) {
		wo_send_simple(c, 500, "text/plain; charset=utf-8", "digest failed\n", 14, NULL);
		return;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
	int n = snprintf(body, sizeof body, "received %" PRIu64 " bytes sha256=%s\n", c->req.body_len, hex);
	wo_send_simple(c, 200, "text/plain; charset=utf-8", body, (size_t)n, NULL);
}

/* No-op cleanup for evbuffer references to the static wo_block. */
static void wo_ref_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	(void)arg;
}

/* Produce /data output until the output buffer reaches WO_OUT_HIGH or the
 * body is complete (then finish the request). Bytes are references to the
 * static block: no copies, no allocation beyond evbuffer chain headers. */
static void wo_data_fill(wo_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	wo_req *r = &c->req;
	while (r->stream_left > 0 && evbuffer_get_length(out) < WO_OUT_HIGH) {
		size_t n = r->stream_left > WO_BLOCK ? WO_BLOCK : (size_t)r->stream_left;
		if (r->stream_chunked) {
			char line[24];
			int k = snprintf(line, sizeof line, "%zx\r\n", n);
			evbuffer_add(out, line, (size_t)k);
		}
		evbuffer_add_reference(out, wo_block, n, wo_ref_cleanup, NULL);
		if (r->stream_chunked)
			evbuffer_add(out, "\r\n", 2);
		r->stream_left -= n;
	}
	if (r->stream_left == 0) {
		if (r->stream_chunked)
			evbuffer_add(out, "0\r\n\r\n", 5);
		wo_finish(c);
	}
}

/* Start /data: head, then stream (chunked only over HTTP/1.1). */
static void wo_data_start(wo_conn *c)
{
	wo_req *r = &c->req;
	r->stream_chunked = r->data_chunked && r->minor >= 1;
	if (r->stream_chunked)
		wo_send_head(c, 200, "application/octet-stream", WO_LEN_CHUNKED, 0, NULL);
	else
		wo_send_head(c, 200, "application/octet-stream", WO_LEN_FIXED, r->data_size, NULL);
	if (r->is_head) {
		wo_finish(c);
		return;
	}
	r->stream_kind = WO_STREAM_DATA;
	r->stream_left = r->data_size;
	c->state = WO_ST_STREAM;
	wo_data_fill(c);
}

/* (Re)arm the connection's timer to fire after us microseconds.
 * Returns -1 if the timer cannot be created. */
static int wo_timer_arm(wo_conn *c, uint64_t us);

/* Emit the next /sse event and either arm the timer for the following one
 * or end the stream. */
static void wo_sse_tick(wo_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	wo_req *r = &c->req;
	while (r->sse_i < r->sse_count) {
		char ev[48];
		int n = snprintf(ev, sizeof ev, "data: %" PRIu32 "\n\n", ++r->sse_i);
		if (r->stream_chunked)
			evbuffer_add_printf(out, "%x\r\n%s\r\n", (unsigned)n, ev);
		else
			evbuffer_add(out, ev, (size_t)n);
		if (r->sse_interval_us && r->sse_i < r->sse_count) {
			if (wo_timer_arm(c, r->sse_interval_us) == 0)
				return;
		}
	}
	if (r->stream_chunked)
		evbuffer_add(out, "0\r\n\r\n", 5);
	wo_finish(c);
}

/* Start /sse: event-stream head, then events 1..count. Over HTTP/1.0 the
 * body is delimited by closing the connection. */
static void wo_sse_start(wo_conn *c)
{
	wo_req *r = &c->req;
	r->stream_chunked = r->minor >= 1;
	if (!r->stream_chunked)
		r->keep_alive = 0;
	wo_send_head(c, 200, "text/event-stream", r->stream_chunked ? WO_LEN_CHUNKED : WO_LEN_CLOSE, 0,
	             "Cache-Control: no-cache\r\n");
	if (r->is_head) {
		wo_finish(c);
		return;
	}
	r->stream_kind = WO_STREAM_SSE;
	r->sse_i = 0;
	c->state = WO_ST_STREAM;
	wo_sse_tick(c);
}

/* Answer a valid WebSocket upgrade with 101 and switch to frame echo. */
static void wo_ws_start(wo_conn *c)
{
	const wo_hdr *k = &c->hdrs[c->req.ws_key_idx];
	unsigned char in[24 + sizeof WO_WS_GUID], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char acc[64], extra[160];

	memcpy(in, c->head + k->val_off, 24);
	memcpy(in + 24, WO_WS_GUID, sizeof WO_WS_GUID - 1);
	if (!EVP_Digest(in, 24 + sizeof WO_WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL)) {
		wo_fail(c, 500, "digest failed");
		return;
	}
	EVP_EncodeBlock((unsigned char *)acc, md, (int)mdlen);
	snprintf(extra, sizeof extra,
	         "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", acc);
	wo_send_head(c, 101, NULL, WO_LEN_NONE, 0, extra);
	c->state = WO_ST_WS;
	c->ws_frag = 0;
	bufferevent_setwatermark(c->bev, EV_READ, 0, WO_WS_MAX + 64);
}

/* Dispatch the complete request to its endpoint. */
static void wo_respond(wo_conn *c)
{
	wo_req *r = &c->req;
	switch (r->ep) {
	case WO_EP_ERROR:
		wo_send_simple(c, r->err_status, "text/plain; charset=utf-8", r->err_msg,
		               strlen(r->err_msg), r->err_extra);
		break;
	case WO_EP_BENCH:
		wo_send_simple(c, 200, "text/plain", "1", 1, NULL);
		break;
	case WO_EP_ECHO:
		wo_send_echo(c);
		break;
	case WO_EP_API:
		wo_send_api(c);
		break;
	case WO_EP_HEALTH:
		wo_send_health(c);
		break;
	case WO_EP_UPLOAD:
		wo_send_upload(c);
		break;
	case WO_EP_DATA:
		wo_data_start(c);
		break;
	case WO_EP_SSE:
		wo_sse_start(c);
		break;
	case WO_EP_WS:
		wo_ws_start(c);
		break;
	}
}

/* The whole request (head and body) was read: respond now, or after
 * --delay + ?wait= via the timer. */
static void wo_request_done(wo_conn *c)
{
	uint64_t us = wo_cfg.delay_us + c->req.wait_us;
	if (us) {
		c->state = WO_ST_DELAY;
		if (wo_timer_arm(c, us) == 0)
			return;
	}
	wo_respond(c);
}

/* ---- WebSocket ---- */

/* Queue a server frame header (unmasked) for opcode b0 (FIN|op). */
static void wo_ws_frame_head(struct evbuffer *out, unsigned char b0, uint64_t len)
{
	unsigned char h[10];
	size_t n = 0;
	h[n++] = b0;
	if (len < 126) {
		h[n++] = (unsigned char)len;
	} else if (len <= 0xffff) {
		h[n++] = 126;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)(len >> (8 * i));
	}
	evbuffer_add(out, h, n);
}

/* Send a close frame with code and start closing the connection. */
static void wo_ws_close(wo_conn *c, unsigned code)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	unsigned char p[2] = { (unsigned char)(code >> 8), (unsigned char)code };
	wo_ws_frame_head(out, 0x88, code ? 2 : 0);
	if (code)
		evbuffer_add(out, p, 2);
	c->req.keep_alive = 0;
	wo_finish(c);
}

/* Echo complete client frames from the input: data frames back with the
 * same opcode and FIN (fragmentation preserved), ping -> pong, close ->
 * close; protocol violations close with 1002, frames above WO_WS_MAX with
 * 1009. Stops when output is above WO_OUT_HIGH (resumed by write cb). */
static void wo_ws_process(wo_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->state == WO_ST_WS) {
		unsigned char h[14];
		size_t avail = evbuffer_get_length(in), hl = 2;
		uint64_t len;

		if (evbuffer_get_length(out) >= WO_OUT_HIGH) {
			c->paused_out = 1;
			return;
		}
		if (avail < 2)
			return;
		evbuffer_copyout(in, h, avail < sizeof h ? avail : sizeof h);
		int fin = h[0] & 0x80, op = h[0] & 0x0f;
		len = h[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				return;
			len = ((uint64_t)h[2] << 8) | h[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				return;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | h[2 + i];
			hl = 10;
		}
		if (!(h[1] & 0x80) || (h[0] & 0x70)) {
			wo_ws_close(c, 1002);                 /* unmasked or RSV set */
			return;
		}
		if (op >= 8) {
			if (op > 10 || !fin || len > 125) {
				wo_ws_close(c, 1002);
				return;
			}
		} else if (op > 2 || (op == 0 && !c->ws_frag) || (op != 0 && c->ws_frag)) {
			wo_ws_close(c, 1002);
			return;
		}
		if (len > WO_WS_MAX) {
			wo_ws_close(c, 1009);
			return;
		}
		if (avail < hl + 4 + len)
			return;
		const unsigned char *mask = h + hl;
		unsigned char m[4] = { mask[0], mask[1], mask[2], mask[3] };
		evbuffer_drain(in, hl + 4);

		if (op == 10) {                           /* pong: ignore */
			evbuffer_drain(in, (size_t)len);
			continue;
		}
		if (op == 8) {                            /* close */
			unsigned char p[125];
			unsigned code = 1000;
			evbuffer_remove(in, p, (size_t)len);
			if (len == 1) {
				code = 1002;
			} else if (len >= 2) {
				code = ((unsigned)(p[0] ^ m[0]) << 8) | (unsigned)(p[1] ^ m[1]);
				if (code < 1000 || code == 1004 || code == 1005 || code == 1006 ||
				    (code > 1014 && code < 3000) || code > 4999)
					code = 1002;
			}
			wo_ws_close(c, code);
			return;
		}
		if (op == 9)
			wo_ws_frame_head(out, 0x8a, len);       /* ping -> pong */
		else
			wo_ws_frame_head(out, (unsigned char)(fin | op), len);
		if (op <= 2)
			c->ws_frag = !fin;
		if (len) {
			struct evbuffer_iovec vec;
			if (evbuffer_reserve_space(out, (ev_ssize_t)len, &vec, 1) < 1) {
				wo_ws_close(c, 1011);
				return;
			}
			unsigned char *d = vec.iov_base;
			evbuffer_remove(in, d, (size_t)len);
			for (uint64_t i = 0; i < len; i++)
				d[i] ^= m[i & 3];
			vec.iov_len = (size_t)len;
			evbuffer_commit_space(out, &vec, 1);
		}
	}
}

/* ---- connection lifecycle ---- */

/* Run the request loop over the buffered input until more bytes are
 * needed, output must drain first, or the connection waits on a timer /
 * stream. Never frees c. */
static void wo_process(wo_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int r;
	for (;;) {
		if (c->paused_out)
			return;
		if (c->state == WO_ST_HEAD && evbuffer_get_length(out) >= WO_OUT_HIGH) {
			c->paused_out = 1;
			return;
		}
		switch (c->state) {
		case WO_ST_HEAD:
			r = wo_read_head(c);
			if (r == 0 && c->read_eof) {
				c->req.keep_alive = 0;
				wo_finish(c);
			}
			if (r <= 0)
				return;
			break;
		case WO_ST_BODY:
			r = wo_read_body(c);
			if (r == 0 && c->read_eof) {
				c->req.keep_alive = 0;
				wo_finish(c);
			}
			if (r <= 0)
				return;
			wo_request_done(c);
			break;
		case WO_ST_WS:
			wo_ws_process(c);
			return;
		default:
			return;
		}
	}
}

/* Free a connection: socket, timer, digest, head buffer. NULL is a no-op. */
static void wo_conn_free(wo_conn *c)
{
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->timer)
		event_free(c->timer);
	EVP_MD_CTX_free(c->sha);
	free(c->head);
	free(c);
}

/* Output fully flushed on a closing connection: shut the write side and
 * discard input until EOF or WO_LINGER_MS, so the peer reads the last
 * response instead of a reset. Frees c if the peer already closed. */
static void wo_linger(wo_conn *c)
{
	if (c->read_eof) {
		wo_conn_free(c);
		return;
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->state = WO_ST_LINGER;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_enable(c->bev, EV_READ);
	if (wo_timer_arm(c, (uint64_t)WO_LINGER_MS * 1000) < 0)
		wo_conn_free(c);
}

/* End of every callback. Flushes the output with one direct writev when
 * possible (no EV_WRITE add/del round trip per response); leaves the rest,
 * and /data streams, to libevent with EV_WRITE enabled; resumes a paused
 * request loop once the output drained; a closing connection whose output
 * is flushed goes to linger. May free c: c must not be used afterwards. */
static void wo_settle(wo_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len;
	int streaming;

	for (;;) {
		len = evbuffer_get_length(out);
		streaming = c->state == WO_ST_STREAM && c->req.stream_kind == WO_STREAM_DATA;
		if (len && !c->write_on && !streaming) {
			/* bufferevent_socket keeps its output frozen at the front
			 * and thaws it around its own writes; do the same */
			evbuffer_unfreeze(out, 1);
			int n = evbuffer_write(out, bufferevent_getfd(c->bev));
			int err = errno;
			evbuffer_freeze(out, 1);
			if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
				wo_conn_free(c);           /* peer gone (EPIPE, ECONNRESET) */
				return;
			}
			len = evbuffer_get_length(out);
		}
		if (c->paused_out && !c->write_on && len <= WO_OUT_LOW) {
			c->paused_out = 0;
			wo_process(c);
			continue;
		}
		break;
	}
	if ((len || streaming) && !c->write_on) {
		c->write_on = 1;
		bufferevent_enable(c->bev, EV_WRITE);
	} else if (!len && !streaming && c->write_on) {
		c->write_on = 0;
		bufferevent_disable(c->bev, EV_WRITE);
	}
	if (c->state == WO_ST_CLOSING && len == 0)
		wo_linger(c);
}

/* Timer: delayed response, next /sse event, or end of linger. */
static void wo_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	wo_conn *c = arg;
	(void)fd;
	(void)what;
	switch (c->state) {
	case WO_ST_DELAY:
		wo_respond(c);
		break;
	case WO_ST_STREAM:
		if (c->req.stream_kind == WO_STREAM_SSE)
			wo_sse_tick(c);
		break;
	case WO_ST_LINGER:
		wo_conn_free(c);
		return;
	default:
		break;
	}
	wo_process(c);
	wo_settle(c);
}

static int wo_timer_arm(wo_conn *c, uint64_t us)
{
	struct timeval tv;
	if (!c->timer && !(c->timer = evtimer_new(c->w->base, wo_timer_cb, c)))
		return -1;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

/* Readable: run the request loop (or discard input when closing). */
static void wo_read_cb(struct bufferevent *bev, void *arg)
{
	wo_conn *c = arg;
	if (c->state == WO_ST_CLOSING || c->state == WO_ST_LINGER) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	wo_process(c);
	wo_settle(c);
}

/* Output drained below the low watermark: refill /data, resume a paused
 * request loop, or complete a close. */
static void wo_write_cb(struct bufferevent *bev, void *arg)
{
	wo_conn *c = arg;
	(void)bev;
	if (c->state == WO_ST_STREAM && c->req.stream_kind == WO_STREAM_DATA)
		wo_data_fill(c);
	else if (c->paused_out)
		c->paused_out = 0;
	wo_process(c);
	wo_settle(c);
}

/* EOF, error or idle timeout on the socket. */
static void wo_event_cb(struct bufferevent *bev, short what, void *arg)
{
	wo_conn *c = arg;
	if (what & BEV_EVENT_ERROR) {
		wo_conn_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->read_eof = 1;
		switch (c->state) {
		case WO_ST_LINGER:
			wo_conn_free(c);
			return;
		case WO_ST_HEAD:
			if (c->paused_out)
				break;                 /* answer what is buffered first */
			/* fall through */
		case WO_ST_BODY:
		case WO_ST_WS:
			c->req.keep_alive = 0;
			wo_finish(c);
			break;
		default:
			break;                         /* delay/stream/closing go on */
		}
		wo_settle(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->state == WO_ST_LINGER ||
		    (c->state == WO_ST_HEAD && !c->paused_out &&
		     evbuffer_get_length(bufferevent_get_output(bev)) == 0)) {
			wo_conn_free(c);
			return;
		}
		bufferevent_enable(bev, EV_READ);
	}
}

/* Format the connection's local and remote addresses. */
static void wo_conn_addrs(wo_conn *c, evutil_socket_t fd, const struct sockaddr *sa)
{
	struct sockaddr_storage ls;
	socklen_t ll = sizeof ls;
	char ip[INET6_ADDRSTRLEN];

	memset(&ls, 0, sizeof ls);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
		snprintf(c->remote, sizeof c->remote, "%s:%u", ip, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
		snprintf(c->remote, sizeof c->remote, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else {
		snprintf(c->remote, sizeof c->remote, "@");
	}
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0 && ls.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ls)->sin_addr, c->local_ip, sizeof c->local_ip);
	else if (ls.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ls)->sin6_addr, c->local_ip, sizeof c->local_ip);
	else
		snprintf(c->local_ip, sizeof c->local_ip, "unix");
}

/* New connection on worker w (listener thread = worker thread). */
static void wo_accept_cb(struct evconnlistener *lst, evutil_socket_t fd,
                         struct sockaddr *sa, int salen, void *arg)
{
	wo_worker *w = arg;
	wo_conn *c;
	struct timeval idle = { WO_IDLE_S, 0 };
	(void)lst;
	(void)salen;

	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->w = w;
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	wo_conn_addrs(c, fd, sa);
	c->state = WO_ST_HEAD;
	bufferevent_setcb(c->bev, wo_read_cb, wo_write_cb, wo_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, WO_READ_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, WO_OUT_LOW, 0);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	/* bufferevent_socket_new() enables EV_WRITE; wo_settle() manages it */
	bufferevent_disable(c->bev, EV_WRITE);
	if (bufferevent_enable(c->bev, EV_READ) < 0)
		wo_conn_free(c);
}

/* Accept error (EMFILE...): report and keep listening. */
static void wo_accept_error_cb(struct evconnlistener *lst, void *arg)
{
	(void)lst;
	(void)arg;
	int err = EVUTIL_SOCKET_ERROR();
	fprintf(stderr, "whoami: accept: %s\n", evutil_socket_error_to_string(err));
}

/* ---- workers, listeners, main ---- */

/* SIGINT/SIGTERM on worker 0: wake the other workers, stop this one. */
static void wo_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	wo_worker *w = arg;
	(void)sig;
	(void)what;
	if (write(wo_stop_pipe[1], "x", 1) < 0)
		perror("whoami: stop pipe");
	event_base_loopbreak(w->base);
}

/* Stop pipe readable (never drained, so every worker sees it). */
static void wo_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	wo_worker *w = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(w->base);
}

/* Worker thread body. */
static void *wo_worker_main(void *arg)
{
	wo_worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

/* Create a bound, listening, non-blocking socket. For TCP (addr, *port),
 * *port is updated with the bound port; reuseport sets SO_REUSEPORT.
 * Returns the fd or -1 (message printed). */
static int wo_listen_socket(int *port, int reuseport)
{
	int fd, one = 1;
	if (wo_cfg.unix_path) {
		struct sockaddr_un su;
		struct stat st;
		memset(&su, 0, sizeof su);
		su.sun_family = AF_UNIX;
		if (strlen(wo_cfg.unix_path) >= sizeof su.sun_path) {
			fprintf(stderr, "whoami: unix path too long\n");
			return -1;
		}
		strcpy(su.sun_path, wo_cfg.unix_path);
		if (stat(wo_cfg.unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(wo_cfg.unix_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&su, sizeof su) < 0 || listen(fd, 1024) < 0) {
			fprintf(stderr, "whoami: listen on unix:%s: %s\n", wo_cfg.unix_path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}

	struct sockaddr_storage ss;
	socklen_t sl;
	char a[INET6_ADDRSTRLEN + 2];
	size_t al = strlen(wo_cfg.addr);
	memset(&ss, 0, sizeof ss);
	if (al >= 2 && al < sizeof a && wo_cfg.addr[0] == '[' && wo_cfg.addr[al - 1] == ']') {
		memcpy(a, wo_cfg.addr + 1, al - 2);
		a[al - 2] = '\0';
	} else {
		snprintf(a, sizeof a, "%s", wo_cfg.addr);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)*port);
		sl = sizeof *s4;
	} else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)*port);
		sl = sizeof *s6;
	} else {
		fprintf(stderr, "whoami: bad address '%s' (need an IPv4/IPv6 literal)\n", wo_cfg.addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("whoami: socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "whoami: listen on %s port %d: %s\n", wo_cfg.addr, *port, strerror(errno));
		close(fd);
		return -1;
	}
	sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
	return fd;
}

/* Print usage to f. */
static void wo_usage(FILE *f)
{
	fprintf(f,
	        "usage: whoami [--addr 127.0.0.1] [--port 8080] [--unix PATH] [--name NAME]\n"
	        "              [--log FILE] [--threads N] [--delay MS]\n"
	        "  --port 0 picks a free port; the bound address is printed on stdout\n");
}

/* Parse a bounded integer option value; exits with a message on error. */
static uint64_t wo_opt_num(const char *opt, const char *v, uint64_t max)
{
	uint64_t n;
	if (!v || wo_parse_u64(v, strlen(v), max, &n) < 0) {
		fprintf(stderr, "whoami: %s needs a number <= %" PRIu64 "\n", opt, max);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	wo_worker *ws = NULL;
	const char *log_path = NULL;
	int rc = 1, shared_fd = -1, nt = 0;

	wo_tables_init();
	wo_cfg.addr = "127.0.0.1";
	wo_cfg.port = 8080;
	wo_cfg.log_fd = -1;
	wo_cfg.threads = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		const char *eq = strchr(a, '=');
		char opt[32];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			wo_usage(stdout);
			return 0;
		}
		if (eq && (size_t)(eq - a) < sizeof opt) {
			memcpy(opt, a, (size_t)(eq - a));
			opt[eq - a] = '\0';
			v = eq + 1;
		} else {
			snprintf(opt, sizeof opt, "%s", a);
			v = i + 1 < argc ? argv[i + 1] : NULL;
			if (v)
				i++;
		}
		if (strcmp(opt, "--port") == 0)
			wo_cfg.port = (int)wo_opt_num(opt, v, 65535);
		else if (strcmp(opt, "--addr") == 0 && v)
			wo_cfg.addr = v;
		else if (strcmp(opt, "--unix") == 0 && v)
			wo_cfg.unix_path = v;
		else if (strcmp(opt, "--name") == 0 && v)
			wo_cfg.name = v;
		else if (strcmp(opt, "--log") == 0 && v)
			log_path = v;
		else if (strcmp(opt, "--threads") == 0)
			wo_cfg.threads = (int)wo_opt_num(opt, v, WO_THREADS_MAX);
		else if (strcmp(opt, "--delay") == 0)
			wo_cfg.delay_us = wo_opt_num(opt, v, 3600000) * 1000;
		else {
			fprintf(stderr, "whoami: unknown or incomplete option '%s'\n", a);
			wo_usage(stderr);
			return 2;
		}
	}
	if (wo_cfg.threads < 1) {
		fprintf(stderr, "whoami: --threads must be >= 1\n");
		return 2;
	}
	if (wo_cfg.name) {
		wo_cfg.name_len = strlen(wo_cfg.name);
		if (wo_cfg.name_len > WO_NAME_MAX) {
			fprintf(stderr, "whoami: --name longer than %u bytes\n", WO_NAME_MAX);
			return 2;
		}
		for (size_t i = 0; i < wo_cfg.name_len; i++) {
			unsigned char ch = (unsigned char)wo_cfg.name[i];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				fprintf(stderr, "whoami: --name contains control characters\n");
				return 2;
			}
		}
	}
	if (gethostname(wo_cfg.hostname, sizeof wo_cfg.hostname - 1) < 0)
		snprintf(wo_cfg.hostname, sizeof wo_cfg.hostname, "localhost");
	wo_cfg.hostname_len = strlen(wo_cfg.hostname);
	if (log_path) {
		wo_cfg.log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (wo_cfg.log_fd < 0) {
			fprintf(stderr, "whoami: --log %s: %s\n", log_path, strerror(errno));
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(wo_stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		perror("whoami: pipe");
		goto out;
	}

	nt = wo_cfg.threads;
	ws = calloc((size_t)nt, sizeof *ws);
	if (!ws)
		goto out;
	int port = wo_cfg.port;
	if (wo_cfg.unix_path && (shared_fd = wo_listen_socket(&port, 0)) < 0)
		goto out;
	for (int i = 0; i < nt; i++) {
		wo_worker *w = &ws[i];
		int fd = shared_fd;
		unsigned flags = LEV_OPT_CLOSE_ON_EXEC;
		w->base = event_base_new();
		if (!w->base) {
			fprintf(stderr, "whoami: event_base_new failed\n");
			goto out;
		}
		if (!wo_cfg.unix_path) {
			fd = wo_listen_socket(&port, nt > 1);
			if (fd < 0)
				goto out;
			flags |= LEV_OPT_CLOSE_ON_FREE;
		}
		w->lst = evconnlistener_new(w->base, wo_accept_cb, w, flags, 0, fd);
		if (!w->lst) {
			fprintf(stderr, "whoami: evconnlistener_new failed\n");
			if (!wo_cfg.unix_path)
				close(fd);
			goto out;
		}
		evconnlistener_set_error_cb(w->lst, wo_accept_error_cb);
		if (i == 0) {
			w->sig_int = evsignal_new(w->base, SIGINT, wo_signal_cb, w);
			w->sig_term = evsignal_new(w->base, SIGTERM, wo_signal_cb, w);
			if (!w->sig_int || !w->sig_term || evsignal_add(w->sig_int, NULL) < 0 ||
			    evsignal_add(w->sig_term, NULL) < 0)
				goto out;
		} else {
			w->stop_ev = event_new(w->base, wo_stop_pipe[0], EV_READ | EV_PERSIST, wo_stop_cb, w);
			if (!w->stop_ev || event_add(w->stop_ev, NULL) < 0)
				goto out;
		}
	}
	if (wo_cfg.unix_path)
		printf("whoami listening on unix:%s\n", wo_cfg.unix_path);
	else if (strchr(wo_cfg.addr, ':') && wo_cfg.addr[0] != '[')
		printf("whoami listening on [%s]:%d\n", wo_cfg.addr, port);
	else
		printf("whoami listening on %s:%d\n", wo_cfg.addr, port);
	fflush(stdout);

	for (int i = 1; i < nt; i++) {
		if (pthread_create(&ws[i].tid, NULL, wo_worker_main, &ws[i]) != 0) {
			fprintf(stderr, "whoami: pthread_create failed\n");
			if (write(wo_stop_pipe[1], "x", 1) < 0)
				perror("whoami: stop pipe");
			goto out;
		}
		ws[i].started = 1;
	}
	event_base_dispatch(ws[0].base);
	rc = 0;

out:
	if (ws) {
		for (int i = 0; i < nt; i++)
			if (ws[i].started)
				pthread_join(ws[i].tid, NULL);
		for (int i = 0; i < nt; i++) {
			wo_worker *w = &ws[i];
			while (w->conns)
				wo_conn_free(w->conns);
			if (w->lst)
				evconnlistener_free(w->lst);
			if (w->stop_ev)
				event_free(w->stop_ev);
			if (w->sig_int)
				event_free(w->sig_int);
			if (w->sig_term)
				event_free(w->sig_term);
			if (w->base)
				event_base_free(w->base);
		}
		free(ws);
	}
	if (shared_fd >= 0) {
		close(shared_fd);
		unlink(wo_cfg.unix_path);
	}
	if (wo_stop_pipe[0] >= 0) {
		close(wo_stop_pipe[0]);
		close(wo_stop_pipe[1]);
	}
	if (wo_cfg.log_fd >= 0)
		close(wo_cfg.log_fd);
	libevent_global_shutdown();
	return rc;
}
