/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "http-client.h"
#include "log.h"
#include "notifier.h"
#include "string-util.h"

#define RETRY_INITIAL_USEC (1 * USEC_PER_SEC)
#define RETRY_MAX_USEC (30 * USEC_PER_SEC)

typedef struct Target {
        NotifyType type;
        char *post_url;
        char *display;                  /* scheme://host[:port] only */
} Target;

typedef struct Delivery Delivery;
struct Delivery {
        Notifier *notifier;
        Delivery *prev, *next;
        const Target *target;
        NotifyEvent event;
        char *body;
        unsigned attempt;
        HttpRequest *request;
        sd_event_source *retry;
};

struct Notifier {
        sd_event *event;
        HttpClient *http;
        Target *targets;
        size_t n_targets;
        char *ca_file;
        unsigned events;
        char *templates[_NOTIFY_EVENT_MAX];
        usec_t timeout_usec;
        unsigned retries;
        Delivery *deliveries;
        unsigned pending;
        unsigned failures;
        NotifierFailedHandler failed;
        void *userdata;
};

static void delivery_free(Delivery *d) {
        Notifier *n;

        if (!d)
                return;
        n = d->notifier;
        http_request_cancel(d->request);
        sd_event_source_disable_unref(d->retry);
        if (d->next)
                d->next->prev = d->prev;
        if (d->prev)
                d->prev->next = d->next;
        else
                n->deliveries = d->next;
        n->pending--;
        free(d->body);
        free(d);
}

static void delivery_start(Delivery *d);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Delivery *d = userdata;

        d->retry = sd_event_source_disable_unref(d->retry);
        delivery_start(d);
        return 0;
}

/* Gives up (logged, counted) or tries again later. Frees d when it gives up. */
static void delivery_failed(Delivery *d, bool lasting, const char *why) {
        Notifier *n = d->notifier;
        usec_t delay;
        int r;

        if (!lasting && d->attempt <= n->retries) {
                delay = RETRY_INITIAL_USEC << MIN(d->attempt - 1, 5U);
                delay = MIN(delay, RETRY_MAX_USEC);
                log_debug("Notifying %s of %s failed (%s), retrying in %" PRIu64 " ms.", d->target->display,
                          notify_event_to_string(d->event), why, delay / USEC_PER_MSEC);
                r = sd_event_add_time_relative(n->event, &d->retry, CLOCK_MONOTONIC, delay, USEC_PER_MSEC * 100,
                                               on_retry, d);
                if (r >= 0)
                        return;
        }
        log_warning("Failed to notify %s (%s) of %s after %u attempt%s: %s.", d->target->display,
                    notify_type_to_string(d->target->type), notify_event_to_string(d->event), d->attempt,
                    d->attempt == 1 ? "" : "s", why);
        n->failures++;
        delivery_free(d);
        if (n->failed)
                n->failed(n, n->userdata);
}

static void on_answer(HttpRequest *r, int error, const char *message, const HttpResponse *response,
                      void *userdata) {
        Delivery *d = userdata;
        _cleanup_free_ char *why = NULL;
        long s = response->status;

        d->request = NULL;
        if (error >= 0 && s >= 200 && s < 300) {
                log_debug("Notified %s of %s (HTTP %ld).", d->target->display, notify_event_to_string(d->event), s);
                delivery_free(d);
                return;
        }
        if (error < 0)
                why = strdup(strna(message));
        else
                why = strdup_printf("HTTP status %ld", s);
        delivery_failed(d, error >= 0 && s >= 400 && s < 500 && s != 408 && s != 429, strna(why));
}

static void delivery_start(Delivery *d) {
        Notifier *n = d->notifier;
        HttpOptions o = {
                .ca_file = n->ca_file,
                .content_type = "application/json",
                .timeout_usec = n->timeout_usec,
                .max_body = 64 * 1024,
        };
        int r;

        d->attempt++;
        r = http_client_request(n->http, "POST", d->target->post_url, d->body, &o, on_answer, d, &d->request);
        if (r < 0)
                delivery_failed(d, true, strerror(ERRNO_VALUE(r)));
}

int notifier_new(Notifier **ret, sd_event *event, const NotifierSettings *s, NotifierFailedHandler failed,
                 void *userdata) {
        _cleanup_(notifier_freep) Notifier *n = NULL;
        size_t count = strv_length(s ? s->urls : NULL);
        int r;

        if (!ret || !event || !s)
                return -EINVAL;
        n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->event = sd_event_ref(event);
        n->events = s->events;
        n->timeout_usec = s->timeout_usec;
        n->retries = s->retries;
        n->failed = failed;
        n->userdata = userdata;
        if (s->ca_file && !(n->ca_file = strdup(s->ca_file)))
                return -ENOMEM;
        for (NotifyEvent e = 0; e < _NOTIFY_EVENT_MAX; e++)
                if (!(n->templates[e] = strdup(s->templates[e] ?: notify_default_template(e))))
                        return -ENOMEM;
        n->targets = calloc(MAX(count, (size_t) 1), sizeof(Target));
        if (!n->targets)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                Target *t = &n->targets[i];

                r = notify_resolve_url(s->urls[i], s->type, &t->type, &t->post_url);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return log_error_errno(r, "[Notify] URL number %zu is not a notification URL "
                                               "(slack://T/B/X, teams://HOST/PATH, http:// or https://).", i + 1);
                n->n_targets++;
                t->display = http_url_for_display(t->post_url);
                if (!t->display)
                        return -ENOMEM;
        }
        r = http_client_new(&n->http, event, "noderebootd/" PACKAGE_VERSION);
        if (r < 0)
                return r;
        r = http_client_set_proxy(n->http, s->proxy, s->no_proxy);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        while (n->deliveries)
                delivery_free(n->deliveries);
        http_client_free(n->http);
        for (size_t i = 0; i < n->n_targets; i++) {
                erase_and_free(n->targets[i].post_url);
                free(n->targets[i].display);
        }
        free(n->targets);
        for (NotifyEvent e = 0; e < _NOTIFY_EVENT_MAX; e++)
                free(n->templates[e]);
        free(n->ca_file);
        sd_event_unref(n->event);
        free(n);
        return NULL;
}

bool notifier_wants(Notifier *n, NotifyEvent e) {
        return n && e >= 0 && e < _NOTIFY_EVENT_MAX && (n->events & (1U << e)) && n->n_targets > 0;
}

void notifier_send(Notifier *n, const NotifyFacts *facts) {
        _cleanup_free_ char *message = NULL;

        if (!facts || !notifier_wants(n, facts->event))
                return;
        message = notify_expand(n->templates[facts->event], facts);
        if (!message)
                return (void) log_oom();
        for (size_t i = 0; i < n->n_targets; i++) {
                Delivery *d;
                int r;

                if (n->pending >= NOTIFIER_IN_FLIGHT_MAX) {
                        log_warning("Not notifying %s of %s: %u notifications are still being delivered.",
                                    n->targets[i].display, notify_event_to_string(facts->event), n->pending);
                        n->failures++;
                        if (n->failed)
                                n->failed(n, n->userdata);
                        continue;
                }
                d = calloc(1, sizeof *d);
                if (!d)
                        return (void) log_oom();
                d->notifier = n;
                d->target = &n->targets[i];
                d->event = facts->event;
                r = notify_body(n->targets[i].type, message, facts, &d->body);
                if (r < 0) {
                        free(d);
                        log_warning_errno(r, "Failed to build the notification of %s: %m",
                                          notify_event_to_string(facts->event));
                        continue;
                }
                d->next = n->deliveries;
                if (d->next)
                        d->next->prev = d;
                n->deliveries = d;
                n->pending++;
                delivery_start(d);
        }
}

unsigned notifier_failures(Notifier *n) {
        return n ? n->failures : 0;
}

unsigned notifier_pending(Notifier *n) {
        return n ? n->pending : 0;
}
