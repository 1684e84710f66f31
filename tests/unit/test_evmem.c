/*
 * test_evmem — libevent's allocator (src/evmem.c) under libevent's own
 * use: buffers of every chain size filled, grown, pulled up, moved and
 * freed, bytes checked; blocks freed by another thread than the one that
 * made them; the per-thread cap.  In sanitizer builds the allocator is
 * not installed (libevent's own malloc is checked instead): the test
 * asserts that, and its free-list checks do not apply.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "evmem.h"
#include "tap.h"

/* Byte i of a test pattern with seed s. */
static unsigned char pat(size_t i, unsigned s)
{
    return (unsigned char)((i * 131u + s * 7u) >> 3);
}

/* Appends n pattern bytes (seed s) to b in pieces of at most piece. */
static int fill(struct evbuffer *b, size_t n, unsigned s, size_t piece)
{
    unsigned char tmp[4096];
    size_t off = 0;

    while (off < n) {
        size_t k = n - off < piece ? n - off : piece;
        if (k > sizeof tmp) k = sizeof tmp;
        for (size_t i = 0; i < k; i++) tmp[i] = pat(off + i, s);
        if (evbuffer_add(b, tmp, k) < 0) return -1;
        off += k;
    }
    return 0;
}

/* 1 when b holds exactly n pattern bytes of seed s. */
static int check(struct evbuffer *b, size_t n, unsigned s)
{
    unsigned char *p;

    if (evbuffer_get_length(b) != n) return 0;
    if (n == 0) return 1;
    p = evbuffer_pullup(b, -1); /* one contiguous block: a big allocation */
    if (!p) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(i, s)) return 0;
    return 1;
}

/* Sizes around every class edge (1, 2, 4, 8, 16, 32 KiB) and beyond. */
static const size_t sizes[] = {1, 511, 512, 513, 1000, 1024, 1025, 2047, 4096, 4097,
                               8191, 16384, 16385, 32000, 32768, 32769, 70000, 200000};

static void test_sizes(void)
{
    int bad = 0;

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (size_t piece = 1; piece <= 4096; piece *= 8) {
            struct evbuffer *b = evbuffer_new(), *c = evbuffer_new();
            if (!b || !c || fill(b, sizes[k], (unsigned)k, piece) < 0) bad++;
            else if (evbuffer_add_buffer(c, b) < 0 || !check(c, sizes[k], (unsigned)k)) bad++;
            else if (evbuffer_get_length(b) != 0) bad++;
            evbuffer_free(b);
            evbuffer_free(c);
        }
    }
    ok(bad == 0, "buffers of %zu sizes x 5 piece sizes: bytes intact after add, move, pullup",
       sizeof sizes / sizeof sizes[0]);
}

static void test_reserve(void)
{
    struct evbuffer *b = evbuffer_new();
    struct evbuffer_iovec v[2];
    int bad = 0, round;

    for (round = 0; round < 200 && b; round++) {
        size_t want = (size_t)(round % 2 ? 32 * 1024 - 256 : 4 * 1024 - 256), got = 0;
        int nv = evbuffer_reserve_space(b, (ev_ssize_t)want, v, 2);
        if (nv <= 0) {
            bad++;
            break;
        }
        for (int i = 0; i < nv; i++) {
            size_t k = v[i].iov_len < 100 ? v[i].iov_len : 100;
            memset(v[i].iov_base, 'a' + round % 26, k);
            v[i].iov_len = k;
            got += k;
        }
        if (evbuffer_commit_space(b, v, nv) < 0) bad++;
        if (evbuffer_get_length(b) != got) bad++;
        evbuffer_drain(b, got);
    }
    ok(b && bad == 0, "200 reserve/commit/drain rounds of 4 and 32 KiB (stream.c's read pattern)");
    evbuffer_free(b);
}

static void test_cap(void)
{
    struct evbuffer *b[200];
    size_t kept = 0, kept2 = 0;
    int n = 0, i;

#if defined(__SANITIZE_ADDRESS__)
    ok(!em_active(NULL), "sanitizer build: the allocator is off (libevent's malloc, seen by ASan)");
    return;
#else
    ok(em_active(NULL), "the allocator is installed");
#endif
    for (i = 0; i < 200; i++) {
        b[i] = evbuffer_new();
        if (b[i] && fill(b[i], 30000, (unsigned)i, 30000) == 0) n++;
    }
    for (i = 0; i < 200; i++) evbuffer_free(b[i]);
    em_active(&kept);
    ok(n == 200 && kept > 0 && kept <= 2048u * 1024u,
       "200 buffers of 30 KB freed: this thread keeps some, at most 2 MiB (%zu)", kept);
    for (i = 0; i < 20; i++) {
        b[i] = evbuffer_new();
        if (b[i]) fill(b[i], 30000, (unsigned)i, 30000);
    }
    em_active(&kept2);
    ok(kept2 < kept, "new buffers take kept blocks first (%zu -> %zu)", kept, kept2);
    for (i = 0; i < 20; i++) evbuffer_free(b[i]);
}

/* A thread that frees buffers another made. */
static void *freer(void *arg)
{
    struct evbuffer **b = arg;
    size_t kept = 0;

    for (int i = 0; i < 50; i++) {
        if (!check(b[i], 5000 + (size_t)i * 100, (unsigned)i)) return (void *)1;
        evbuffer_free(b[i]);
    }
    em_active(&kept);
    return em_active(NULL) && kept == 0 ? (void *)2 : NULL;
}

static void test_threads(void)
{
    struct evbuffer *b[50];
    pthread_t t;
    void *res = (void *)3;
    int made = 0;

    for (int i = 0; i < 50; i++) {
        b[i] = evbuffer_new();
        if (b[i] && fill(b[i], 5000 + (size_t)i * 100, (unsigned)i, 700) == 0) made++;
    }
    if (made == 50 && pthread_create(&t, NULL, freer, b) == 0) pthread_join(t, &res);
    ok(res == NULL, "buffers made here, checked and freed by another thread (kept there)");
}

int main(void)
{
    em_install(); /* before any other libevent call */
    test_sizes();
    test_reserve();
    test_cap();
    test_threads();
    return tap_done();
}
