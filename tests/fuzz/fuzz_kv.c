/*
 * fuzz_kv — libFuzzer target for the key/value decoder of the etcd and
 * Redis providers (kvc_decode, src/kvconf.c), in both its layouts.
 *
 * Input: the first byte picks the options (its low bits, so a digit reads
 * well in a seed): bit 0 clear — KV layout (separator '/', the etcd and
 * Redis providers), set — label layout (separator '.', label rules);
 * bits 1-2 the root: 0 "traefik", 1 none (NULL), 2 "TRAEFIK" plus two
 * trailing separators (stripped, compared without case), 3 "a" sep "b".
 * A newline right after the first byte is skipped.  Then one pair per
 * line, "key=value" (split at the first '='; a line without '=' is a key
 * with an empty value).
 *
 * Properties: see kvcheck.h (order independence, round trip through
 * flattened pairs, leaves come from input values, well-formed errors),
 * plus: an invalid separator is refused with a message.
 *
 * Build and run: tests/fuzz/run.sh (see tests/fuzz/README.md).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_kv: property violated: %s (%s:%d)\n",       \
                    #cond, __FILE__, __LINE__);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

#include "kvcheck.h"

#define FZ_MAX_INPUT 65536 /* longest input tried */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const roots_kv[] = {"traefik", NULL, "TRAEFIK//", "a/b"};
    static const char *const roots_lb[] = {"traefik", NULL, "TRAEFIK..", "a.b"};
    struct kvc_options opt, bad;
    struct kvc_error err;
    struct kvc_pair *pairs;
    size_t n = 0, cap = 16;
    char *buf, *p;

    if (size < 1 || size > FZ_MAX_INPUT) return 0;
    opt.labels = data[0] & 1;
    opt.sep = opt.labels ? '.' : '/';
    opt.root = (opt.labels ? roots_lb : roots_kv)[(data[0] >> 1) & 3];
    data++;
    size--;
    if (size && data[0] == '\n') {
        data++;
        size--;
    }
    buf = malloc(size + 1);
    pairs = malloc(cap * sizeof *pairs);
    if (!buf || !pairs) abort();
    memcpy(buf, data, size);
    buf[size] = 0;
    /* one pair per line; a NUL byte ends the input early (C strings) */
    for (p = buf; *p;) {
        char *nl = strchr(p, '\n'), *eq;

        if (nl) *nl = 0;
        eq = strchr(p, '=');
        if (eq) *eq = 0;
        if (n == cap) {
            struct kvc_pair *np = realloc(pairs, 2 * cap * sizeof *np);
            if (!np) abort();
            pairs = np;
            cap *= 2;
        }
        pairs[n].key = p;
        pairs[n].value = eq ? eq + 1 : "";
        n++;
        if (!nl) break;
        p = nl + 1;
    }
    fzkv_check(pairs, n, &opt);
    /* invalid options are refused, with a message */
    bad = opt;
    bad.sep = '[';
    FZ_CHECK(kvc_decode(pairs, n, &bad, &err) == NULL && err.msg[0]);
    free(pairs);
    free(buf);
    return 0;
}
