/*
 * tap — a tiny TAP producer for the unit tests (automake's tap-driver.sh
 * reads it).  Usage: ok(cond, "what"); ... return tap_done();
 */
#ifndef RELAIS_TAP_H
#define RELAIS_TAP_H

#include <stdio.h>

static int tap_n;      /* tests run */
static int tap_failed; /* tests failed */

/** Records one test; prints "ok N - msg" or "not ok N - msg". */
#define ok(cond, ...)                                                         \
    do {                                                                      \
        int tap_c_ = !!(cond);                                                \
        tap_n++;                                                              \
        if (!tap_c_) tap_failed++;                                            \
        printf("%sok %d - ", tap_c_ ? "" : "not ", tap_n);                    \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
        if (!tap_c_) printf("#   failed at %s:%d\n", __FILE__, __LINE__);     \
    } while (0)

/** Prints the plan and returns the exit status. */
static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* RELAIS_TAP_H */
