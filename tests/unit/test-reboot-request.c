/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootctl request's file: written and read back, and every field checked with a message
 * that names it. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "reboot-request.h"
#include "string-util.h"
#include "tests.h"

#define BOOT "0123456789abcdef0123456789abcdef"

static void test_round_trip(void) {
        char dir[] = "/tmp/test-reboot-request-XXXXXX";
        RebootRequest r = { .reason = (char *) "firmware update", .ignore_window = true,
                            .requested_at = 1764936000ULL * USEC_PER_SEC }, back = {};
        _cleanup_free_ char *error = NULL;

        strcpy(r.boot_id, BOOT);
        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_ERROR(reboot_request_read(dir, &back, &error), ENOENT);
        ASSERT_OK(reboot_request_write(dir, &r));
        {
                /* root writes it, the daemon's own user reads it */
                _cleanup_free_ char *path = reboot_request_path(dir);
                struct stat st;

                ASSERT_OK(stat(path, &st));
                ASSERT_EQ(st.st_mode & 07777, 0644U);
        }
        ASSERT_OK(reboot_request_read(dir, &back, &error));
        ASSERT_STREQ(back.reason, "firmware update");
        ASSERT_TRUE(back.ignore_window);
        ASSERT_STREQ(back.boot_id, BOOT);
        ASSERT_EQ(back.requested_at, r.requested_at);
        reboot_request_done(&back);
        ASSERT_OK(reboot_request_remove(dir));
        ASSERT_OK(reboot_request_remove(dir));
        ASSERT_OK(rmdir(dir));
}

static void test_bad_fields_are_named(void) {
        static const struct {
                const char *text, *error;
        } cases[] = {
                { "not json", "not JSON" },
                { "[1]", "not a JSON object" },
                { "{\"requested_at\":\"2026-12-05T10:00:00Z\"}", "field boot_id: expected 32 lowercase hex digits" },
                { "{\"boot_id\":\"" BOOT "\"}", "field requested_at: expected an RFC 3339 time" },
                { "{\"boot_id\":\"" BOOT "\",\"requested_at\":\"2026-12-05T10:00:00Z\",\"ignore_window\":\"yes\"}",
                  "field ignore_window: expected true or false" },
                { "{\"boot_id\":\"" BOOT "\",\"requested_at\":\"2026-12-05T10:00:00Z\",\"reason\":\"a\\nb\"}",
                  "field reason: only printable ASCII" },
                { "{\"boot_id\":\"" BOOT "\",\"requested_at\":\"2026-12-05T10:00:00Z\",\"reason\":7}",
                  "field reason: expected a string" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                _cleanup_free_ char *error = NULL;
                RebootRequest r = {};

                ASSERT_ERROR(reboot_request_parse(cases[i].text, &r, &error), EBADMSG);
                ASSERT_TRUE(error && startswith(error, cases[i].error));
        }
}

int main(void) {
        test_round_trip();
        test_bad_fields_are_named();
        return 0;
}
