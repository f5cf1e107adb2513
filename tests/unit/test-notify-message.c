/* SPDX-License-Identifier: Apache-2.0 */
/* Notifications, the pure half: templates and their placeholders, where each kind of URL goes,
 * and the bodies Slack, Teams workflows and generic webhooks get. */
#include <errno.h>
#include <string.h>

#include "json-util.h"
#include "notify-message.h"
#include "string-util.h"
#include "tests.h"

static const NotifyFacts facts = {
        .event = NOTIFY_DRAIN_START,
        .node = "node-a",
        .state = "draining",
        .reason = "linux-image-6.1.0-28-amd64",
        .time = 1764930000 * USEC_PER_SEC,
        .since = 1764929000 * USEC_PER_SEC,
};

TEST(expand) {
        _cleanup_free_ char *a = notify_expand("Draining %node% (%reason%) at %time%, since %since%; %error%|", &facts);
        _cleanup_free_ char *b = notify_expand("100%% of %node% %unknown% %", &facts);
        _cleanup_free_ char *c = notify_expand(notify_default_template(NOTIFY_BACK_IN_SERVICE), &facts);

        ASSERT_STREQ(a, "Draining node-a (linux-image-6.1.0-28-amd64) at 2025-12-05T10:20:00Z, since "
                     "2025-12-05T10:03:20Z; |");
        ASSERT_STREQ(b, "100% of node-a %unknown% %");
        ASSERT_STREQ(c, "Node node-a is back in service after its reboot");
}

TEST(template_check) {
        _cleanup_free_ char *bad = NULL;

        ASSERT_OK(notify_template_check("Rebooting %node%: %reason% (100%% sure, 50% off)", NULL));
        ASSERT_ERROR(notify_template_check("Rebooting %nodename% now", &bad), EINVAL);
        ASSERT_STREQ(bad, "%nodename%");
        for (NotifyEvent e = 0; e < _NOTIFY_EVENT_MAX; e++)
                ASSERT_OK(notify_template_check(notify_default_template(e), NULL));
}

TEST(urls) {
        static const struct {
                const char *url;
                NotifyType forced, type;
                const char *post;       /* NULL: refused */
        } cases[] = {
                { "slack://T0001/B0002/XXXXSECRET", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_SLACK,
                  "https://hooks.slack.com/services/T0001/B0002/XXXXSECRET" },
                { "https://hooks.slack.com/services/T1/B2/C3", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_SLACK,
                  "https://hooks.slack.com/services/T1/B2/C3" },
                { "teams://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=S",
                  NOTIFY_TYPE_AUTO, NOTIFY_TYPE_TEAMS,
                  "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=S" },
                { "https://prod-01.westeurope.logic.azure.com/workflows/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_TEAMS,
                  "https://prod-01.westeurope.logic.azure.com/workflows/x" },
                { "https://contoso.webhook.office.com/webhookb2/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_TEAMS,
                  "https://contoso.webhook.office.com/webhookb2/x" },
                { "https://alerts.example.com/hook", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_WEBHOOK,
                  "https://alerts.example.com/hook" },
                { "https://127.0.0.1:8443/x", NOTIFY_TYPE_SLACK, NOTIFY_TYPE_SLACK, "https://127.0.0.1:8443/x" },
                /* a look-alike host is no Slack */
                { "https://hooks.slack.com.example.net/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_WEBHOOK,
                  "https://hooks.slack.com.example.net/x" },
                { "https://evillogic.azure.com/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_WEBHOOK, "https://evillogic.azure.com/x" },
                { "slack+https://127.0.0.1:8443/services/T/B/X", NOTIFY_TYPE_WEBHOOK, NOTIFY_TYPE_SLACK,
                  "https://127.0.0.1:8443/services/T/B/X" },
                { "teams+http://[::1]:80/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_TEAMS, "http://[::1]:80/x" },
                { "webhook+https://hooks.slack.com/x", NOTIFY_TYPE_AUTO, NOTIFY_TYPE_WEBHOOK,
                  "https://hooks.slack.com/x" },
                { "slack+ftp://x/y", NOTIFY_TYPE_AUTO, 0, NULL },
                { "auto+https://x/y", NOTIFY_TYPE_AUTO, 0, NULL },
                { "slack://T1/B2", NOTIFY_TYPE_AUTO, 0, NULL },
                { "slack://T1/B2/C3/D4", NOTIFY_TYPE_AUTO, 0, NULL },
                { "slack://bot@T1/B2/C3", NOTIFY_TYPE_AUTO, 0, NULL },
                { "teams://", NOTIFY_TYPE_AUTO, 0, NULL },
                { "ftp://example.com/x", NOTIFY_TYPE_AUTO, 0, NULL },
                { "https://user:pw@example.com/x", NOTIFY_TYPE_AUTO, 0, NULL },
                { "https:///x", NOTIFY_TYPE_AUTO, 0, NULL },
                { "https://example.com/a b", NOTIFY_TYPE_AUTO, 0, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *post = NULL;
                NotifyType t;
                int r = notify_resolve_url(cases[i].url, cases[i].forced, &t, &post);

                if (!cases[i].post) {
                        if (r != -EINVAL) {
                                fprintf(stderr, "accepted %s\n", cases[i].url);
                                abort();
                        }
                        continue;
                }
                ASSERT_OK(r);
                ASSERT_EQ(t, cases[i].type);
                ASSERT_STREQ(post, cases[i].post);
        }
}

TEST(bodies) {
        _cleanup_free_ char *slack = NULL, *teams = NULL, *hook = NULL;
        _cleanup_json_ json_object *s = NULL, *t = NULL, *w = NULL;
        json_object *att;

        ASSERT_OK(notify_body(NOTIFY_TYPE_SLACK, "Draining \"node-a\"", &facts, &slack));
        ASSERT_OK(json_parse(slack, strlen(slack), &s));
        ASSERT_STREQ(json_get_string(s, "text"), "Draining \"node-a\"");
        ASSERT_EQ(json_array_length(json_get(s, "blocks")), 2);
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(json_get(s, "blocks"), 0), "type"), "section");

        ASSERT_OK(notify_body(NOTIFY_TYPE_TEAMS, "m", &facts, &teams));
        ASSERT_OK(json_parse(teams, strlen(teams), &t));
        ASSERT_STREQ(json_get_string(t, "type"), "message");
        att = json_object_array_get_idx(json_get(t, "attachments"), 0);
        ASSERT_STREQ(json_get_string(att, "contentType"), "application/vnd.microsoft.card.adaptive");
        ASSERT_STREQ(json_get_string(att, "content.type"), "AdaptiveCard");
        ASSERT_STREQ(json_get_string(att, "content.version"), "1.4");

        ASSERT_OK(notify_body(NOTIFY_TYPE_WEBHOOK, "m", &facts, &hook));
        ASSERT_OK(json_parse(hook, strlen(hook), &w));
        ASSERT_STREQ(json_get_string(w, "node"), "node-a");
        ASSERT_STREQ(json_get_string(w, "event"), "drain-start");
        ASSERT_STREQ(json_get_string(w, "time"), "2025-12-05T10:20:00Z");
        {
                json_object *v = NULL;

                /* present, null */
                ASSERT_TRUE(json_object_object_get_ex(w, "error", &v) && !v);
                ASSERT_TRUE(json_object_object_get_ex(w, "kernel_before", &v) && !v);
        }

        ASSERT_ERROR(notify_body(NOTIFY_TYPE_AUTO, "m", &facts, &hook), EINVAL);

        /* Slack: &, <, > escaped; a long text cut at 3000 bytes between characters */
        {
                _cleanup_free_ char *long_text = malloc(5000), *body = NULL;
                _cleanup_json_ json_object *o = NULL;
                const char *text;

                for (size_t i = 0; i < 4998; i += 2)
                        memcpy(long_text + i, "\xc3\xbc", 2);     /* ü */
                long_text[4998] = 0;
                ASSERT_OK(notify_body(NOTIFY_TYPE_SLACK, long_text, &facts, &body));
                ASSERT_OK(json_parse(body, strlen(body), &o));
                text = json_get_string(o, "text");
                ASSERT_TRUE(strlen(text) <= 3000);
                ASSERT_TRUE(endswith(text, "\xc3\xbc…"));
                ASSERT_TRUE(utf8_is_valid(text));
                body = mfree(body);
                json_object_put(o);
                o = NULL;
                ASSERT_OK(notify_body(NOTIFY_TYPE_SLACK, "a <b> & c", &facts, &body));
                ASSERT_OK(json_parse(body, strlen(body), &o));
                ASSERT_STREQ(json_get_string(o, "text"), "a &lt;b&gt; &amp; c");
        }
}

int main(void) {
        RUN(expand);
        RUN(template_check);
        RUN(urls);
        RUN(bodies);
        return 0;
}
