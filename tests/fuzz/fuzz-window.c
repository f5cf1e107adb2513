/* SPDX-License-Identifier: Apache-2.0 */
/* Maintenance window specs (window_new) and their arithmetic. Input: 8 bytes of a moment, then
 * "DAYS\nSTART\nEND\nZONE". Invariants for what parses: the next opening is not before the moment
 * asked about, lies inside the window, is the moment itself when that is inside, and the instant
 * just before it is outside (it is the first); a window is empty exactly when it never opens; the
 * description exists. Errors name the field. */
#include <inttypes.h>
#include <string.h>

#include "fuzz-util.h"
#include "string-util.h"
#include "window.h"

/* 1970 .. 2200: the range of time_t where every zone's rules are defined. */
#define MOMENT_MAX ((usec_t) 7258118400ULL * USEC_PER_SEC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(window_freep) Window *w = NULL;
        _cleanup_free_ char *error = NULL, *describe = NULL;
        uint64_t raw = 0;
        usec_t t, next;
        char **parts;
        int r;

        if (size < 8 || size > 4096)
                return 0;
        memcpy(&raw, data, 8);
        t = raw % MOMENT_MAX;
        parts = fuzz_split(data + 8, size - 8, '\n', 4);

        r = window_new(&w, parts[0], parts[1], parts[2], parts[3], &error);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EINVAL && error &&
                            (startswith(error, "Days=") || startswith(error, "StartTime=") ||
                             startswith(error, "EndTime=") || startswith(error, "TimeZone="))));
                goto finish;
        }

        describe = window_describe(w);
        fuzz_assert(describe);

        next = window_next_open(w, t);
        if (next == USEC_INFINITY) {
                fuzz_assert(!window_contains(w, t));
                fuzz_assert(startswith(describe, "never"));
                goto finish;
        }
        fuzz_assert(next >= t);
        if (!window_contains(w, next)) {
                fprintf(stderr, "%s: next opening after %" PRIu64 " is %" PRIu64 ", outside\n", describe, t, next);
                abort();
        }
        if (window_contains(w, t))
                fuzz_assert(next == t);
        else if (window_contains(w, next - 1)) {
                fprintf(stderr, "%s: %" PRIu64 " is inside, before the next opening %" PRIu64 "\n",
                        describe, next - 1, next);
                abort();
        }
finish:
        fuzz_parts_free(parts, 4);
        return 0;
}
