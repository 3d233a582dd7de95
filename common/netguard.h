/* The address guard that keeps webhooks from reaching our own network
 * (server-side request forgery).
 *
 * A webhook URL is the client's choice, and the process that fetches it
 * sits inside our network: without a guard, a URL could name a database,
 * an admin port on loopback, or the cloud metadata service that hands out
 * credentials (169.254.169.254). So every address a webhook would connect
 * to is classified, and anything but a public unicast address is refused
 * unless an operator allow-listed it (CADENZA_WEBHOOK_ALLOW, CIDR blocks;
 * empty by default).
 *
 * The check runs twice. The API resolves a URL's host when it is submitted
 * (a job's webhook.url, an endpoint) and refuses it if any address is
 * refused, so a client learns at once. The dispatcher checks again the
 * address each connection is actually opened to (curl's open-socket
 * callback), so a name that resolved to a public address at submission
 * and to a private one later (DNS rebinding) is still refused.
 *
 * IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, the old
 * compatible ::a.b.c.d, NAT64 64:ff9b::/96 and 6to4 2002::/16) are judged
 * by the IPv4 address inside, so ::ffff:127.0.0.1 is loopback. */
#ifndef CZ_NETGUARD_H
#define CZ_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"

#define CZ_NETGUARD_MAX 32
/* Room for an address, its class and the host it came from. */
#define CZ_NETGUARD_WHY 256

typedef enum cz_addr_class {
    CZ_ADDR_PUBLIC = 0,
    CZ_ADDR_LOOPBACK,
    CZ_ADDR_PRIVATE,     /* RFC 1918, shared (CGNAT), unique local IPv6 */
    CZ_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    CZ_ADDR_METADATA,    /* cloud instance metadata services */
    CZ_ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: (Linux connects these to the host itself) */
    CZ_ADDR_MULTICAST,
    CZ_ADDR_RESERVED, /* documentation, benchmarking, future use, broadcast */
} cz_addr_class;

/** A block of addresses, IPv4 or IPv6. */
typedef struct cz_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} cz_cidr;

/** The allow-list: blocks webhooks may reach although they are not public. */
typedef struct cz_netguard {
    int n;
    cz_cidr allow[CZ_NETGUARD_MAX];
} cz_netguard;

/**
 * @brief Parses a comma-separated list of CIDR blocks ("127.0.0.0/8,::1/128";
 * an address without a length is a single address) into @p g. An empty or
 * NULL list allows nothing.
 * @returns 0, or -1 with @p err filled.
 */
int cz_netguard_parse(const char *list, cz_netguard *g, cz_err *err);

/** @brief Classifies an address (struct sockaddr_in or sockaddr_in6). */
cz_addr_class cz_netguard_classify(const struct sockaddr *sa);

/** @brief "loopback", "private", ... for messages. */
const char *cz_addr_class_name(cz_addr_class c);

/**
 * @brief Whether a webhook may connect to @p sa: public, or allow-listed.
 * @returns true when allowed; otherwise false with a sentence for people in
 * @p why (such as "10.0.0.5 is a private address").
 */
bool cz_netguard_allows(const cz_netguard *g, const struct sockaddr *sa, char *why, size_t n);

/**
 * @brief Checks a webhook URL as the API accepts one: http or https, a host,
 * no user name or password, and every address the host resolves to
 * allowed. Resolves the name (blocking).
 * @returns 0 when acceptable; otherwise -1 with the end of a sentence for
 * the client in @p why, to follow the field's name ("is not a valid URL
 * with a host", "names a loopback address (127.0.0.1), which ...").
 */
int cz_netguard_check_url(const cz_netguard *g, const char *url, char *why, size_t n);

#endif
