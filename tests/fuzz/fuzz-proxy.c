/* SPDX-License-Identifier: Apache-2.0 */
/* Proxy settings (Proxy=, NoProxy=, HTTPS_PROXY, NO_PROXY): proxy_url_normalize, proxy_url_redact,
 * proxy_no_proxy_matches, proxy_for_server. Input: "PROXY\nNO_PROXY\nSERVER-URL\nHOST". Invariants:
 * normalising is idempotent; the redacted form carries no user information; a NO_PROXY list matches
 * a host when one of its entries does ("*" matches all); proxy_for_server answers consistently with
 * both. */
#include <string.h>

#include "fuzz-util.h"
#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *norm = NULL, *again = NULL, *redacted = NULL, *chosen = NULL;
        ProxySource source;
        char **parts;
        unsigned port;
        bool any = false;
        int r;

        if (size < 2 || size > 8192)
                return 0;
        /* Only the configuration speaks here, not the environment of whoever runs the fuzzer. */
        static const char * const env[] = { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                            "NO_PROXY", "no_proxy" };
        for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
                (void) unsetenv(env[i]);
        port = data[0] | (unsigned) data[1] << 8;
        parts = fuzz_split(data + 2, size - 2, '\n', 4);

        if (proxy_url_normalize(parts[0], &norm) >= 0) {
                fuzz_assert(proxy_url_normalize(norm, &again) >= 0);
                if (!streq(norm, again)) {
                        fprintf(stderr, "'%s' -> '%s' -> '%s'\n", parts[0], norm, again);
                        abort();
                }
                fuzz_assert(proxy_url_redact(norm, &redacted) >= 0);
                fuzz_assert(!strchr(redacted, '@'));
        }

        /* Each entry on its own (the separators are commas and white space). */
        _cleanup_free_ char *list = strdup(parts[1]);
        fuzz_assert(list);
        for (char *state = NULL, *e = strtok_r(list, ", \t\n", &state); e; e = strtok_r(NULL, ", \t\n", &state))
                any = any || proxy_no_proxy_matches(e, parts[3], port);
        if (proxy_no_proxy_matches(parts[1], parts[3], port) != any) {
                fprintf(stderr, "NO_PROXY '%s' vs its entries for %s:%u\n", parts[1], parts[3], port);
                abort();
        }

        r = proxy_for_server(parts[0], parts[1], parts[2], &chosen, &source);
        if (r > 0) {
                fuzz_assert(chosen && source == PROXY_SOURCE_CONFIG && norm && streq(chosen, norm));
        } else if (r == 0)
                fuzz_assert(!chosen);
        fuzz_parts_free(parts, 4);
        return 0;
}
