/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "prometheus-alerts.h"
#include "string-util.h"

#define ALERTS_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define ALERTS_MAX_BODY ((size_t) 8 * 1024 * 1024)
#define JOIN_MAX 10U

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static bool alert_counts(const AlertFilter *f, const char *name, const char *state) {
        if (f->firing_only && !streq(state, "firing"))
                return false;
        if (f->regex) {
                bool match = regexec(f->regex, name, 0, NULL, 0) == 0;

                return f->match_only ? match : !match;
        }
        return true;
}

int alerts_blocking(const char *body, size_t size, const AlertFilter *filter, char ***ret, char **ret_error) {
        static const AlertFilter none = {};
        _cleanup_json_ json_object *o = NULL;
        _cleanup_strv_free_ char **names = NULL;
        json_object *alerts;
        const char *status;
        size_t n = 0;
        int r;

        if (!body || !ret || !ret_error)
                return -EINVAL;
        *ret_error = NULL;
        if (!filter)
                filter = &none;
        r = json_parse_with_error(body, size, &o, ret_error);
        if (r < 0)
                return -EBADMSG;
        status = json_get_string(o, "status");
        if (streq_ptr(status, "error")) {
                *ret_error = strdup_printf("Prometheus answered an error: %s (%s)", strna(json_get_string(o, "error")),
                                           strna(json_get_string(o, "errorType")));
                return -EBADMSG;
        }
        alerts = json_get(o, "data.alerts");
        if (!streq_ptr(status, "success") || !alerts || !json_object_is_type(alerts, json_type_array)) {
                *ret_error = strdup("not an answer of Prometheus's alerts API: expected {\"status\": \"success\", "
                                    "\"data\": {\"alerts\": [...]}}");
                return -EBADMSG;
        }
        for (size_t i = 0; i < json_array_length(alerts); i++) {
                json_object *a = json_object_array_get_idx(alerts, i);
                const char *name = json_get_string(a, "labels.alertname"), *state = json_get_string(a, "state");

                if (isempty(name) || !state || (!streq(state, "firing") && !streq(state, "pending"))) {
                        *ret_error = strdup_printf("alert %zu of the answer has %s", i,
                                                   isempty(name) ? "no labels.alertname" :
                                                   "a state other than \"pending\" and \"firing\"");
                        return -EBADMSG;
                }
                if (!alert_counts(filter, name, state) || strv_contains(names, name))
                        continue;
                r = strv_extend(&names, name);
                if (r < 0)
                        return r;
                n++;
        }
        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(char *), compare_strings);
        *ret = TAKE_PTR(names);
        return 0;
}

char *alerts_join(char **names) {
        _cleanup_free_ char *s = NULL;
        size_t n = strv_length(names), i;

        for (i = 0; i < n && i < JOIN_MAX; i++) {
                char *t = strjoin(s ?: "", s ? ", " : "", names[i]);
                if (!t)
                        return NULL;
                free(s);
                s = t;
        }
        if (n > JOIN_MAX) {
                char *t = strdup_printf("%s, and %zu more", s, n - JOIN_MAX);
                if (!t)
                        return NULL;
                free(s);
                s = t;
        }
        return s ? TAKE_PTR(s) : strdup("");
}

struct AlertsCheck {
        HttpRequest *request;
        AlertFilter filter;
        char *display;                  /* scheme://host:port of the server, for messages */
        AlertsHandler handler;
        void *userdata;
};

static void alerts_fail(AlertsCheck *c, int error, const char *fmt, ...) _printf_(3, 4);
static void alerts_fail(AlertsCheck *c, int error, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL, *full = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        full = strdup_printf("cannot ask Prometheus at %s for its alerts: %s", c->display, strna(m));
        c->handler(error, NULL, full ?: "cannot ask Prometheus for its alerts", c->userdata);
}

static void on_answer(HttpRequest *r, int error, const char *message, const HttpResponse *response,
                      void *userdata) {
        AlertsCheck *c = userdata;
        _cleanup_strv_free_ char **blocking = NULL;
        _cleanup_free_ char *what = NULL;
        int k;

        c->request = NULL;
        if (error < 0) {
                /* In words that stay the same from one try to the next (curl's name the time
                 * taken): they go to STATUS= and to an Event each time they change. */
                log_debug("Asking Prometheus at %s for its alerts failed: %s", c->display, strna(message));
                alerts_fail(c, error, "%s", strerror(ERRNO_VALUE(error)));
                return;
        }
        if (response->status != 200 && response->status != 400 && response->status != 422 &&
            response->status != 503) {
                alerts_fail(c, -EIO, "HTTP status %ld", response->status);
                return;
        }
        k = alerts_blocking(response->body, response->size, &c->filter, &blocking, &what);
        if (k < 0) {
                alerts_fail(c, k, "%s", what ?: (response->status == 200 ? "the answer is not JSON" :
                                                 "an HTTP error without an explanation"));
                return;
        }
        c->handler(0, blocking, NULL, c->userdata);
}

/* The first line of path, for a secret: never logged. */
static int read_secret(const char *path, char **ret) {
        int r = read_one_line_file(path, ret);

        if (r >= 0 && isempty(*ret)) {
                *ret = mfree(*ret);
                return -ENODATA;
        }
        return r;
}

int alerts_check(AlertsCheck **ret, HttpClient *http, const AlertsSettings *s, AlertsHandler handler,
                 void *userdata) {
        _cleanup_free_ char *url = NULL, *token = NULL, *basic = NULL;
        AlertsCheck *c;
        HttpOptions o = {
                .ca_file = s ? s->ca_file : NULL,
                .accept = "application/json",
                .timeout_usec = ALERTS_TIMEOUT_USEC,
                .max_body = ALERTS_MAX_BODY,
        };
        int r;

        if (!ret || !http || !s || !s->url || !handler)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->filter = s->filter;
        c->handler = handler;
        c->userdata = userdata;
        c->display = http_url_for_display(s->url);
        url = strjoin(s->url, endswith(s->url, "/") ? "" : "/", "api/v1/alerts");
        if (!c->display || !url) {
                alerts_check_free(c);
                return -ENOMEM;
        }
        if (s->bearer_token_file) {
                r = read_secret(s->bearer_token_file, &token);
                if (r < 0) {
                        log_warning_errno(r, "Failed to read [Blockers] PrometheusBearerTokenFile=%s: %m",
                                          s->bearer_token_file);
                        alerts_check_free(c);
                        return r;
                }
                o.bearer_token = token;
        }
        if (s->basic_auth_file) {
                r = read_secret(s->basic_auth_file, &basic);
                if (r >= 0 && !strchr(basic, ':'))
                        r = -EBADMSG;
                if (r < 0) {
                        log_warning_errno(r, "Failed to read [Blockers] PrometheusBasicAuthFile=%s (one line, "
                                          "user:password): %m", s->basic_auth_file);
                        alerts_check_free(c);
                        return r;
                }
                o.basic_auth = basic;
        }
        r = http_client_request(http, "GET", url, NULL, &o, on_answer, c, &c->request);
        if (token)
                explicit_bzero(token, strlen(token));
        if (basic)
                explicit_bzero(basic, strlen(basic));
        if (r < 0) {
                alerts_check_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

AlertsCheck *alerts_check_free(AlertsCheck *c) {
        if (!c)
                return NULL;
        http_request_cancel(c->request);
        free(c->display);
        free(c);
        return NULL;
}
