/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "macro.h"
#include "proxy.h"
#include "string-util.h"

/* Longest IP literal we try to parse; anything longer is a host name. */
#define IP_TEXT_MAX 64U
#define HOST_NAME_TEXT_MAX 255U

/* Addresses are compared as 16 bytes, IPv4 mapped into IPv6 (::ffff:a.b.c.d), as Go's net.IP does. */
static bool ip_parse_n(const char *s, size_t n, uint8_t ret[static 16]) {
        char buf[IP_TEXT_MAX];
        struct in_addr a4;

        if (n == 0 || n >= sizeof buf)
                return false;
        if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
                s++;
                n -= 2;
        }
        memcpy(buf, s, n);
        buf[n] = 0;

        if (inet_pton(AF_INET, buf, &a4) == 1) {
                memset(ret, 0, 10);
                ret[10] = ret[11] = 0xff;
                memcpy(ret + 12, &a4, 4);
                return true;
        }
        return inet_pton(AF_INET6, buf, ret) == 1;
}

static bool ip_is_v4_mapped(const uint8_t ip[static 16]) {
        static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

        return memcmp(ip, prefix, sizeof prefix) == 0;
}

static bool ip_in_prefix(const uint8_t ip[static 16], const uint8_t net[static 16], unsigned bits) {
        unsigned full = bits / 8, rest = bits % 8;

        if (memcmp(ip, net, full) != 0)
                return false;
        if (rest == 0)
                return true;
        return ((ip[full] ^ net[full]) & (uint8_t) (0xff << (8 - rest))) == 0;
}

static bool ascii_equal_n(const char *a, size_t an, const char *b, size_t bn) {
        if (an != bn)
                return false;
        for (size_t i = 0; i < an; i++) {
                char x = a[i], y = b[i];

                if (x >= 'A' && x <= 'Z')
                        x = (char) (x - 'A' + 'a');
                if (y >= 'A' && y <= 'Z')
                        y = (char) (y - 'A' + 'a');
                if (x != y)
                        return false;
        }
        return true;
}

/* "65535" -> 65535; anything else (empty, signs, junk, > 65535) fails. */
static bool port_parse_n(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;

        if (n == 0 || n > 5)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > 65535)
                return false;
        *ret = v;
        return true;
}

/* The host of a request, prepared once: lower-case name or address, brackets dropped. */
typedef struct ProxyTarget {
        const char *name;
        size_t name_len;
        bool is_ip;
        uint8_t ip[16];
        unsigned port;
} ProxyTarget;

/* "a.b.c.d/n" or "x::y/n" */
static bool entry_match_cidr(const char *e, size_t n, const ProxyTarget *t) {
        const char *slash = memchr(e, '/', n);
        uint8_t net[16];
        unsigned bits;

        if (!ip_parse_n(e, (size_t) (slash - e), net))
                return false;
        if (!port_parse_n(slash + 1, n - (size_t) (slash - e) - 1, &bits))
                return false;
        if (ip_is_v4_mapped(net)) {
                if (bits > 32)
                        return false;
                bits += 96;
        } else if (bits > 128)
                return false;
        return t->is_ip && ip_in_prefix(t->ip, net, bits);
}

static bool entry_matches(const char *e, size_t n, const ProxyTarget *t) {
        const char *host = e, *colon;
        size_t host_len = n;
        unsigned port = 0;
        bool has_port = false, whole_name;
        uint8_t ip[16];

        if (n == 1 && e[0] == '*')
                return true;
        if (memchr(e, '/', n))
                return entry_match_cidr(e, n, t);

        /* Split off ":port": "[v6]:port", "v4:port", "name:port". A bare IPv6 address has more than
         * one colon and no port. */
        if (e[0] == '[') {
                const char *close = memchr(e, ']', n);

                if (!close)
                        return false;
                host_len = (size_t) (close - e) + 1;
                if (host_len < n) {
                        if (e[host_len] != ':' || !port_parse_n(e + host_len + 1, n - host_len - 1, &port))
                                return false;
                        has_port = true;
                }
        } else if ((colon = memchr(e, ':', n)) && !memchr(colon + 1, ':', n - (size_t) (colon - e) - 1)) {
                host_len = (size_t) (colon - e);
                if (!port_parse_n(colon + 1, n - host_len - 1, &port))
                        return false;
                has_port = true;
        }
        if (host_len == 0)
                return false;
        if (has_port && port != t->port)
                return false;

        if (ip_parse_n(host, host_len, ip))
                return t->is_ip && memcmp(ip, t->ip, sizeof ip) == 0;
        if (host[0] == '[' || t->is_ip)
                return false;

        /* "*.example.com" is ".example.com"; "example.com" also matches the name itself. */
        if (host_len >= 2 && host[0] == '*' && host[1] == '.') {
                host++;
                host_len--;
        }
        whole_name = host[0] != '.';
        if (!whole_name) {
                host++;
                host_len--;
        }
        if (host_len == 0)
                return false;

        if (whole_name && ascii_equal_n(t->name, t->name_len, host, host_len))
                return true;
        /* A subdomain: the name ends in "." + host. */
        return t->name_len > host_len &&
                t->name[t->name_len - host_len - 1] == '.' &&
                ascii_equal_n(t->name + t->name_len - host_len, host_len, host, host_len);
}

bool proxy_no_proxy_matches(const char *no_proxy, const char *host, unsigned port) {
        ProxyTarget t = { .port = port };
        const char *p;

        if (isempty(no_proxy) || isempty(host))
                return false;

        t.name = host;
        t.name_len = strlen(host);
        if (t.name_len >= 2 && host[0] == '[' && host[t.name_len - 1] == ']') {
                t.name++;
                t.name_len -= 2;
        }
        t.is_ip = ip_parse_n(t.name, t.name_len, t.ip);

        for (p = no_proxy; *p; ) {
                size_t n;

                p += strspn(p, ", \t\r\n");
                n = strcspn(p, ", \t\r\n");
                if (n > 0 && n <= HOST_NAME_TEXT_MAX + 8 && entry_matches(p, n, &t))
                        return true;
                p += n;
        }
        return false;
}

/* ---- URLs -------------------------------------------------------------------------------------- */

typedef struct ProxyUrl {
        char *scheme, *user, *password, *host, *port;
} ProxyUrl;

static void proxy_url_done(ProxyUrl *u) {
        curl_free(u->scheme);
        curl_free(u->user);
        if (u->password) {
                explicit_bzero(u->password, strlen(u->password));
                curl_free(u->password);
        }
        curl_free(u->host);
        curl_free(u->port);
        *u = (ProxyUrl) {};
}

static const char *proxy_default_port(const char *scheme) {
        static const struct {
                const char *scheme, *port;
        } table[] = {
                { "http", "80" }, { "https", "443" },
                { "socks4", "1080" }, { "socks4a", "1080" }, { "socks5", "1080" }, { "socks5h", "1080" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(scheme, table[i].scheme))
                        return table[i].port;
        return NULL;
}

static int proxy_url_parse(const char *url, ProxyUrl *ret) {
        _cleanup_free_ char *with_scheme = NULL;
        ProxyUrl u = {};
        CURLU *h;
        int r = -EINVAL;

        if (isempty(url) || strlen(url) > 4096 || strpbrk(url, " \t\r\n"))
                return -EINVAL;
        /* "proxy:3128" is http://proxy:3128, as Go reads it. */
        if (!strstr(url, "://")) {
                with_scheme = strjoin("http://", url);
                if (!with_scheme)
                        return -ENOMEM;
                url = with_scheme;
        }

        h = curl_url();
        if (!h)
                return -ENOMEM;
        if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
                goto finish;
        if (curl_url_get(h, CURLUPART_SCHEME, &u.scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &u.host, 0) != CURLUE_OK || isempty(u.host))
                goto finish;
        for (char *s = u.scheme; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        *s = (char) (*s - 'A' + 'a');
        if (!proxy_default_port(u.scheme))
                goto finish;
        if (curl_url_get(h, CURLUPART_PORT, &u.port, 0) != CURLUE_OK)
                u.port = NULL;
        if (curl_url_get(h, CURLUPART_USER, &u.user, 0) != CURLUE_OK)
                u.user = NULL;
        if (curl_url_get(h, CURLUPART_PASSWORD, &u.password, 0) != CURLUE_OK)
                u.password = NULL;
        r = 0;

finish:
        curl_url_cleanup(h);
        if (r < 0) {
                proxy_url_done(&u);
                return r;
        }
        *ret = u;
        return 0;
}

/* The proxy URL re-written with its port made explicit, with or without its credentials. */
static int proxy_url_format(const char *url, bool credentials, char **ret) {
        _cleanup_(proxy_url_done) ProxyUrl u = {};
        char *s;
        int r;

        r = proxy_url_parse(url, &u);
        if (r < 0)
                return r;
        if (!ret)
                return 0;
        if (credentials)
                s = strjoin(u.scheme, "://",
                            u.user ?: "", u.password ? ":" : "", u.password ?: "", u.user ? "@" : "",
                            u.host, ":", u.port ?: proxy_default_port(u.scheme));
        else
                s = strjoin(u.scheme, "://", u.host, ":", u.port ?: proxy_default_port(u.scheme));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int proxy_url_normalize(const char *url, char **ret) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        int r;

        /* libcurl decodes a percent-encoded host without reading it again as an address
         * ("%3333333" is "333333", which is 0.5.22.21 to it the next time): format until the
         * text no longer changes, so that what we log and compare is what libcurl connects to. */
        r = proxy_url_format(url, true, &a);
        for (unsigned i = 0; r >= 0 && i < 3; i++) {
                r = proxy_url_format(a, true, &b);
                if (r < 0)
                        return r;
                if (streq(a, b)) {
                        if (ret)
                                *ret = TAKE_PTR(a);
                        return 0;
                }
                free(a);
                a = TAKE_PTR(b);
        }
        return r < 0 ? r : -EINVAL;
}

int proxy_url_redact(const char *url, char **ret) {
        return proxy_url_format(url, false, ret);
}

static const char *getenv_any(const char *upper, const char *lower) {
        const char *v;

        /* Go asks the upper-case name first; an empty value counts as unset. */
        v = getenv(upper);
        if (isempty(v))
                v = getenv(lower);
        return isempty(v) ? NULL : v;
}

/* The server's real host (brackets dropped for IPv6) and port, from its URL. */
static int server_host_port(const char *server_url, bool *ret_https, char **ret_host, unsigned *ret_port) {
        char *scheme = NULL, *host = NULL, *port = NULL;
        unsigned p;
        CURLU *h;
        int r = -EINVAL;

        h = curl_url();
        if (!h)
                return -ENOMEM;
        if (curl_url_set(h, CURLUPART_URL, server_url, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
                goto finish;
        if ((!streq(scheme, "https") && !streq(scheme, "http")) || isempty(host) ||
            !port_parse_n(port, strlen(port), &p))
                goto finish;
        {
                size_t n = strlen(host);
                char *copy;

                if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
                        copy = strndup(host + 1, n - 2);
                else
                        copy = strdup(host);
                if (!copy) {
                        r = -ENOMEM;
                        goto finish;
                }
                *ret_https = streq(scheme, "https");
                *ret_host = copy;
                *ret_port = p;
                r = 0;
        }

finish:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(h);
        return r;
}

/* Go's http.ProxyFromEnvironment never proxies "localhost" or a loopback address. */
static bool host_is_loopback(const char *host) {
        static const uint8_t v6_loopback[16] = { [15] = 1 };
        uint8_t ip[16];

        if (strcasecmp(host, "localhost") == 0)
                return true;
        if (!ip_parse_n(host, strlen(host), ip))
                return false;
        if (ip_is_v4_mapped(ip))
                return ip[12] == 127;
        return memcmp(ip, v6_loopback, sizeof ip) == 0;
}

int proxy_for_server(const char *proxy, const char *no_proxy, const char *server_url, char **ret_proxy,
                     ProxySource *ret_source) {
        _cleanup_free_ char *host = NULL;
        ProxySource source = PROXY_SOURCE_CONFIG;
        char *normalized = NULL;
        unsigned port;
        bool https;
        int r;

        if (isempty(server_url) || !ret_proxy)
                return -EINVAL;
        r = server_host_port(server_url, &https, &host, &port);
        if (r < 0)
                return r;

        if (!proxy) {
                proxy = https ? getenv_any("HTTPS_PROXY", "https_proxy") :
                                getenv_any("HTTP_PROXY", "http_proxy");
                source = proxy ? PROXY_SOURCE_ENVIRONMENT : PROXY_SOURCE_NONE;
        }
        if (!no_proxy)
                no_proxy = getenv_any("NO_PROXY", "no_proxy");

        /* As kubectl and the kubelet on the same node do: a proxy from the environment is never
         * used for a node-local API server (a load balancer on 127.0.0.1, "localhost"). One set
         * in [Kubernetes] Proxy= is, unless NoProxy= says otherwise. */
        if (proxy && source == PROXY_SOURCE_ENVIRONMENT && host_is_loopback(host))
                proxy = NULL;
        if (proxy && !proxy_no_proxy_matches(no_proxy, host, port)) {
                r = proxy_url_normalize(proxy, &normalized);
                if (r < 0)
                        return r;
        }

        if (ret_source)
                *ret_source = source;
        *ret_proxy = normalized;
        return !!normalized;
}
