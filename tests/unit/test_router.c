/*
 * Unit tests of the routing table (src/router.c): index lookups, priority
 * order across the exact, wildcard and host-less lists, 10,000 routers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "rule.h"
#include "tap.h"

/* Fills a rule_req for host/path from 127.0.0.1. */
static void req_init(struct rule_req *rq, struct sockaddr_in *sa, const char *host,
                     const char *path)
{
    memset(rq, 0, sizeof(*rq));
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rq->method = "GET";
    rq->method_len = 3;
    rq->host = host;
    rq->host_len = strlen(host);
    rq->path = path;
    rq->path_len = strlen(path);
    rq->client = (const struct sockaddr *)sa;
}

/* The name of the entry matching host/path, or "-". */
static const char *match(const struct rt_table *t, const char *host, const char *path)
{
    struct rule_req rq;
    struct sockaddr_in sa;
    const char *d;

    req_init(&rq, &sa, host, path);
    d = rt_match(t, &rq);
    return d ? d : "-";
}

int main(void)
{
    static const struct {
        const char *name;
        const char *rule;
        long prio;
    } defs[] = {
        {"exact", "Host(`a.example.com`)", 0},
        {"exact-api", "Host(`a.example.com`) && PathPrefix(`/api`)", 0},
        {"wild", "Host(`*.example.com`)", 0},
        {"any-admin", "PathPrefix(`/admin`)", 0},
        {"or", "Host(`b.test`) || Host(`c.test`)", 0},
        {"catchall", "PathPrefix(`/`)", 1},
        {"boosted", "Host(`boost.test`) || PathPrefix(`/boost`)", 1000},
    };
    struct rt_entry ents[16];
    rule_t *rules[16];
    struct rule_error err;
    struct rt_table *t;
    size_t n = sizeof(defs) / sizeof(defs[0]), i;

    for (i = 0; i < n; i++) {
        rules[i] = rule_parse(defs[i].rule, &err);
        ok(rules[i] != NULL, "rule %s parses", defs[i].name);
        ents[i].rule = rules[i];
        ents[i].priority = defs[i].prio ? defs[i].prio : (long)strlen(defs[i].rule);
        ents[i].name = defs[i].name;
        ents[i].data = (void *)defs[i].name;
    }
    t = rt_table_new(ents, n);
    ok(t != NULL && rt_size(t) == n, "table built with %zu entries", n);
    ok(!strcmp(match(t, "a.example.com", "/api/x"), "exact-api"), "longer rule wins on its host");
    ok(!strcmp(match(t, "A.Example.COM", "/x"), "exact"), "host lookup is case-insensitive");
    ok(!strcmp(match(t, "z.example.com", "/x"), "wild"), "wildcard host by suffix");
    ok(!strcmp(match(t, "y.z.example.com", "/x"), "wild"), "wildcard over two labels");
    ok(!strcmp(match(t, "example.com", "/x"), "catchall"), "wildcard needs a label");
    ok(!strcmp(match(t, "a.example.com", "/admin"), "exact"),
       "host rule with higher priority beats host-less rule");
    ok(!strcmp(match(t, "other.test", "/admin"), "any-admin"), "host-less rule");
    ok(!strcmp(match(t, "c.test", "/"), "or"), "either host of an || rule");
    ok(!strcmp(match(t, "nowhere", "/"), "catchall"), "lowest priority last");
    ok(!strcmp(match(t, "a.example.com", "/boost"), "boosted"),
       "explicit priority beats longer rules");
    rt_table_free(t);

    /* an empty table matches nothing */
    t = rt_table_new(NULL, 0);
    ok(t != NULL && !strcmp(match(t, "a", "/"), "-"), "empty table");
    rt_table_free(t);
    for (i = 0; i < n; i++) rule_free(rules[i]);

    /* 10,000 Host routers: each host finds its own router */
    {
        enum { N = 10000 };
        struct rt_entry *big = calloc(N, sizeof(*big));
        rule_t **br = calloc(N, sizeof(*br));
        char (*names)[32] = calloc(N, 32);
        char text[96], host[64];
        int wrong = 0;

        for (i = 0; i < N; i++) {
            snprintf(text, sizeof(text), "Host(`h%zu.example.com`)", i);
            snprintf(names[i], 32, "r%zu", i);
            br[i] = rule_parse(text, &err);
            big[i].rule = br[i];
            big[i].priority = (long)strlen(text);
            big[i].name = names[i];
            big[i].data = names[i];
        }
        t = rt_table_new(big, N);
        ok(t != NULL, "10,000-router table built");
        for (i = 0; i < N; i++) {
            snprintf(host, sizeof(host), "h%zu.example.com", i);
            if (strcmp(match(t, host, "/"), names[i])) wrong++;
        }
        ok(wrong == 0, "every one of 10,000 hosts routes to its router (%d wrong)", wrong);
        ok(!strcmp(match(t, "h10000.example.com", "/"), "-"), "unknown host: no router");
        rt_table_free(t);
        for (i = 0; i < N; i++) rule_free(br[i]);
        free(big);
        free(br);
        free(names);
    }
    return tap_done();
}
