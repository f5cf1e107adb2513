/* SPDX-License-Identifier: Apache-2.0 */
/* What a notification says and how each service wants it: the events, message templates with
 * kured-like placeholders, where a URL goes (Slack incoming webhook, Microsoft Teams workflow,
 * or a generic JSON webhook) and the body posted there. Pure. */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "time-util.h"

typedef enum NotifyEvent {
        NOTIFY_DRAIN_START,
        NOTIFY_REBOOT,
        NOTIFY_BACK_IN_SERVICE,
        NOTIFY_FAILED,                  /* a cycle given up and rolled back */
        NOTIFY_BLOCKED_TOO_LONG,        /* pending for longer than [Notify] BlockedTooLongSec= */
        _NOTIFY_EVENT_MAX,
        _NOTIFY_EVENT_INVALID = -EINVAL,
} NotifyEvent;

typedef enum NotifyType {
        NOTIFY_TYPE_AUTO,               /* by the URL */
        NOTIFY_TYPE_SLACK,
        NOTIFY_TYPE_TEAMS,
        NOTIFY_TYPE_WEBHOOK,
        _NOTIFY_TYPE_MAX,
        _NOTIFY_TYPE_INVALID = -EINVAL,
} NotifyType;

const char *notify_event_to_string(NotifyEvent e);     /* "drain-start", ... */
NotifyEvent notify_event_from_string(const char *s);
const char *notify_type_to_string(NotifyType t);
NotifyType notify_type_from_string(const char *s);

/* What a message may name. Strings may be NULL (empty in a message, null in a webhook). */
typedef struct NotifyFacts {
        NotifyEvent event;
        const char *node;
        const char *state;
        const char *reason;             /* why the reboot is required */
        const char *packages;           /* the packages, when the reason is the package list */
        const char *error;
        const char *waiting;            /* what the node waits for */
        const char *kernel_before;
        const char *kernel_after;
        usec_t time;                    /* CLOCK_REALTIME of the event */
        usec_t since;                   /* when the reboot became required */
} NotifyFacts;

/* The default template of each event. */
const char *notify_default_template(NotifyEvent e);
/* Replaces %node%, %event%, %state%, %reason%, %packages%, %error%, %waiting%, %kernel_before%,
 * %kernel_after%, %time% and %since% (RFC 3339, UTC); "%%" is a "%"; any other %word% is kept
 * as written. Newly allocated. */
char *notify_expand(const char *template, const NotifyFacts *facts);
/* -EINVAL naming the first placeholder that is not one of the above (so the configuration can
 * refuse it), in *ret_bad (newly allocated). */
int notify_template_check(const char *template, char **ret_bad);

/* Where url goes and the https URL to post to: "slack+https://...", "teams+https://..." and
 * "webhook+https://..." (or +http) are of that type, posted to the URL after the "+";
 * "slack://T/B/X" (the token form of a Slack
 * incoming webhook, as kured's shoutrrr writes it) is https://hooks.slack.com/services/T/B/X;
 * "teams://HOST/PATH?QUERY" is a Teams workflow at https://HOST/PATH?QUERY; an http(s) URL is of
 * type forced (when not AUTO), else Slack for hooks.slack.com, Teams for *.logic.azure.com,
 * *.webhook.office.com and *.powerplatform.com, else a generic webhook. -EINVAL for anything
 * else. */
int notify_resolve_url(const char *url, NotifyType forced, NotifyType *ret_type, char **ret_post_url);

/* The JSON body of a message of type (not AUTO) for facts, newly allocated:
 * Slack: {"text": message, "blocks": [a section with the message, a context line]};
 * Teams: {"type": "message", "attachments": [an Adaptive Card 1.4 with the message and facts]};
 * webhook: every fact by name, plus "message", times in RFC 3339. */
int notify_body(NotifyType type, const char *message, const NotifyFacts *facts, char **ret);
