/*
 * test_stream — virtual streams (src/stream.c): the contract h2.c relies
 * on to present one HTTP/2 stream to proxy.c as a stream:
 *  - read interest reaches the owner only when it changes (enable,
 *    disable, the input cap);
 *  - the owner's input reaches the read callback only while reading;
 *  - output is offered to the owner at the end of the loop turn, not at
 *    once; the write callback runs when the owner took it down to the
 *    low watermark (also later, through st_virtual_taken);
 *  - st_shutdown_write ends the owner's output; eof and errors reach the
 *    event callback; st_connect is refused;
 *  - st_virtual_wake calls the reader with no bytes; the read timeout is a
 *    timer (ST_READING | ST_TIMEOUT);
 *  - a kept stream (struct st_vcache) comes back empty, for its new owner,
 *    with nothing pending: bytes left in it are dropped without calling
 *    anyone, its timers and flush do not fire, the cap holds, and
 *    st_vcache_clear frees what is kept.
 */
#include "config.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "stream.h"
#include "tap.h"

/** The fake owner (an HTTP/2 stream's stand-in). */
struct owner {
    int interest;      /* last read interest told */
    int interest_calls; /* how many times it was told */
    int outputs;       /* output offers */
    size_t take;       /* bytes it takes per offer (its "window") */
    size_t taken;      /* bytes taken in all */
    int ended;         /* end_output calls */
    int fail;          /* output fails */
};

/** What the user saw. */
struct user {
    int reads;    /* read callbacks */
    size_t got;   /* bytes read */
    int writes;   /* write callbacks */
    short events; /* last event flags */
    int nevents;  /* event callbacks */
};

static int o_output(struct stream *s, void *ctx)
{
    struct owner *o = ctx;
    size_t n = evbuffer_get_length(st_output(s));

    o->outputs++;
    if (o->fail) return -1;
    if (n > o->take) n = o->take;
    evbuffer_drain(st_output(s), n);
    o->taken += n;
    return 0;
}

static void o_interest(struct stream *s, void *ctx, int on)
{
    struct owner *o = ctx;

    (void)s;
    o->interest = on;
    o->interest_calls++;
}

static void o_end(struct stream *s, void *ctx)
{
    (void)s;
    ((struct owner *)ctx)->ended++;
}

static const struct st_vops ops = {o_output, o_interest, o_end};

static void u_read(struct stream *s, void *arg)
{
    struct user *u = arg;
    struct evbuffer *in = st_input(s);

    u->reads++;
    u->got += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void u_write(struct stream *s, void *arg)
{
    (void)s;
    ((struct user *)arg)->writes++;
}

static void u_event(struct stream *s, short what, void *arg)
{
    struct user *u = arg;

    (void)s;
    u->events = what;
    u->nevents++;
}

int main(void)
{
    struct event_base *base = event_base_new();
    struct owner o = {0};
    struct user u = {0};
    struct stream *s;
    char buf[1000];

    memset(buf, 'x', sizeof(buf));
    o.take = 300;
    s = st_new_virtual(base, &ops, &o);
    ok(s != NULL, "a virtual stream");
    ok(st_is_virtual(s) && st_fd(s) < 0, "it is virtual and has no socket");
    st_setcb(s, u_read, u_write, u_event, &u);

    /* reading */
    evbuffer_add(st_input(s), buf, 10);
    st_virtual_input(s);
    ok(u.reads == 0, "input while not reading: no read callback");
    st_enable(s, ST_READ);
    ok(o.interest == 1 && o.interest_calls == 1, "enable: the owner is told once");
    st_enable(s, ST_READ);
    ok(o.interest_calls == 1, "enable again: not told twice");
    st_virtual_input(s);
    ok(u.reads == 1 && u.got == 10, "input while reading: delivered (10 bytes)");
    st_disable(s, ST_READ);
    ok(o.interest == 0 && o.interest_calls == 2, "disable: the owner holds the peer");
    st_enable(s, ST_READ);
    st_setwatermark(s, ST_READ, 0, 100);
    evbuffer_add(st_input(s), buf, 150);
    u.reads = 0;
    st_disable(s, ST_READ); /* the user does not drain while disabled */
    st_virtual_input(s);
    ok(u.reads == 0 && o.interest == 0, "over the cap while disabled: held");
    st_enable(s, ST_READ);
    ok(o.interest == 0, "enabled but over the input cap: still held");
    evbuffer_drain(st_input(s), 150);
    ok(o.interest == 1, "drained under the cap: the owner is told to resume");

    /* writing */
    st_setwatermark(s, ST_WRITE, 0, 0);
    evbuffer_add(st_output(s), buf, 1000);
    ok(o.outputs == 0, "output is not offered at once");
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ok(o.outputs == 1 && o.taken == 300, "offered at the end of the turn (300 taken)");
    ok(u.writes == 0, "not drained: no write callback");
    st_virtual_taken(s);
    ok(u.writes == 0, "taken but 700 left: still none");
    o.take = 1000;
    st_flush(s);
    ok(o.taken == 1000, "a flush offers the rest");
    st_virtual_taken(s);
    ok(u.writes == 1, "drained: the write callback");

    /* end, eof, errors */
    st_shutdown_write(s);
    ok(o.ended == 1, "st_shutdown_write ends the owner's output");
    st_virtual_eof(s);
    ok(u.nevents == 1 && u.events == (ST_READING | ST_EOF) && st_eof(s), "eof reaches the user");
    o.fail = 1;
    evbuffer_add(st_output(s), buf, 10);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ok(u.nevents == 2 && (u.events & ST_ERROR), "a dead stream: ST_ERROR to the user");
    st_virtual_error(s);
    ok(u.nevents == 3 && (u.events & ST_ERROR), "a reset: ST_ERROR");
    {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        ok(st_connect(s, (struct sockaddr *)&ss, sizeof(ss)) < 0, "st_connect is refused");
    }
    st_free(s);
    st_free(NULL);

    /* a second stream: wake and the read timeout (HTTP/2 server streams) */
    {
        struct owner o2 = {0};
        struct user u2 = {0};
        struct timeval tv = {0, 30000};
        s = st_new_virtual(base, &ops, &o2);
        st_setcb(s, u_read, u_write, u_event, &u2);
        st_virtual_wake(s);
        ok(u2.reads == 0, "wake while not reading: no read callback");
        st_enable(s, ST_READ);
        st_virtual_wake(s);
        ok(u2.reads == 1 && u2.got == 0, "wake while reading: the read callback, no bytes");
        st_set_timeouts(s, &tv, NULL);
        event_base_loop(base, EVLOOP_ONCE);
        ok(u2.nevents == 1 && (u2.events & ST_TIMEOUT) && (u2.events & ST_READING),
           "no input within the read timeout: ST_READING | ST_TIMEOUT");
        st_set_timeouts(s, NULL, NULL);
        evbuffer_add(st_input(s), "x", 1);
        st_virtual_input(s);
        ok(u2.got == 1, "input after the timeout is still delivered");
        st_free(s);
    }
    /* kept streams: one HTTP/2 connection's cache */
    {
        struct st_vcache vc = {NULL, 0, 1};
        struct owner o3 = {0}, o4 = {0};
        struct user u3 = {0}, u4 = {0};
        struct timeval tv = {0, 20000};
        struct stream *s2, *s3;
        s = st_new_virtual_cached(&vc, base, &ops, &o3);
        ok(s != NULL && vc.n == 0, "an empty cache makes a new stream");
        st_setcb(s, u_read, u_write, u_event, &u3);
        st_enable(s, ST_READ);
        st_setwatermark(s, ST_READ, 0, 100);
        st_set_timeouts(s, &tv, NULL);
        evbuffer_add(st_input(s), buf, 150); /* over the cap, not read */
        evbuffer_add(st_output(s), buf, 10); /* a flush is pending */
        st_free_cached(&vc, s);
        ok(vc.n == 1 && vc.list == s, "freed: kept");
        ok(o3.interest_calls == 1 && o3.outputs == 0 && u3.nevents == 0,
           "keeping it called nobody (owner, user)");
        tv.tv_usec = 50000;
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        ok(o3.outputs == 0 && u3.nevents == 0, "its flush and its read timer do not fire");
        s2 = st_new_virtual_cached(&vc, base, &ops, &o4);
        ok(s2 == s && vc.n == 0, "the next stream is the kept one");
        ok(evbuffer_get_length(st_input(s2)) == 0 && evbuffer_get_length(st_output(s2)) == 0 &&
           !st_eof(s2), "it comes back empty");
        st_setcb(s2, u_read, u_write, u_event, &u4);
        st_enable(s2, ST_READ);
        ok(o4.interest == 1 && o4.interest_calls == 1 && o3.interest_calls == 1,
           "read interest reaches the new owner only");
        evbuffer_add(st_input(s2), "ab", 2);
        st_virtual_input(s2);
        ok(u4.reads == 1 && u4.got == 2 && u3.reads == 0, "input reaches the new user");
        o4.take = 5;
        evbuffer_add(st_output(s2), buf, 5);
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        ok(o4.outputs == 1 && o4.taken == 5 && o3.outputs == 0,
           "output is offered to the new owner at the end of the turn");
        s3 = st_new_virtual_cached(&vc, base, &ops, &o3);
        st_virtual_detach(s3); /* a detached stream is kept too */
        st_free_cached(&vc, s3);
        st_free_cached(&vc, s2);
        ok(vc.n == 1 && vc.list == s3, "past the cap: freed");
        st_free_cached(&vc, NULL);
        st_vcache_clear(&vc);
        ok(vc.n == 0 && vc.list == NULL && vc.cap == 1, "cleared (ASan: nothing leaks)");
    }
    event_base_free(base);
    return tap_done();
}
