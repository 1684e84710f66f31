/*
 * target — address and port of a container from its inspect document
 * (see target.h for the rules).  Module prefix: dkt_.
 */
#define _GNU_SOURCE
#include "target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DKT_MAX_HOPS 4    /* container:<id> chains followed */
#define DKT_MAX_PORTS 64  /* distinct exposed ports examined */

/* String member key of object o, or NULL. */
static const char *dkt_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int dkt_is(const json_t *insp, const char *ref)
{
    const char *id = dkt_str(insp, "Id"), *name = dkt_str(insp, "Name");
    size_t rl = strlen(ref);

    if (!rl) return 0;
    if (id && (!strcmp(id, ref) || (rl >= 4 && !strncmp(id, ref, rl)))) return 1;
    if (name && (!strcmp(name, ref) || (name[0] == '/' && !strcmp(name + 1, ref)))) return 1;
    return 0;
}

const char *dkt_label(const json_t *insp, const char *prefix, const char *suffix)
{
    const json_t *labels = json_object_get(json_object_get(insp, "Config"), "Labels");
    char key[256];
    const char *v;

    if (!json_is_object(labels)) return NULL;
    if (snprintf(key, sizeof(key), "%s.%s", prefix, suffix) >= (int)sizeof(key)) return NULL;
    v = dkt_str(labels, key);
    if (!v && !strcmp(prefix, "relais")) {
        snprintf(key, sizeof(key), "traefik.%s", suffix);
        v = dkt_str(labels, key);
    }
    return v;
}

/* Writes the address of network entry net (IPv4, else global IPv6 in
 * brackets) into out.  1 when it has one, else 0. */
static int dkt_net_addr(const json_t *net, char *out, size_t len)
{
    const char *ip = dkt_str(net, "IPAddress");

    if (ip && *ip) {
        snprintf(out, len, "%s", ip);
        return 1;
    }
    ip = dkt_str(net, "GlobalIPv6Address");
    if (ip && *ip) {
        snprintf(out, len, "[%s]", ip);
        return 1;
    }
    return 0;
}

/* dkt_address with the network already resolved (name, may be NULL) and
 * a hop count for container:<ref> chains. */
static int dkt_addr(const json_t *insp, const char *name, const struct dkt_opts *o,
                    dkt_find_fn find, void *arg, int hops, char *out, size_t len, char *note,
                    size_t notelen)
{
    const json_t *nets = json_object_get(json_object_get(insp, "NetworkSettings"), "Networks");
    const char *mode = dkt_str(json_object_get(insp, "HostConfig"), "NetworkMode");
    const char *key;
    json_t *net;
    int not_found = 0;

    if (name && *name) {
        net = json_object_get(nets, name);
        if (net && dkt_net_addr(net, out, len)) return 0;
        if (!net) not_found = 1;
    }
    if (mode && !strcmp(mode, "host")) {
        snprintf(out, len, "127.0.0.1");
        return 0;
    }
    if (mode && !strncmp(mode, "container:", 10)) {
        const json_t *other = find ? find(arg, mode + 10) : NULL;
        const char *oname;
        if (!other) {
            snprintf(out, len, "network mode %.80s: no such running container", mode);
            return -1;
        }
        if (hops >= DKT_MAX_HOPS) {
            snprintf(out, len, "network mode %.80s: too many container: hops", mode);
            return -1;
        }
        oname = dkt_label(other, o->prefix, "docker.network");
        return dkt_addr(other, oname && *oname ? oname : name, o, find, arg, hops + 1, out, len,
                        note, notelen);
    }
    if (json_is_object(nets)) {
        json_object_foreach((json_t *)nets, key, net) {
            if (!dkt_net_addr(net, out, len)) continue;
            if (not_found && note)
                snprintf(note, notelen, "network \"%.80s\" not found, using network \"%.80s\"",
                         name, key);
            return 0;
        }
    }
    if (not_found)
        snprintf(out, len, "network \"%.80s\" not found and no other network has an address",
                 name);
    else
        snprintf(out, len, "no IP address on any network");
    return -1;
}

int dkt_address(const json_t *insp, const struct dkt_opts *o, dkt_find_fn find, void *arg,
                char *out, size_t len, char *note, size_t notelen)
{
    const char *name = dkt_label(insp, o->prefix, "docker.network");

    if (note && notelen) note[0] = 0;
    if (!name || !*name) name = o->network;
    return dkt_addr(insp, name, o, find, arg, 0, out, len, note, notelen);
}

/* Parses a port number "1".."65535" (all digits); 0 when it is not one. */
static int dkt_portnum(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : 0;
}

/* Adds the TCP ports named by the keys of object o ("80/tcp") to ports
 * (n of them, capped, deduplicated). */
static void dkt_collect(const json_t *o, int *ports, size_t *n)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o)) return;
    json_object_foreach((json_t *)o, key, v) {
        const char *slash = strchr(key, '/');
        size_t plen = slash ? (size_t)(slash - key) : strlen(key);
        int p;
        size_t i;
        (void)v;
        if (slash && strcasecmp(slash + 1, "tcp")) continue;
        if (!(p = dkt_portnum(key, plen))) continue;
        for (i = 0; i < *n && ports[i] != p; i++) {}
        if (i == *n && *n < DKT_MAX_PORTS) ports[(*n)++] = p;
    }
}

/* qsort comparator of ints. */
static int dkt_intcmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int dkt_port(const json_t *insp, int *port, char *why, size_t whylen)
{
    int ports[DKT_MAX_PORTS];
    size_t n = 0, o = 0;

    dkt_collect(json_object_get(json_object_get(insp, "Config"), "ExposedPorts"), ports, &n);
    dkt_collect(json_object_get(json_object_get(insp, "NetworkSettings"), "Ports"), ports, &n);
    if (n == 1) {
        *port = ports[0];
        return 0;
    }
    if (n == 0) {
        snprintf(why, whylen, "no exposed TCP port");
        return -1;
    }
    qsort(ports, n, sizeof(ports[0]), dkt_intcmp);
    o = (size_t)snprintf(why, whylen, "several exposed TCP ports (");
    for (size_t i = 0; i < n && o < whylen; i++)
        o += (size_t)snprintf(why + o, whylen - o, "%s%d", i ? ", " : "", ports[i]);
    if (o < whylen) snprintf(why + o, whylen - o, ")");
    return -1;
}

/* The first binding of port (a number) in NetworkSettings.Ports under
 * PORT/tcp or PORT/udp (any case), or NULL. */
static const json_t *dkt_binding(const json_t *insp, int port)
{
    const json_t *ports = json_object_get(json_object_get(insp, "NetworkSettings"), "Ports");
    char tcp[16], udp[16];
    const char *key;
    json_t *v;

    if (!json_is_object(ports)) return NULL;
    snprintf(tcp, sizeof(tcp), "%d/tcp", port);
    snprintf(udp, sizeof(udp), "%d/udp", port);
    json_object_foreach((json_t *)ports, key, v) {
        if (strcasecmp(key, tcp) && strcasecmp(key, udp)) continue;
        if (json_is_array(v) && json_array_size(v) > 0) return json_array_get(v, 0);
    }
    return NULL;
}

int dkt_server(const json_t *insp, const char *port_label, const struct dkt_opts *o,
               dkt_find_fn find, void *arg, char *out, size_t len, char *note, size_t notelen)
{
    char host[DKT_MSG_LEN], why[DKT_MSG_LEN];
    int port;

    if (note && notelen) note[0] = 0;
    if (port_label) {
        if (!(port = dkt_portnum(port_label, strlen(port_label)))) {
            snprintf(out, len, "port label \"%.40s\" is not a port number", port_label);
            return -1;
        }
    } else if (dkt_port(insp, &port, why, sizeof(why)) < 0) {
        snprintf(out, len, "%s and no %s.http.services.<name>.loadbalancer.server.port label", why,
                 o->prefix);
        return -1;
    }
    if (o->use_bind_ip) {
        const json_t *b = dkt_binding(insp, port);
        const char *hip = dkt_str(b, "HostIp"), *hport = dkt_str(b, "HostPort");
        int hp = hport ? dkt_portnum(hport, strlen(hport)) : 0;
        if (b && hip && *hip && strcmp(hip, "0.0.0.0") && strcmp(hip, "::") && hp) {
            if (strchr(hip, ':')) snprintf(out, len, "[%s]:%d", hip, hp);
            else snprintf(out, len, "%s:%d", hip, hp);
            return 0;
        }
        if (note && notelen) {
            if (!b)
                snprintf(note, notelen,
                         "useBindPortIP: no binding for port %d, using the container's address",
                         port);
            else
                snprintf(note, notelen,
                         "useBindPortIP: the binding of port %d has no usable HostIp (\"%.40s\"), "
                         "using the container's address",
                         port, hip ? hip : "");
        }
    }
    /* a useBindPortIP note already written is kept */
    if (dkt_address(insp, o, find, arg, host, sizeof(host),
                    note && notelen && !note[0] ? note : NULL, notelen) < 0) {
        snprintf(out, len, "%s", host);
        return -1;
    }
    snprintf(out, len, "%s:%d", host, port);
    return 0;
}
