/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "inhibitors.h"
#include "macro.h"
#include "string-util.h"
#include "tests.h"

TEST(only_block_inhibitors_of_shutdown_count) {
        _cleanup_(inhibitor_list_done) InhibitorList l = {};
        _cleanup_free_ char *text = NULL;

        /* the kubelet's graceful node shutdown takes a delay inhibitor: it only postpones */
        ASSERT_OK(inhibitor_list_add(&l, "shutdown", "kubelet", "Kubelet needs time", "delay"));
        ASSERT_OK(inhibitor_list_add(&l, "sleep", "gnome", "idle", "block"));
        ASSERT_OK(inhibitor_list_finish(&l, &text));
        ASSERT_TRUE(text == NULL);

        ASSERT_OK(inhibitor_list_add(&l, "sleep:shutdown", "backup", "nightly run", "block"));
        ASSERT_OK(inhibitor_list_add(&l, "shutdown", "", "", "block"));
        ASSERT_OK(inhibitor_list_finish(&l, &text));
        ASSERT_STREQ(text, "backup (nightly run), unknown ()");
        ASSERT_TRUE(!inhibitor_what_contains("shutdownx:sleep", "shutdown"));
}

TEST(holders_are_cut_and_cleaned) {
        _cleanup_(inhibitor_list_done) InhibitorList l = {};
        _cleanup_free_ char *text = NULL, *why = NULL;
        char name[8];

        /* an escape sequence and a C1 control from a local process do not reach STATUS= */
        ASSERT_OK(inhibitor_list_add(&l, "shutdown", "evil\x1b[2J", "x\xc2\x9by", "block"));
        /* a long reason is cut at a character boundary: 127 bytes, then a two-byte character */
        why = malloc(INHIBITOR_FIELD_MAX + 8);
        ASSERT_TRUE(why != NULL);
        memset(why, 'a', INHIBITOR_FIELD_MAX - 1);
        strcpy(why + INHIBITOR_FIELD_MAX - 1, "\xc3\xa9tail");
        ASSERT_OK(inhibitor_list_add(&l, "shutdown", "long", why, "block"));
        for (unsigned i = 0; i < INHIBITOR_HOLDERS_MAX; i++) {
                snprintf(name, sizeof name, "h%u", i);
                ASSERT_OK(inhibitor_list_add(&l, "shutdown", name, "r", "block"));
        }
        ASSERT_OK(inhibitor_list_finish(&l, &text));
        ASSERT_TRUE(startswith(text, "evil [2J (x  y), long (aaa"));
        ASSERT_TRUE(utf8_is_valid(text));
        ASSERT_TRUE(strstr(text, "\xc3") == NULL);
        ASSERT_TRUE(endswith(text, ", and 2 more"));
}

int main(void) {
        RUN(only_block_inhibitors_of_shutdown_count);
        RUN(holders_are_cut_and_cleaned);
        return 0;
}
