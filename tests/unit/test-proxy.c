/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "proxy.h"
#include "tests.h"

static const struct {
        const char *no_proxy, *host;
        unsigned port;
        bool bypass;
} match_table[] = {
        /* nothing listed: everything goes through the proxy */
        { NULL, "example.com", 443, false },
        { "", "example.com", 443, false },
        { " , ,", "example.com", 443, false },
        /* "*" matches all, also among other entries */
        { "*", "example.com", 443, true },
        { "foo.org, *", "127.0.0.1", 6443, true },
        /* host names: the name itself and its subdomains */
        { "example.com", "example.com", 443, true },
        { "example.com", "api.example.com", 443, true },
        { "example.com", "a.b.example.com", 443, true },
        { "example.com", "badexample.com", 443, false },
        { "example.com", "example.com.evil.org", 443, false },
        { "example.com", "example.org", 443, false },
        /* ".example.com" and "*.example.com": subdomains only, as in Go */
        { ".example.com", "api.example.com", 443, true },
        { ".example.com", "example.com", 443, false },
        { "*.example.com", "api.example.com", 443, true },
        { "*.example.com", "example.com", 443, false },
        /* case and spaces */
        { "  Example.COM  ", "API.example.com", 443, true },
        { "foo.org,example.com", "example.com", 443, true },
        { "foo.org example.com", "example.com", 443, true },
        /* ports */
        { "example.com:6443", "example.com", 6443, true },
        { "example.com:6443", "example.com", 443, false },
        { "example.com:6443", "api.example.com", 6443, true },
        { "example.com:x", "example.com", 443, false },
        { "example.com:", "example.com", 443, false },
        { ":443", "example.com", 443, false },
        /* IPv4 addresses and CIDRs */
        { "127.0.0.1", "127.0.0.1", 6443, true },
        { "127.0.0.1", "127.0.0.2", 6443, false },
        { "127.0.0.1:6443", "127.0.0.1", 6443, true },
        { "127.0.0.1:6443", "127.0.0.1", 443, false },
        { "127.0.0.0/8", "127.0.0.1", 6443, true },
        { "127.0.0.0/8", "127.255.3.4", 6443, true },
        { "127.0.0.0/8", "128.0.0.1", 6443, false },
        { "10.1.2.0/23", "10.1.3.200", 443, true },
        { "10.1.2.0/23", "10.1.4.1", 443, false },
        { "0.0.0.0/0", "192.0.2.1", 443, true },
        { "10.0.0.0/33", "10.0.0.1", 443, false },
        { "10.0.0.0/x", "10.0.0.1", 443, false },
        /* addresses never match names and the other way round */
        { "127.0.0.0/8", "localhost", 443, false },
        { "localhost", "127.0.0.1", 443, false },
        { "localhost", "localhost", 443, true },
        { "0.0.1", "127.0.0.1", 443, false },
        /* IPv6, with and without brackets, with ports and prefixes */
        { "::1", "::1", 6443, true },
        { "::1", "[::1]", 6443, true },
        { "[::1]", "::1", 6443, true },
        { "[::1]:6443", "::1", 6443, true },
        { "[::1]:6443", "::1", 443, false },
        { "fd00::/8", "fd12:3456::1", 443, true },
        { "fd00::/8", "fe80::1", 443, false },
        { "2001:db8::/129", "2001:db8::1", 443, false },
        /* IPv4-mapped IPv6 equals IPv4, as net.IP.Equal has it */
        { "::ffff:10.0.0.1", "10.0.0.1", 443, true },
        { "10.0.0.0/8", "::ffff:10.9.9.9", 443, true },
        /* a malformed entry is ignored, not fatal */
        { "[::1, example.com", "example.com", 443, true },
        { "[::1]x, example.com", "example.com", 443, true },
        { "/8, 10.0.0.0/8", "10.0.0.1", 443, true },
};

TEST(no_proxy_table) {
        for (size_t i = 0; i < ELEMENTSOF(match_table); i++) {
                bool b = proxy_no_proxy_matches(match_table[i].no_proxy, match_table[i].host,
                                                match_table[i].port);
                if (b != match_table[i].bypass) {
                        fprintf(stderr, "NO_PROXY=\"%s\" host %s port %u: expected %s\n",
                                strna(match_table[i].no_proxy), match_table[i].host, match_table[i].port,
                                match_table[i].bypass ? "bypass" : "proxy");
                        abort();
                }
        }
}

static const struct {
        const char *in, *normalized, *redacted;
} url_table[] = {
        { "http://proxy:3128", "http://proxy:3128", "http://proxy:3128" },
        { "proxy:3128", "http://proxy:3128", "http://proxy:3128" },
        { "proxy.corp", "http://proxy.corp:80", "http://proxy.corp:80" },
        { "HTTPS://proxy.corp/", "https://proxy.corp:443", "https://proxy.corp:443" },
        { "socks5h://10.0.0.1", "socks5h://10.0.0.1:1080", "socks5h://10.0.0.1:1080" },
        { "http://user:s%40cret@proxy:3128", "http://user:s%40cret@proxy:3128", "http://proxy:3128" },
        { "http://user@proxy:3128", "http://user@proxy:3128", "http://proxy:3128" },
        { "http://[::1]:3128", "http://[::1]:3128", "http://[::1]:3128" },
};

static const char *const url_invalid[] = {
        "", "ftp://proxy:21", "http://", "http://proxy:99999", "http://pro xy:3128", "gopher://x",
};

TEST(proxy_urls) {
        for (size_t i = 0; i < ELEMENTSOF(url_table); i++) {
                _cleanup_free_ char *n = NULL, *r = NULL;

                ASSERT_OK(proxy_url_normalize(url_table[i].in, &n));
                ASSERT_STREQ(n, url_table[i].normalized);
                ASSERT_OK(proxy_url_redact(url_table[i].in, &r));
                ASSERT_STREQ(r, url_table[i].redacted);
                ASSERT_TRUE(!strstr(r, "cret"));
        }
        for (size_t i = 0; i < ELEMENTSOF(url_invalid); i++) {
                char *n = (char *) 0x1;

                ASSERT_ERROR(proxy_url_normalize(url_invalid[i], &n), EINVAL);
                ASSERT_TRUE(n == (char *) 0x1);
        }
}

static void clear_env(void) {
        static const char *const names[] = {
                "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ASSERT_OK(unsetenv(names[i]));
}

static void check_select(const char *proxy, const char *no_proxy, const char *server, const char *expected,
                         ProxySource expected_source) {
        _cleanup_free_ char *p = NULL;
        ProxySource s = (ProxySource) -1;
        int r;

        r = proxy_for_server(proxy, no_proxy, server, &p, &s);
        ASSERT_OK(r);
        ASSERT_EQ(r, !!expected);
        if (expected)
                ASSERT_STREQ(p, expected);
        else
                ASSERT_TRUE(!p);
        ASSERT_EQ(s, expected_source);
}

TEST(select) {
        clear_env();

        /* nothing anywhere: direct */
        check_select(NULL, NULL, "https://10.0.0.1:6443", NULL, PROXY_SOURCE_NONE);
        /* the configuration */
        check_select("http://p:3128", NULL, "https://10.0.0.1:6443", "http://p:3128", PROXY_SOURCE_CONFIG);
        check_select("http://p:3128", "10.0.0.0/8", "https://10.0.0.1:6443", NULL, PROXY_SOURCE_CONFIG);
        check_select("http://p:3128", "10.0.0.1:6443", "https://10.0.0.1:6443", NULL, PROXY_SOURCE_CONFIG);
        check_select("http://p:3128", "10.0.0.1:443", "https://10.0.0.1:6443", "http://p:3128",
                     PROXY_SOURCE_CONFIG);
        /* the server's default port counts for ":port" entries */
        check_select("http://p:3128", "kube.example.com:443", "https://kube.example.com/", NULL,
                     PROXY_SOURCE_CONFIG);
        check_select("http://p:3128", "::1", "https://[::1]:6443", NULL, PROXY_SOURCE_CONFIG);

        /* the environment, when the configuration says nothing */
        ASSERT_OK(setenv("https_proxy", "lower:1", 1));
        check_select(NULL, NULL, "https://10.0.0.1:6443", "http://lower:1", PROXY_SOURCE_ENVIRONMENT);
        ASSERT_OK(setenv("HTTPS_PROXY", "http://upper:2", 1));
        check_select(NULL, NULL, "https://10.0.0.1:6443", "http://upper:2", PROXY_SOURCE_ENVIRONMENT);
        /* http:// servers use HTTP_PROXY, as Go does */
        check_select(NULL, NULL, "http://10.0.0.1:8080", NULL, PROXY_SOURCE_NONE);
        ASSERT_OK(setenv("HTTP_PROXY", "http://plain:3", 1));
        check_select(NULL, NULL, "http://10.0.0.1:8080", "http://plain:3", PROXY_SOURCE_ENVIRONMENT);
        ASSERT_OK(setenv("no_proxy", "10.0.0.1", 1));
        check_select(NULL, NULL, "https://10.0.0.1:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        ASSERT_OK(setenv("NO_PROXY", "other", 1));
        check_select(NULL, NULL, "https://10.0.0.1:6443", "http://upper:2", PROXY_SOURCE_ENVIRONMENT);
        /* never for a node-local API server, as Go's http.ProxyFromEnvironment (kubectl, kubelet) */
        check_select(NULL, NULL, "https://127.0.0.1:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        check_select(NULL, NULL, "https://127.0.0.53:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        check_select(NULL, NULL, "https://LocalHost:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        check_select(NULL, NULL, "https://[::1]:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        check_select(NULL, NULL, "https://localhost.example:6443", "http://upper:2", PROXY_SOURCE_ENVIRONMENT);
        /* ... but a proxy in the configuration is taken at its word */
        check_select("http://conf:4", NULL, "https://127.0.0.1:6443", "http://conf:4", PROXY_SOURCE_CONFIG);
        /* the configuration wins over the environment, each key on its own */
        check_select("http://conf:4", NULL, "https://10.0.0.1:6443", "http://conf:4", PROXY_SOURCE_CONFIG);
        check_select(NULL, "10.0.0.0/8", "https://10.0.0.1:6443", NULL, PROXY_SOURCE_ENVIRONMENT);
        check_select("http://conf:4", "*", "https://other.example:6443", NULL, PROXY_SOURCE_CONFIG);

        /* a bad proxy from the environment is an error, not a silent direct connection */
        ASSERT_OK(setenv("HTTPS_PROXY", "ftp://x", 1));
        {
                char *p = (char *) 0x1;

                ASSERT_ERROR(proxy_for_server(NULL, "", "https://10.0.0.1:6443", &p, NULL), EINVAL);
                ASSERT_TRUE(p == (char *) 0x1);
                ASSERT_ERROR(proxy_for_server(NULL, NULL, "ftp://10.0.0.1", &p, NULL), EINVAL);
        }
        clear_env();
}

int main(void) {
        RUN(no_proxy_table);
        RUN(proxy_urls);
        RUN(select);
        return 0;
}
