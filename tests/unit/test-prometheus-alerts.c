/* SPDX-License-Identifier: Apache-2.0 */
/* Which alerts of Prometheus's /api/v1/alerts answer block a reboot: the filters as kured's
 * --alert-filter-regexp, --alert-filter-match-only and --alert-firing-only, and answers that are
 * not answers (each must block, with a message that says what is wrong). */
#include <errno.h>
#include <regex.h>
#include <string.h>

#include "prometheus-alerts.h"
#include "string-util.h"
#include "tests.h"

/* Two firing alerts (one twice, from two targets) and a pending one, as Prometheus 2.42 answers. */
static const char answer[] =
        "{\"status\":\"success\",\"data\":{\"alerts\":["
        "{\"labels\":{\"alertname\":\"NodeDown\",\"instance\":\"a\"},\"annotations\":{},\"state\":\"firing\","
        "\"activeAt\":\"2026-12-05T10:00:00Z\",\"value\":\"1e+00\"},"
        "{\"labels\":{\"alertname\":\"Watchdog\"},\"annotations\":{},\"state\":\"firing\","
        "\"activeAt\":\"2026-12-05T10:00:00Z\",\"value\":\"1e+00\"},"
        "{\"labels\":{\"alertname\":\"NodeDown\",\"instance\":\"b\"},\"annotations\":{},\"state\":\"firing\","
        "\"activeAt\":\"2026-12-05T10:00:00Z\",\"value\":\"1e+00\"},"
        "{\"labels\":{\"alertname\":\"DiskFilling\"},\"annotations\":{},\"state\":\"pending\","
        "\"activeAt\":\"2026-12-05T10:00:00Z\",\"value\":\"9e-01\"}]}}";

static char *blocking(const char *body, const AlertFilter *f) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *error = NULL;

        ASSERT_OK(alerts_blocking(body, strlen(body), f, &names, &error));
        ASSERT_TRUE(names && !error);
        return alerts_join(names);
}

static void assert_blocking(const char *body, const AlertFilter *f, const char *expect) {
        _cleanup_free_ char *got = blocking(body, f);

        ASSERT_STREQ(got, expect);
}

TEST(filters) {
        regex_t re;

        assert_blocking(answer, NULL, "DiskFilling, NodeDown, Watchdog");
        assert_blocking(answer, &(AlertFilter) { .firing_only = true }, "NodeDown, Watchdog");
        ASSERT_EQ(regcomp(&re, "^(Watchdog|InfoInhibitor)$", REG_EXTENDED | REG_NOSUB), 0);
        /* kured's --alert-filter-regexp: matching alerts are ignored */
        assert_blocking(answer, &(AlertFilter) { .regex = &re }, "DiskFilling, NodeDown");
        /* --alert-filter-match-only: only matching alerts count */
        assert_blocking(answer, &(AlertFilter) { .regex = &re, .match_only = true }, "Watchdog");
        assert_blocking(answer, &(AlertFilter) { .regex = &re, .firing_only = true }, "NodeDown");
        regfree(&re);
        ASSERT_EQ(regcomp(&re, "Disk", REG_EXTENDED | REG_NOSUB), 0);
        assert_blocking(answer, &(AlertFilter) { .regex = &re, .match_only = true, .firing_only = true }, "");
        regfree(&re);
        assert_blocking("{\"status\":\"success\",\"data\":{\"alerts\":[]}}", NULL, "");
}

TEST(not_answers) {
        static const struct {
                const char *body;
                const char *expect;
        } cases[] = {
                { "<html>502 Bad Gateway</html>", "" },
                { "", "" },
                { "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"rule manager not ready\"}",
                  "Prometheus answered an error: rule manager not ready (unavailable)" },
                { "{\"status\":\"success\",\"data\":{}}", "not an answer of Prometheus's alerts API" },
                { "{\"status\":\"success\",\"data\":{\"alerts\":{}}}", "not an answer of Prometheus's alerts API" },
                { "{\"data\":{\"alerts\":[]}}", "not an answer of Prometheus's alerts API" },
                { "{\"status\":\"success\",\"data\":{\"alerts\":[{\"labels\":{},\"state\":\"firing\"}]}}",
                  "alert 0 of the answer has no labels.alertname" },
                { "{\"status\":\"success\",\"data\":{\"alerts\":[{\"labels\":{\"alertname\":\"A\"},\"state\":\"inactive\"}]}}",
                  "alert 0 of the answer has a state other than" },
                { "[1,2,3]", "not an answer" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **names = NULL;
                _cleanup_free_ char *error = NULL;

                ASSERT_ERROR(alerts_blocking(cases[i].body, strlen(cases[i].body), NULL, &names, &error), EBADMSG);
                ASSERT_TRUE(!names);
                ASSERT_TRUE(error);
                if (!strstr(error, cases[i].expect)) {
                        fprintf(stderr, "case %zu: \"%s\" does not say \"%s\"\n", i, error, cases[i].expect);
                        abort();
                }
        }
}

TEST(join) {
        char *many[14] = {};
        _cleanup_free_ char *s = NULL;

        for (int i = 0; i < 13; i++)
                many[i] = strdup_printf("A%02d", i);
        s = alerts_join(many);
        ASSERT_STREQ(s, "A00, A01, A02, A03, A04, A05, A06, A07, A08, A09, and 3 more");
        for (int i = 0; i < 13; i++)
                free(many[i]);
}

int main(void) {
        RUN(filters);
        RUN(not_answers);
        RUN(join);
        return 0;
}
