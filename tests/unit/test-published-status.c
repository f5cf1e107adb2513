/* SPDX-License-Identifier: Apache-2.0 */
/* What a daemon publishes on its Node for noderebootctl list: small, stable while nothing changes,
 * and read back as written. */
#include "published-status.h"
#include "string-util.h"
#include "tests.h"

static void test_pending_round_trip(void) {
        RebootState s;
        PublishedStatus p = {};
        _cleanup_free_ char *text = NULL, *again = NULL;

        reboot_state_init(&s);
        s.phase = REBOOT_PHASE_PENDING;
        s.pending_since = s.phase_since = 1764936000ULL * USEC_PER_SEC;
        s.reason = strdup("linux-image-6.1.0-28-amd64");
        text = published_status_format(&s, "nodereboot", "window", NULL);
        ASSERT_STREQ(text, "{\"lock\":\"nodereboot\",\"state\":\"pending\",\"since\":\"2025-12-05T12:00:00Z\","
                     "\"reason\":\"linux-image-6.1.0-28-amd64\",\"blocked\":\"window\"}");
        /* The same state, the same text: no write. */
        again = published_status_format(&s, "nodereboot", "window", NULL);
        ASSERT_STREQ(text, again);
        ASSERT_OK(published_status_parse(text, &p));
        ASSERT_STREQ(p.state, "pending");
        ASSERT_STREQ(p.blocked, "window");
        ASSERT_EQ(p.since, s.pending_since);
        published_status_done(&p);
        reboot_state_done(&s);
}

static void test_idle_after_a_reboot(void) {
        RebootState s;
        PublishedStatus p = {};
        _cleanup_free_ char *text = NULL;

        reboot_state_init(&s);
        s.phase_since = 1764936000ULL * USEC_PER_SEC;
        s.stats.reboots = 3;
        s.stats.last_reboot = 1764930000ULL * USEC_PER_SEC;
        s.kernel_before = strdup("6.1.0-27-amd64");
        s.kernel_after = strdup("6.1.0-28-amd64");
        text = published_status_format(&s, "nodereboot", NULL, NULL);
        ASSERT_OK(published_status_parse(text, &p));
        ASSERT_STREQ(p.state, "idle");
        ASSERT_EQ(p.since, 0U);          /* idle says when it was last busy, not since when idle */
        ASSERT_STREQ(p.result, "rebooted");
        ASSERT_STREQ(p.kernel_after, "6.1.0-28-amd64");
        ASSERT_EQ(p.last_reboot, s.stats.last_reboot);
        published_status_done(&p);

        s.failed_cycles = 1;
        s.last_error = strdup("drain timed out");
        free(text);
        text = published_status_format(&s, "nodereboot", NULL, NULL);
        ASSERT_OK(published_status_parse(text, &p));
        ASSERT_STREQ(p.result, "failed: drain timed out");
        published_status_done(&p);
        reboot_state_done(&s);
}

static void test_rebooting_names_the_boot_it_leaves(void) {
        RebootState s;
        PublishedStatus p = {};
        _cleanup_free_ char *text = NULL;

        reboot_state_init(&s);
        s.phase = REBOOT_PHASE_REBOOTING;
        s.phase_since = 1764936000ULL * USEC_PER_SEC;
        s.lease = strdup("nodereboot-0");
        strcpy(s.boot_id, "0123456789abcdef0123456789abcdef");
        text = published_status_format(&s, "nodereboot", NULL, NULL);
        ASSERT_OK(published_status_parse(text, &p));
        ASSERT_STREQ(p.state, "rebooting");
        ASSERT_STREQ(p.slot, "nodereboot-0");
        ASSERT_STREQ(p.boot_id, "0123456789abcdef0123456789abcdef");
        published_status_done(&p);
        reboot_state_done(&s);
}

static void test_hand_edits_are_not_a_status(void) {
        PublishedStatus p = {};

        ASSERT_ERROR(published_status_parse("", &p), EBADMSG);
        ASSERT_ERROR(published_status_parse("idle", &p), EBADMSG);
        ASSERT_ERROR(published_status_parse("{\"lock\":\"x\"}", &p), EBADMSG);
        ASSERT_ERROR(published_status_parse("{\"state\":1}", &p), EBADMSG);
        ASSERT_ERROR(published_status_parse("{\"state\":\"idle\",\"since\":\"yesterday\"}", &p), EBADMSG);
}

int main(void) {
        test_pending_round_trip();
        test_idle_after_a_reboot();
        test_rebooting_names_the_boot_it_leaves();
        test_hand_edits_are_not_a_status();
        return 0;
}
