/*
 * mirror — fire-and-forget copies of requests for mirroring services.
 * Module prefix: mr_.
 *
 * The proxy builds the bytes of a mirrored request (head with
 * "Connection: close" and the body, framed by Content-Length) for one
 * server of a mirror service; mr_send connects, writes them, reads the
 * answer and throws it away until the server closes, then frees
 * everything.  Nothing of it reaches the client and nothing waits for it:
 * the main exchange goes on as if there were no mirror.  A call keeps a
 * reference on the snapshot that holds its server.
 *
 * Thread-safety: a call belongs to the worker that started it.
 */
#ifndef RELAIS_MIRROR_H
#define RELAIS_MIRROR_H

#include <stddef.h>

struct worker;
struct snapshot;
struct snap_server;
struct evbuffer;

/** Mirror calls one worker keeps open at most; more are dropped (and
 *  logged at debug level). */
#define MR_MAX_CALLS 1024

/** How long a mirror call may last in all (the server's answer is never
 *  awaited by anyone): 30 s unless the server's transport says less. */
#define MR_TIMEOUT_MS 30000

/** The worker's open mirror calls (struct worker's mirrors field). */
struct mr_set;

/**
 * Sends req (the whole request; its contents are moved out) to server sv
 * of snapshot snap on worker w.  Never fails visibly: a connection error,
 * a timeout or the cap on open calls only drops the copy.  Worker thread.
 */
void mr_send(struct worker *w, struct snapshot *snap, const struct snap_server *sv,
             struct evbuffer *req);

/** Open mirror calls of w (tests, metrics). */
size_t mr_count(const struct worker *w);

/** Ends every open call of w now (worker exit).  Worker thread. */
void mr_close_all(struct worker *w);

#endif /* RELAIS_MIRROR_H */
