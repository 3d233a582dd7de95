/* The webhook address guard: see netguard.h.
 *
 * The classes follow the IANA special-purpose address registries (RFC 6890
 * and its updates). Everything that is not ordinary public unicast is
 * refused by default; the reason a person reads names the most specific
 * class (metadata before link-local). */
#include "common/netguard.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- classification ------------------------------------------------------- */

static bool in4(uint32_t a, uint32_t net, int bits) {
    uint32_t mask = bits ? ~0u << (32 - bits) : 0;
    return (a & mask) == (net & mask);
}

#define V4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static cz_addr_class classify4(uint32_t a) {
    static const struct {
        uint32_t net;
        int bits;
        cz_addr_class c;
    } table[] = {
        /* Cloud metadata first: they sit inside link-local and shared space. */
        {V4(169, 254, 169, 254), 32, CZ_ADDR_METADATA}, /* AWS, GCP, Azure, OpenStack */
        {V4(169, 254, 170, 2), 32, CZ_ADDR_METADATA},   /* AWS ECS task metadata */
        {V4(100, 100, 100, 200), 32, CZ_ADDR_METADATA}, /* Alibaba Cloud */
        {V4(0, 0, 0, 0), 8, CZ_ADDR_UNSPECIFIED},
        {V4(10, 0, 0, 0), 8, CZ_ADDR_PRIVATE},
        {V4(100, 64, 0, 0), 10, CZ_ADDR_PRIVATE}, /* shared address space (CGNAT) */
        {V4(127, 0, 0, 0), 8, CZ_ADDR_LOOPBACK},
        {V4(169, 254, 0, 0), 16, CZ_ADDR_LINK_LOCAL},
        {V4(172, 16, 0, 0), 12, CZ_ADDR_PRIVATE},
        {V4(192, 0, 0, 0), 24, CZ_ADDR_RESERVED}, /* IETF protocol assignments */
        {V4(192, 0, 2, 0), 24, CZ_ADDR_RESERVED}, /* documentation */
        {V4(192, 88, 99, 0), 24, CZ_ADDR_RESERVED},
        {V4(192, 168, 0, 0), 16, CZ_ADDR_PRIVATE},
        {V4(198, 18, 0, 0), 15, CZ_ADDR_RESERVED}, /* benchmarking */
        {V4(198, 51, 100, 0), 24, CZ_ADDR_RESERVED},
        {V4(203, 0, 113, 0), 24, CZ_ADDR_RESERVED},
        {V4(224, 0, 0, 0), 4, CZ_ADDR_MULTICAST},
        {V4(240, 0, 0, 0), 4, CZ_ADDR_RESERVED}, /* future use and 255.255.255.255 */
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (in4(a, table[i].net, table[i].bits))
            return table[i].c;
    return CZ_ADDR_PUBLIC;
}

static uint32_t load4(const unsigned char *p) {
    return V4(p[0], p[1], p[2], p[3]);
}

static bool prefix6(const unsigned char *a, const unsigned char *net, int bits) {
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)bytes))
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (net[bytes] & mask);
}

/* The IPv4 address an IPv6 address carries, if it is one of the forms that
 * reach an IPv4 host. @returns true with @p v4 set. */
static bool embedded4(const unsigned char *a, uint32_t *v4) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zero[12] = {0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) {
        *v4 = load4(a + 12);
        return true;
    }
    /* IPv4-compatible ::a.b.c.d (deprecated), but not :: and ::1 themselves. */
    if (!memcmp(a, zero, 12) && load4(a + 12) > 1) {
        *v4 = load4(a + 12);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        *v4 = load4(a + 2);
        return true;
    }
    return false;
}

static cz_addr_class classify6(const unsigned char *a) {
    static const unsigned char zero[16] = {0};
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54};
    static const unsigned char nat64_local[16] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const unsigned char discard[16] = {0x01, 0x00};
    static const unsigned char doc[16] = {0x20, 0x01, 0x0d, 0xb8};
    uint32_t v4;
    if (!memcmp(a, zero, 16))
        return CZ_ADDR_UNSPECIFIED;
    if (!memcmp(a, one, 16))
        return CZ_ADDR_LOOPBACK;
    if (!memcmp(a, ec2, 16))
        return CZ_ADDR_METADATA; /* AWS's IPv6 instance metadata, fd00:ec2::254 */
    if (embedded4(a, &v4))
        return classify4(v4);
    if (prefix6(a, nat64_local, 48))
        return CZ_ADDR_PRIVATE;
    if (prefix6(a, discard, 64) || prefix6(a, doc, 32))
        return CZ_ADDR_RESERVED;
    if ((a[0] & 0xfe) == 0xfc) /* fc00::/7 unique local, fd00::/8 in practice */
        return CZ_ADDR_PRIVATE;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10 */
        return CZ_ADDR_LINK_LOCAL;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) /* fec0::/10, old site-local */
        return CZ_ADDR_PRIVATE;
    if (a[0] == 0xff)
        return CZ_ADDR_MULTICAST;
    return CZ_ADDR_PUBLIC;
}

cz_addr_class cz_netguard_classify(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return classify4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return classify6(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return CZ_ADDR_RESERVED; /* unix sockets and the like: never */
}

const char *cz_addr_class_name(cz_addr_class c) {
    static const char *const names[] = {
        "public",         "loopback",    "private",   "link-local",
        "cloud metadata", "unspecified", "multicast", "reserved",
    };
    return (unsigned)c < sizeof names / sizeof *names ? names[c] : "unknown";
}

/* ---- the allow-list --------------------------------------------------------- */

static int parse_cidr(const char *text, cz_cidr *c) {
    char buf[80];
    if (strlen(text) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(c, 0, sizeof *c);
    int max;
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET, max = 32;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6, max = 128;
    else
        return -1;
    c->bits = max;
    if (slash) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0 || bits > max)
            return -1;
        c->bits = (int)bits;
    }
    return 0;
}

int cz_netguard_parse(const char *list, cz_netguard *g, cz_err *err) {
    g->n = 0;
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        if (!len)
            break;
        char item[80];
        if (len >= sizeof item || g->n == CZ_NETGUARD_MAX)
            return cz_err_set(err,
                              "CADENZA_WEBHOOK_ALLOW: at most %d blocks of at most %zu "
                              "characters each",
                              CZ_NETGUARD_MAX, sizeof item - 1);
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_cidr(item, &g->allow[g->n]))
            return cz_err_set(err,
                              "CADENZA_WEBHOOK_ALLOW: \"%s\" is not an address or a CIDR "
                              "block such as 127.0.0.0/8 or ::1/128",
                              item);
        g->n++;
        p += len;
    }
    return 0;
}

static bool listed(const cz_netguard *g, int family, const unsigned char *a) {
    for (int i = 0; i < g->n; i++) {
        const cz_cidr *c = &g->allow[i];
        if (c->family != family)
            continue;
        if (family == AF_INET ? in4(load4(a), load4(c->addr), c->bits)
                              : prefix6(a, c->addr, c->bits))
            return true;
    }
    return false;
}

/* @returns true when @p sa may be reached; otherwise false with its class in
 * @p cls and its text in @p text. */
static bool allowed(const cz_netguard *g, const struct sockaddr *sa, cz_addr_class *cls,
                    char text[INET6_ADDRSTRLEN]) {
    cz_addr_class c = cz_netguard_classify(sa);
    *cls = c;
    snprintf(text, INET6_ADDRSTRLEN, "?");
    if (c == CZ_ADDR_PUBLIC)
        return true;
    if (sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
        inet_ntop(AF_INET, a, text, INET6_ADDRSTRLEN);
        return listed(g, AF_INET, (const unsigned char *)&a->s_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, a, text, INET6_ADDRSTRLEN);
        if (listed(g, AF_INET6, a))
            return true;
        /* ::ffff:127.0.0.1 is as allowed as 127.0.0.1 is. */
        uint32_t v4;
        if (embedded4(a, &v4)) {
            unsigned char b[4] = {(unsigned char)(v4 >> 24), (unsigned char)(v4 >> 16),
                                  (unsigned char)(v4 >> 8), (unsigned char)v4};
            return listed(g, AF_INET, b);
        }
    }
    return false;
}

static const char *article(cz_addr_class c) {
    return c == CZ_ADDR_UNSPECIFIED ? "an" : "a";
}

bool cz_netguard_allows(const cz_netguard *g, const struct sockaddr *sa, char *why, size_t n) {
    cz_addr_class c;
    char text[INET6_ADDRSTRLEN];
    if (allowed(g, sa, &c, text))
        return true;
    snprintf(why, n, "%s is %s %s address", text, article(c), cz_addr_class_name(c));
    return false;
}

/* ---- URLs ------------------------------------------------------------------- */

int cz_netguard_check_url(const cz_netguard *g, const char *url, char *why, size_t n) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *port = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        snprintf(why, n, "is not a valid URL with a host");
        goto done;
    }
    if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
        snprintf(why, n, "must be an http or https URL");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
        snprintf(why, n, "must not carry a user name or password");
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);

    /* An IPv6 literal comes back in brackets, maybe with a zone. */
    char name[256];
    size_t len = strlen(host);
    if (host[0] == '[' && len > 2)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(host + 1, "]%"), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(name, port, &hints, &res);
    if (gai) {
        snprintf(why, n, "names host %.160s, which does not resolve (%s)", name, gai_strerror(gai));
        goto done;
    }
    rc = 0;
    for (struct addrinfo *ai = res; ai && !rc; ai = ai->ai_next) {
        cz_addr_class c;
        char text[INET6_ADDRSTRLEN];
        if (allowed(g, ai->ai_addr, &c, text))
            continue;
        rc = -1;
        if (!strcmp(text, name))
            snprintf(why, n, "names %s %s address (%s), which webhooks may not reach", article(c),
                     cz_addr_class_name(c), text);
        else
            snprintf(why, n,
                     "names host %.80s, which resolves to %s, %s %s address that webhooks may "
                     "not reach",
                     name, text, article(c), cz_addr_class_name(c));
    }
    freeaddrinfo(res);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}
