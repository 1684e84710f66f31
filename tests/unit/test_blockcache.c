/*
 * test_blockcache — the size-class block cache (src/blockcache.c): class
 * edges, reuse of kept blocks (LIFO), the byte cap, uncached sizes,
 * realloc in place and by copy, clear.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blockcache.h"
#include "tap.h"

/* 64 .. 512 bytes kept, 100 bytes and less not, 1 KiB kept at most */
static const struct bc_shape shape = {64, 4, 100, 1024};

static void test_classes(void)
{
    struct bc_cache c = {{0}, 0};
    void *a = bc_alloc(&c, &shape, 101), *b;

    ok(a != NULL, "a 101-byte block");
    bc_free(&c, &shape, a);
    ok(c.kept == 128, "freed 101 bytes: a 128-byte block kept (%zu)", c.kept);
    b = bc_alloc(&c, &shape, 128);
    ok(b == a && c.kept == 0, "a 128-byte request takes it back");
    bc_free(&c, &shape, b);
    b = bc_alloc(&c, &shape, 129);
    ok(b != a && c.kept == 128, "a 129-byte request is the next class: the kept one stays");
    bc_free(&c, &shape, b);
    ok(c.kept == 128 + 256, "both kept (%zu)", c.kept);
    a = bc_alloc(&c, &shape, 100);
    bc_free(&c, &shape, a);
    ok(c.kept == 384, "100 bytes (the floor): not kept");
    a = bc_alloc(&c, &shape, 513);
    bc_free(&c, &shape, a);
    ok(c.kept == 384, "513 bytes (above 512): not kept");
    bc_clear(&c);
    ok(c.kept == 0 && !c.free[0] && !c.free[1], "clear gives everything back");
}

static void test_cap(void)
{
    struct bc_cache c = {{0}, 0};
    void *p[5];
    int i;

    for (i = 0; i < 5; i++) p[i] = bc_alloc(&c, &shape, 300);
    for (i = 0; i < 5; i++) bc_free(&c, &shape, p[i]);
    ok(c.kept == 1024, "five 512-byte blocks freed with a 1 KiB cap: two kept (%zu)", c.kept);
    p[0] = bc_alloc(&c, &shape, 300);
    ok(p[0] == p[1], "last kept, first taken (%p)", p[0]);
    bc_free(&c, &shape, p[0]);
    bc_clear(&c);
}

static void test_realloc(void)
{
    struct bc_cache c = {{0}, 0};
    unsigned char *p = bc_alloc(&c, &shape, 150), *q;
    int bad = 0;

    for (int i = 0; i < 150; i++) p[i] = (unsigned char)i;
    q = bc_realloc(&c, &shape, p, 256);
    ok(q == p, "grow within the block's class (256): in place");
    q = bc_realloc(&c, &shape, p, 400);
    for (int i = 0; i < 150; i++) bad += q[i] != (unsigned char)i;
    ok(q != p && bad == 0 && c.kept == 256, "grow past it: moved, bytes kept, old block kept");
    p = bc_realloc(&c, &shape, q, 2000);
    bad = 0;
    for (int i = 0; i < 150; i++) bad += p[i] != (unsigned char)i;
    ok(p && bad == 0, "grow to an uncached size: bytes kept");
    q = bc_realloc(&c, &shape, p, 1500);
    ok(q != p, "an uncached block shrinks by moving (memory given back)");
    ok(bc_realloc(&c, &shape, q, 0) == NULL, "size 0 frees");
    p = bc_realloc(&c, &shape, NULL, 70);
    ok(p != NULL, "NULL: a new block");
    bc_free(&c, &shape, p);
    bc_free(&c, &shape, NULL);
    ok(1, "free(NULL) is a no-op");
    bc_clear(&c);
}

int main(void)
{
    test_classes();
    test_cap();
    test_realloc();
    return tap_done();
}
