/* The webhook address guard (common/netguard.c): which addresses are
 * private, loopback, link-local, metadata..., the allow-list, and URLs. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/netguard.h"

/* A sockaddr for a literal address, IPv4 or IPv6. */
static const struct sockaddr *addr(const char *text) {
    static struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", text);
    return (const struct sockaddr *)&ss;
}

static cz_addr_class cls(const char *text) {
    return cz_netguard_classify(addr(text));
}

static void test_ipv4_classes(void **state) {
    (void)state;
    assert_int_equal(cls("8.8.8.8"), CZ_ADDR_PUBLIC);
    assert_int_equal(cls("1.1.1.1"), CZ_ADDR_PUBLIC);
    assert_int_equal(cls("172.32.0.1"), CZ_ADDR_PUBLIC); /* just past 172.16/12 */
    assert_int_equal(cls("127.0.0.1"), CZ_ADDR_LOOPBACK);
    assert_int_equal(cls("127.255.255.254"), CZ_ADDR_LOOPBACK);
    assert_int_equal(cls("10.1.2.3"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("172.16.0.1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("172.31.255.255"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("192.168.1.1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("100.64.0.1"), CZ_ADDR_PRIVATE); /* shared address space */
    assert_int_equal(cls("169.254.169.254"), CZ_ADDR_METADATA);
    assert_int_equal(cls("169.254.170.2"), CZ_ADDR_METADATA);
    assert_int_equal(cls("100.100.100.200"), CZ_ADDR_METADATA);
    assert_int_equal(cls("169.254.1.1"), CZ_ADDR_LINK_LOCAL);
    assert_int_equal(cls("0.0.0.0"), CZ_ADDR_UNSPECIFIED);
    assert_int_equal(cls("0.1.2.3"), CZ_ADDR_UNSPECIFIED);
    assert_int_equal(cls("224.0.0.1"), CZ_ADDR_MULTICAST);
    assert_int_equal(cls("255.255.255.255"), CZ_ADDR_RESERVED);
    assert_int_equal(cls("240.0.0.1"), CZ_ADDR_RESERVED);
    assert_int_equal(cls("192.0.2.10"), CZ_ADDR_RESERVED);
    assert_int_equal(cls("198.18.0.1"), CZ_ADDR_RESERVED);
}

static void test_ipv6_classes(void **state) {
    (void)state;
    assert_int_equal(cls("2606:4700:4700::1111"), CZ_ADDR_PUBLIC);
    assert_int_equal(cls("::1"), CZ_ADDR_LOOPBACK);
    assert_int_equal(cls("::"), CZ_ADDR_UNSPECIFIED);
    /* IPv4 inside IPv6 is judged by the IPv4 address. */
    assert_int_equal(cls("::ffff:127.0.0.1"), CZ_ADDR_LOOPBACK);
    assert_int_equal(cls("::ffff:169.254.169.254"), CZ_ADDR_METADATA);
    assert_int_equal(cls("::ffff:10.0.0.1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("::ffff:0.0.0.0"), CZ_ADDR_UNSPECIFIED);
    assert_int_equal(cls("::ffff:8.8.8.8"), CZ_ADDR_PUBLIC);
    assert_int_equal(cls("::127.0.0.1"), CZ_ADDR_LOOPBACK);       /* IPv4-compatible */
    assert_int_equal(cls("64:ff9b::a00:1"), CZ_ADDR_PRIVATE);     /* NAT64 of 10.0.0.1 */
    assert_int_equal(cls("64:ff9b::808:808"), CZ_ADDR_PUBLIC);    /* NAT64 of 8.8.8.8 */
    assert_int_equal(cls("2002:7f00:1::1"), CZ_ADDR_LOOPBACK);    /* 6to4 of 127.0.0.1 */
    assert_int_equal(cls("2002:a9fe:a9fe::1"), CZ_ADDR_METADATA); /* 6to4 of 169.254.169.254 */
    assert_int_equal(cls("fd00::1"), CZ_ADDR_PRIVATE);            /* fd00::/8 */
    assert_int_equal(cls("fdff:ffff::1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("fc00::1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("fd00:ec2::254"), CZ_ADDR_METADATA);
    assert_int_equal(cls("fe80::1"), CZ_ADDR_LINK_LOCAL);
    assert_int_equal(cls("febf::1"), CZ_ADDR_LINK_LOCAL);
    assert_int_equal(cls("fec0::1"), CZ_ADDR_PRIVATE);
    assert_int_equal(cls("ff02::1"), CZ_ADDR_MULTICAST);
    assert_int_equal(cls("2001:db8::1"), CZ_ADDR_RESERVED);
    assert_int_equal(cls("100::1"), CZ_ADDR_RESERVED);
}

static void test_allow_list(void **state) {
    (void)state;
    cz_netguard g;
    cz_err err;
    char why[CZ_NETGUARD_WHY];
    /* Production: nothing but public addresses. */
    assert_int_equal(cz_netguard_parse("", &g, &err), 0);
    assert_int_equal(g.n, 0);
    assert_true(cz_netguard_allows(&g, addr("8.8.8.8"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("127.0.0.1"), why, sizeof why));
    assert_string_equal(why, "127.0.0.1 is a loopback address");
    assert_false(cz_netguard_allows(&g, addr("10.0.0.5"), why, sizeof why));
    assert_string_equal(why, "10.0.0.5 is a private address");
    assert_false(cz_netguard_allows(&g, addr("0.0.0.0"), why, sizeof why));
    assert_string_equal(why, "0.0.0.0 is an unspecified address");
    assert_false(cz_netguard_allows(&g, addr("169.254.169.254"), why, sizeof why));
    assert_string_equal(why, "169.254.169.254 is a cloud metadata address");

    /* The local stack: loopback, in both families and in mapped form. */
    assert_int_equal(cz_netguard_parse("127.0.0.0/8, ::1/128", &g, &err), 0);
    assert_int_equal(g.n, 2);
    assert_true(cz_netguard_allows(&g, addr("127.0.0.1"), why, sizeof why));
    assert_true(cz_netguard_allows(&g, addr("127.1.2.3"), why, sizeof why));
    assert_true(cz_netguard_allows(&g, addr("::1"), why, sizeof why));
    assert_true(cz_netguard_allows(&g, addr("::ffff:127.0.0.1"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("0.0.0.0"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("10.0.0.1"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("169.254.169.254"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("fd00::1"), why, sizeof why));

    /* A single address, and an internal block. */
    assert_int_equal(cz_netguard_parse("10.20.0.0/16,fd12::7", &g, &err), 0);
    assert_true(cz_netguard_allows(&g, addr("10.20.3.4"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("10.21.0.1"), why, sizeof why));
    assert_true(cz_netguard_allows(&g, addr("fd12::7"), why, sizeof why));
    assert_false(cz_netguard_allows(&g, addr("fd12::8"), why, sizeof why));

    assert_int_equal(cz_netguard_parse("10.0.0.0/33", &g, &err), -1);
    assert_int_equal(cz_netguard_parse("::1/129", &g, &err), -1);
    assert_int_equal(cz_netguard_parse("intranet", &g, &err), -1);
    assert_non_null(strstr(err.msg, "intranet"));
    assert_int_equal(cz_netguard_parse("10.0.0.0/", &g, &err), -1);
}

static void test_urls(void **state) {
    (void)state;
    cz_netguard none, loop;
    cz_err err;
    char why[CZ_NETGUARD_WHY];
    assert_int_equal(cz_netguard_parse("", &none, &err), 0);
    assert_int_equal(cz_netguard_parse("127.0.0.0/8,::1/128", &loop, &err), 0);

    assert_int_equal(cz_netguard_check_url(&loop, "http://127.0.0.1:8080/hook", why, 256), 0);
    assert_int_equal(cz_netguard_check_url(&loop, "https://[::1]/hook", why, 256), 0);
    assert_int_equal(cz_netguard_check_url(&loop, "http://localhost:9/x", why, 256), 0);
    assert_int_equal(cz_netguard_check_url(&none, "http://127.0.0.1:8080/hook", why, 256), -1);
    assert_string_equal(why, "names a loopback address (127.0.0.1), which webhooks may not reach");
    assert_int_equal(cz_netguard_check_url(&none, "http://localhost/", why, 256), -1);
    assert_non_null(strstr(why, "resolves to"));
    /* Not allowed even with loopback allowed: */
    assert_int_equal(cz_netguard_check_url(&loop, "http://10.0.0.1/", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://169.254.169.254/latest/", why, 256), -1);
    assert_non_null(strstr(why, "metadata"));
    assert_int_equal(cz_netguard_check_url(&loop, "http://[::ffff:169.254.169.254]/", why, 256),
                     -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://[fd00::1]/", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://0.0.0.0:8080/", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://0/", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&none, "http://0x7f000001/", why, 256), -1);
    /* Shapes the API never takes. */
    assert_int_equal(cz_netguard_check_url(&loop, "ftp://127.0.0.1/x", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://user:pw@127.0.0.1/", why, 256), -1);
    assert_non_null(strstr(why, "user name"));
    assert_int_equal(cz_netguard_check_url(&loop, "http:///nohost", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "not a url", why, 256), -1);
    assert_int_equal(cz_netguard_check_url(&loop, "http://no-such-host.invalid/", why, 256), -1);
    assert_non_null(strstr(why, "does not resolve"));
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_classes),
        cmocka_unit_test(test_ipv6_classes),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_urls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
