/* SPDX-License-Identifier: Apache-2.0 */
/* [Notify]: messages to Slack, Microsoft Teams and generic webhooks when a node's cycle reaches
 * an event. Delivery runs on the event loop beside the cycle, never in its way: each message is
 * posted with a timeout and retried a bounded number of times (1 s, 2 s, 4 s, ... apart; not
 * for answers no retry can mend: 4xx other than 408 and 429), at most NOTIFIER_IN_FLIGHT_MAX at
 * once (more are dropped), and a failure is logged and counted. URLs are secrets (a Slack
 * webhook URL is a credential): only scheme://host ever reaches the log. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "notify-message.h"

typedef struct Notifier Notifier;

typedef struct NotifierSettings {
        char **urls;                    /* as configured (slack://, teams://, http(s)://) */
        NotifyType type;                /* for http(s) URLs; AUTO: by the host */
        const char *ca_file;            /* NULL: the system's trust store */
        unsigned events;                /* 1 << NotifyEvent for each event to send */
        const char *templates[_NOTIFY_EVENT_MAX];       /* NULL: notify_default_template() */
        usec_t timeout_usec;
        unsigned retries;               /* attempts after the first */
        const char *proxy, *no_proxy;   /* http_client_set_proxy() */
} NotifierSettings;

/* Called when a delivery was given up (for the metrics). */
typedef void (*NotifierFailedHandler)(Notifier *n, void *userdata);

/* -EINVAL when a URL is not one (logged by its position in the list, never by its text). */
int notifier_new(Notifier **ret, sd_event *event, const NotifierSettings *settings, NotifierFailedHandler failed,
                 void *userdata);
Notifier *notifier_free(Notifier *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Notifier *, notifier_free);

/* Sends facts->event to every URL, if that event is wanted. Returns at once. */
void notifier_send(Notifier *n, const NotifyFacts *facts);
bool notifier_wants(Notifier *n, NotifyEvent e);
unsigned notifier_failures(Notifier *n);
/* Deliveries not finished (in flight or waiting to be retried). */
unsigned notifier_pending(Notifier *n);

#define NOTIFIER_IN_FLIGHT_MAX 32U
