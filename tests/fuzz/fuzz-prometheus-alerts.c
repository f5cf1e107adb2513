/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus's /api/v1/alerts answer (alerts_blocking), with kured's filters. Input: a byte of
 * options, then "REGEX\n" and the body. Invariants: the names are sorted, each once, each an
 * alertname of the answer; firing-only gives a subset of all; a filter only takes names away
 * (match-only: keeps those that match); a refused answer says why. */
#include <regex.h>
#include <string.h>

#include "fuzz-util.h"
#include "prometheus-alerts.h"
#include "regex-util.h"

static char **blocking(const char *body, const AlertFilter *f) {
        _cleanup_free_ char *error = NULL;
        char **names = NULL;
        int r;

        r = alerts_blocking(body, strlen(body), f, &names, &error);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && error && error[0]));
                return NULL;
        }
        fuzz_assert(names);
        for (size_t i = 0; names[i]; i++) {
                fuzz_assert(names[i][0]);
                fuzz_assert(!names[i + 1] || strcmp(names[i], names[i + 1]) < 0);
                fuzz_assert(strstr(body, names[i]) || strchr(body, '\\'));
        }
        return names;
}

static bool subset(char **a, char **b) {
        for (char **n = a; n && *n; n++)
                if (!strv_contains(b, *n))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_strv_free_ char **all = NULL, **firing = NULL, **filtered = NULL;
        regex_t regex;
        bool have_regex;
        char **parts;

        if (size < 1 || size > 256U * 1024U)
                return 0;
        parts = fuzz_split(data + 1, size - 1, '\n', 2);

        all = blocking(parts[1], &(AlertFilter) {});
        if (!all)
                goto finish;
        firing = blocking(parts[1], &(AlertFilter) { .firing_only = true });
        fuzz_assert(firing && subset(firing, all));

        have_regex = regex_compile(&regex, parts[0], REG_NOSUB) >= 0;     /* as the configuration does */
        if (have_regex) {
                bool match_only = data[0] & 1;

                filtered = blocking(parts[1], &(AlertFilter) { .regex = &regex, .match_only = match_only });
                fuzz_assert(filtered && subset(filtered, all));
                for (char **n = filtered; *n; n++)
                        fuzz_assert((regexec(&regex, *n, 0, NULL, 0) == 0) == match_only);
                regfree(&regex);
        }
finish:
        fuzz_parts_free(parts, 2);
        return 0;
}
