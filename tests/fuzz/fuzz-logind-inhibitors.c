/* SPDX-License-Identifier: Apache-2.0 */
/* logind's ListInhibitors answer as the daemon turns it into a line for STATUS= (inhibitors.c):
 * the what/who/why/mode strings come from any local process that took an inhibitor. Input:
 * records of four NUL-separated strings (what, who, why, mode), one record a line. Invariants: the
 * line exists exactly when a block inhibitor of shutdown was added, is printable (no control
 * characters, valid UTF-8 when the fields were), names at most INHIBITOR_HOLDERS_MAX holders with
 * each field cut short, and counts the rest. */
#include <string.h>

#include "fuzz-util.h"
#include "inhibitors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(inhibitor_list_done) InhibitorList list = {};
        _cleanup_free_ char *text = NULL;
        size_t blocking = 0, pos = 0;
        bool utf8 = true;

        if (size > 64U * 1024U)
                return 0;

        while (pos < size) {
                const uint8_t *nl = memchr(data + pos, '\n', size - pos);
                size_t len = nl ? (size_t) (nl - data - pos) : size - pos;
                char **f = fuzz_split(data + pos, len, 0, 4);

                /* what comes first: let the fuzzer pick the usual ones by a leading digit */
                if (streq(f[0], "1")) {
                        free(f[0]);
                        f[0] = strdup("shutdown:sleep");
                        fuzz_assert(f[0]);
                }
                if (streq_ptr(f[3], "block") && inhibitor_what_contains(f[0], "shutdown")) {
                        blocking++;
                        utf8 = utf8 && utf8_is_valid(f[1]) && utf8_is_valid(f[2]);
                }
                fuzz_assert(inhibitor_list_add(&list, f[0], f[1], f[2], f[3]) >= 0);
                fuzz_parts_free(f, 4);
                pos += len + 1;
        }

        fuzz_assert(inhibitor_list_finish(&list, &text) >= 0);
        fuzz_assert((text != NULL) == (blocking > 0));
        if (!text)
                return 0;
        fuzz_assert_no_control(text);
        fuzz_assert(strlen(text) <= MIN(blocking, (size_t) INHIBITOR_HOLDERS_MAX) *
                    (2 * INHIBITOR_FIELD_MAX + 6) + 64);
        /* valid UTF-8 in, valid UTF-8 out (cut at a character boundary): PID 1 wants it so */
        if (utf8)
                fuzz_assert(utf8_is_valid(text));
        if (blocking > INHIBITOR_HOLDERS_MAX)
                fuzz_assert(endswith(text, " more"));
        return 0;
}
