/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "json-util.h"
#include "notify-message.h"
#include "string-util.h"

static const char *const event_names[_NOTIFY_EVENT_MAX] = {
        [NOTIFY_DRAIN_START] = "drain-start",
        [NOTIFY_REBOOT] = "reboot",
        [NOTIFY_BACK_IN_SERVICE] = "back-in-service",
        [NOTIFY_FAILED] = "failed",
        [NOTIFY_BLOCKED_TOO_LONG] = "blocked-too-long",
};

static const char *const type_names[_NOTIFY_TYPE_MAX] = {
        [NOTIFY_TYPE_AUTO] = "auto",
        [NOTIFY_TYPE_SLACK] = "slack",
        [NOTIFY_TYPE_TEAMS] = "teams",
        [NOTIFY_TYPE_WEBHOOK] = "webhook",
};

static const char *const default_templates[_NOTIFY_EVENT_MAX] = {
        [NOTIFY_DRAIN_START] = "Draining node %node% for a reboot (reason: %reason%)",
        [NOTIFY_REBOOT] = "Rebooting node %node% (reason: %reason%)",
        [NOTIFY_BACK_IN_SERVICE] = "Node %node% is back in service after its reboot",
        [NOTIFY_FAILED] = "The reboot of node %node% failed and was rolled back: %error%",
        [NOTIFY_BLOCKED_TOO_LONG] = "Node %node% has needed a reboot since %since% and still waits: %waiting%",
};

static const char *const placeholders[] = {
        "node", "event", "state", "reason", "packages", "error", "waiting", "kernel_before", "kernel_after",
        "time", "since",
};

const char *notify_event_to_string(NotifyEvent e) {
        return e >= 0 && e < _NOTIFY_EVENT_MAX ? event_names[e] : NULL;
}

NotifyEvent notify_event_from_string(const char *s) {
        for (NotifyEvent e = 0; s && e < _NOTIFY_EVENT_MAX; e++)
                if (streq(s, event_names[e]))
                        return e;
        return _NOTIFY_EVENT_INVALID;
}

const char *notify_type_to_string(NotifyType t) {
        return t >= 0 && t < _NOTIFY_TYPE_MAX ? type_names[t] : NULL;
}

NotifyType notify_type_from_string(const char *s) {
        for (NotifyType t = 0; s && t < _NOTIFY_TYPE_MAX; t++)
                if (streq(s, type_names[t]))
                        return t;
        return _NOTIFY_TYPE_INVALID;
}

const char *notify_default_template(NotifyEvent e) {
        return e >= 0 && e < _NOTIFY_EVENT_MAX ? default_templates[e] : NULL;
}

static const char *fact(const NotifyFacts *f, const char *name, size_t n, char *buf, size_t size) {
#define IS(s) (n == strlen(s) && strneq(name, s, n))
        if (IS("node"))
                return f->node;
        if (IS("event"))
                return notify_event_to_string(f->event);
        if (IS("state"))
                return f->state;
        if (IS("reason"))
                return f->reason;
        if (IS("packages"))
                return f->packages;
        if (IS("error"))
                return f->error;
        if (IS("waiting"))
                return f->waiting;
        if (IS("kernel_before"))
                return f->kernel_before;
        if (IS("kernel_after"))
                return f->kernel_after;
        if (IS("time"))
                return f->time > 0 ? format_rfc3339(buf, size, f->time, false) : NULL;
        if (IS("since"))
                return f->since > 0 ? format_rfc3339(buf, size, f->since, false) : NULL;
#undef IS
        return NULL;
}

static bool is_placeholder(const char *name, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(placeholders); i++)
                if (n == strlen(placeholders[i]) && strneq(name, placeholders[i], n))
                        return true;
        return false;
}

char *notify_expand(const char *template, const NotifyFacts *facts) {
        char *out = NULL, buf[FORMAT_RFC3339_MAX];
        size_t size = 0;
        FILE *f;

        if (!template || !facts)
                return NULL;
        f = open_memstream(&out, &size);
        if (!f)
                return NULL;
        for (const char *p = template; *p;) {
                const char *end;

                if (p[0] == '%' && p[1] == '%') {
                        fputc('%', f);
                        p += 2;
                        continue;
                }
                if (p[0] == '%' && (end = strchr(p + 1, '%')) && is_placeholder(p + 1, (size_t) (end - p - 1))) {
                        fputs(strempty(fact(facts, p + 1, (size_t) (end - p - 1), buf, sizeof buf)), f);
                        p = end + 1;
                        continue;
                }
                fputc(*p++, f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

int notify_template_check(const char *template, char **ret_bad) {
        for (const char *p = template; p && *p;) {
                const char *end;
                size_t n;

                if (p[0] == '%' && p[1] == '%') {
                        p += 2;
                        continue;
                }
                if (p[0] != '%' || !(end = strchr(p + 1, '%'))) {
                        p++;
                        continue;
                }
                n = (size_t) (end - p - 1);
                /* %word% with a word of letters and '_' only: meant as a placeholder */
                if (n > 0 && strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_") == n && !is_placeholder(p + 1, n)) {
                        if (ret_bad)
                                *ret_bad = strndup(p, n + 2);
                        return -EINVAL;
                }
                p = n > 0 && is_placeholder(p + 1, n) ? end + 1 : p + 1;
        }
        return 0;
}

static bool host_endswith(const char *host, const char *domain) {
        size_t h = strlen(host), d = strlen(domain);

        return h > d && streq(host + h - d, domain) && host[h - d - 1] == '.';
}

int notify_resolve_url(const char *url, NotifyType forced, NotifyType *ret_type, char **ret_post_url) {
        _cleanup_free_ char *host = NULL;
        NotifyType t;
        const char *rest, *slash;
        int r;

        if (!url || !ret_type || !ret_post_url)
                return -EINVAL;
        for (const char *p = url; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return -EINVAL;
        /* TYPE+http(s)://: that type, posted to the rest */
        for (NotifyType k = NOTIFY_TYPE_SLACK; k < _NOTIFY_TYPE_MAX; k++) {
                const char *name = type_names[k];
                size_t n = strlen(name);

                if (strneq(url, name, n) && url[n] == '+') {
                        rest = url + n + 1;
                        if (!startswith(rest, "https://") && !startswith(rest, "http://"))
                                return -EINVAL;
                        r = notify_resolve_url(rest, k, ret_type, ret_post_url);
                        return r;
                }
        }
        if ((rest = startswith(url, "slack://") ? url + 8 : NULL)) {
                /* three tokens: T.../B.../secret */
                unsigned parts = 1;
                if (!*rest || strchr(rest, '?') || strchr(rest, '@'))
                        return -EINVAL;
                for (const char *p = rest; *p; p++)
                        if (*p == '/')
                                parts++;
                if (parts != 3 || strstr(rest, "//") || endswith(rest, "/"))
                        return -EINVAL;
                *ret_post_url = strjoin("https://hooks.slack.com/services/", rest);
                *ret_type = NOTIFY_TYPE_SLACK;
                return *ret_post_url ? 0 : -ENOMEM;
        }
        if ((rest = startswith(url, "teams://") ? url + 8 : NULL)) {
                if (!*rest || *rest == '/')
                        return -EINVAL;
                *ret_post_url = strjoin("https://", rest);
                *ret_type = NOTIFY_TYPE_TEAMS;
                return *ret_post_url ? 0 : -ENOMEM;
        }
        if ((rest = startswith(url, "https://") ? url + 8 : startswith(url, "http://") ? url + 7 : NULL) == NULL ||
            !*rest || *rest == '/')
                return -EINVAL;
        slash = rest + strcspn(rest, "/?#");
        host = strndup(rest, (size_t) (slash - rest));
        if (!host)
                return -ENOMEM;
        if (strchr(host, '@'))          /* user information: never in a webhook */
                return -EINVAL;
        host[strcspn(host, ":")] = 0;
        if (forced != NOTIFY_TYPE_AUTO)
                t = forced;
        else if (streq(host, "hooks.slack.com"))
                t = NOTIFY_TYPE_SLACK;
        else if (host_endswith(host, "logic.azure.com") || host_endswith(host, "webhook.office.com") ||
                 host_endswith(host, "powerplatform.com"))
                t = NOTIFY_TYPE_TEAMS;
        else
                t = NOTIFY_TYPE_WEBHOOK;
        *ret_post_url = strdup(url);
        if (!*ret_post_url)
                return -ENOMEM;
        *ret_type = t;
        return 0;
}

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static int add_time(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        return json_object_object_add(o, key, t > 0 ? json_object_new_string(format_rfc3339(buf, sizeof buf, t, false)) :
                                      NULL) < 0 ? -ENOMEM : 0;
}

/* Slack's text: &, < and > escaped as its formatting asks, at most max bytes (a section's text
 * may hold 3000 characters; longer blocks are refused with 400 invalid_blocks), cut between
 * characters with "…". */
static char *slack_text(const char *s, size_t max) {
        char *out = malloc(max + 1);
        size_t n = 0;

        if (!out)
                return NULL;
        for (const char *p = s; *p; p++) {
                const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
                size_t k = e ? strlen(e) : 1;

                if (n + k > max - 3) {          /* room for "…" (3 bytes) */
                        if (((unsigned char) *p & 0xc0) == 0x80) {
                                /* cut inside a character: drop its first bytes too */
                                while (n > 0 && ((unsigned char) out[n - 1] & 0xc0) == 0x80)
                                        n--;
                                if (n > 0)
                                        n--;
                        }
                        memcpy(out + n, "…", 3);
                        n += 3;
                        break;
                }
                if (e)
                        memcpy(out + n, e, k);
                else
                        out[n] = *p;
                n += k;
        }
        out[n] = 0;
        return out;
}

#define SLACK_TEXT_MAX 3000U

static json_object *slack_body(const char *raw, const NotifyFacts *f) {
        _cleanup_free_ char *message = slack_text(raw, SLACK_TEXT_MAX), *node = slack_text(strempty(f->node), 300);
        _cleanup_free_ char *context = strdup_printf("nodereboot · node *%s* · %s", strna(node),
                                                     notify_event_to_string(f->event));
        json_object *o = json_object_new_object(), *blocks = json_object_new_array(),
                *section = json_object_new_object(), *text = json_object_new_object(),
                *ctx = json_object_new_object(), *elements = json_object_new_array(), *el = json_object_new_object();

        if (!message || !context || !o || !blocks || !section || !text || !ctx || !elements || !el)
                goto fail;
        /* "text" is what notifications and clients without blocks show. */
        json_object_object_add(o, "text", json_object_new_string(message));
        json_object_object_add(text, "type", json_object_new_string("mrkdwn"));
        json_object_object_add(text, "text", json_object_new_string(message));
        json_object_object_add(section, "type", json_object_new_string("section"));
        json_object_object_add(section, "text", TAKE_PTR(text));
        json_object_array_add(blocks, TAKE_PTR(section));
        json_object_object_add(el, "type", json_object_new_string("mrkdwn"));
        json_object_object_add(el, "text", json_object_new_string(context));
        json_object_array_add(elements, TAKE_PTR(el));
        json_object_object_add(ctx, "type", json_object_new_string("context"));
        json_object_object_add(ctx, "elements", TAKE_PTR(elements));
        json_object_array_add(blocks, TAKE_PTR(ctx));
        json_object_object_add(o, "blocks", TAKE_PTR(blocks));
        return o;
fail:
        json_object_put(o);
        json_object_put(blocks);
        json_object_put(section);
        json_object_put(text);
        json_object_put(ctx);
        json_object_put(elements);
        json_object_put(el);
        return NULL;
}

static json_object *teams_fact(const char *title, const char *value) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "title", json_object_new_string(title));
        json_object_object_add(o, "value", json_object_new_string(strempty(value)));
        return o;
}

/* The envelope Teams workflows ("Post to a channel when a webhook request is received") take: a
 * message with one Adaptive Card attachment. */
static json_object *teams_body(const char *message, const NotifyFacts *f) {
        json_object *o = json_object_new_object(), *attachments = json_object_new_array(),
                *attachment = json_object_new_object(), *card = json_object_new_object(),
                *body = json_object_new_array(), *text = json_object_new_object(),
                *factset = json_object_new_object(), *facts = json_object_new_array();

        if (!o || !attachments || !attachment || !card || !body || !text || !factset || !facts)
                goto fail;
        json_object_object_add(text, "type", json_object_new_string("TextBlock"));
        json_object_object_add(text, "text", json_object_new_string(message));
        json_object_object_add(text, "wrap", json_object_new_boolean(true));
        json_object_array_add(body, TAKE_PTR(text));
        json_object_array_add(facts, teams_fact("Node", f->node));
        json_object_array_add(facts, teams_fact("Event", notify_event_to_string(f->event)));
        json_object_array_add(facts, teams_fact("State", f->state));
        if (f->reason)
                json_object_array_add(facts, teams_fact("Reason", f->reason));
        if (f->error)
                json_object_array_add(facts, teams_fact("Error", f->error));
        json_object_object_add(factset, "type", json_object_new_string("FactSet"));
        json_object_object_add(factset, "facts", TAKE_PTR(facts));
        json_object_array_add(body, TAKE_PTR(factset));
        json_object_object_add(card, "$schema", json_object_new_string("http://adaptivecards.io/schemas/adaptive-card.json"));
        json_object_object_add(card, "type", json_object_new_string("AdaptiveCard"));
        json_object_object_add(card, "version", json_object_new_string("1.4"));
        json_object_object_add(card, "body", TAKE_PTR(body));
        json_object_object_add(attachment, "contentType",
                               json_object_new_string("application/vnd.microsoft.card.adaptive"));
        json_object_object_add(attachment, "contentUrl", NULL);
        json_object_object_add(attachment, "content", TAKE_PTR(card));
        json_object_array_add(attachments, TAKE_PTR(attachment));
        json_object_object_add(o, "type", json_object_new_string("message"));
        json_object_object_add(o, "attachments", TAKE_PTR(attachments));
        return o;
fail:
        json_object_put(o);
        json_object_put(attachments);
        json_object_put(attachment);
        json_object_put(card);
        json_object_put(body);
        json_object_put(text);
        json_object_put(factset);
        json_object_put(facts);
        return NULL;
}

static json_object *webhook_body(const char *message, const NotifyFacts *f) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "node", string_or_null(f->node));
        json_object_object_add(o, "event", json_object_new_string(notify_event_to_string(f->event)));
        json_object_object_add(o, "state", string_or_null(f->state));
        json_object_object_add(o, "message", json_object_new_string(message));
        json_object_object_add(o, "reason", string_or_null(f->reason));
        json_object_object_add(o, "packages", string_or_null(f->packages));
        json_object_object_add(o, "error", string_or_null(f->error));
        json_object_object_add(o, "waiting", string_or_null(f->waiting));
        json_object_object_add(o, "kernel_before", string_or_null(f->kernel_before));
        json_object_object_add(o, "kernel_after", string_or_null(f->kernel_after));
        if (add_time(o, "time", f->time) < 0 || add_time(o, "since", f->since) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int notify_body(NotifyType type, const char *message, const NotifyFacts *facts, char **ret) {
        _cleanup_json_ json_object *o = NULL;
        const char *text;

        if (!message || !facts || !ret)
                return -EINVAL;
        switch (type) {
        case NOTIFY_TYPE_SLACK:
                o = slack_body(message, facts);
                break;
        case NOTIFY_TYPE_TEAMS:
                o = teams_body(message, facts);
                break;
        case NOTIFY_TYPE_WEBHOOK:
                o = webhook_body(message, facts);
                break;
        default:
                return -EINVAL;
        }
        if (!o)
                return -ENOMEM;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        *ret = strdup(text);
        return *ret ? 0 : -ENOMEM;
}
