/* SPDX-License-Identifier: Apache-2.0 */
/* Which proxy, if any, carries the connection to the API server: [Kubernetes] Proxy= and NoProxy=,
 * each falling back to the environment (HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy) when unset, with
 * NO_PROXY matched as Go's golang.org/x/net/http/httpproxy (kubectl, client-go) matches it, against
 * the server's real host. We decide here rather than let libcurl match, because libcurl would match
 * the kubeconfig's tls-server-name (the URL's host when it is set). No I/O, no logging. */
#pragma once

#include <stdbool.h>

/* Whether a request to host:port bypasses the proxy per no_proxy: entries separated by commas (or
 * white space), each "*" (everything), a host name ("example.com" matches it and its subdomains,
 * ".example.com" and "*.example.com" only the subdomains), an IP address or a CIDR ("10.0.0.0/8",
 * "fd00::/8"); host names and addresses may carry ":port" ("[::1]:6443" for IPv6), and then match only
 * that port. Malformed entries are ignored. host is a name or an IP literal (IPv6 with or without
 * brackets); matching ignores case. Loopback addresses and "localhost" are not exempt here: see
 * proxy_for_server(). */
bool proxy_no_proxy_matches(const char *no_proxy, const char *host, unsigned port);

/* Checks a proxy URL and returns it with its port made explicit (libcurl's default would be 1080 for
 * every scheme): "scheme://[user[:password]@]host:port". Schemes: http (the default when the value has
 * none, as with Go), https, socks4, socks4a, socks5, socks5h. -EINVAL when it does not parse. */
int proxy_url_normalize(const char *url, char **ret);

/* The proxy URL without credentials or path, for logs: "scheme://host:port". */
int proxy_url_redact(const char *url, char **ret);

typedef enum ProxySource {
        PROXY_SOURCE_NONE,              /* no proxy configured anywhere */
        PROXY_SOURCE_CONFIG,            /* [Kubernetes] Proxy= */
        PROXY_SOURCE_ENVIRONMENT,       /* HTTPS_PROXY/https_proxy (HTTP_PROXY/http_proxy for http://) */
} ProxySource;

/* Picks the proxy for the API server at server_url. proxy and no_proxy come from the configuration;
 * NULL means unset, and the environment is asked instead (server URLs with http:// use HTTP_PROXY).
 * A proxy from the environment is never used for "localhost" or a loopback address (Go's
 * http.ProxyFromEnvironment, hence kubectl and the kubelet, behave so); one from the configuration
 * is, unless no_proxy matches.
 * Returns 1 and the normalised proxy URL in *ret_proxy when the server is reached through it, 0 and
 * NULL when directly (no proxy, or a NoProxy=/NO_PROXY match). *ret_source (may be NULL) says where
 * the proxy came from, also when NoProxy= bypasses it. -EINVAL for an unusable proxy URL or server URL. */
int proxy_for_server(const char *proxy, const char *no_proxy, const char *server_url, char **ret_proxy,
                     ProxySource *ret_source);
