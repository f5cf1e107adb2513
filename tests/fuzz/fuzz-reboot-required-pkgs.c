/* SPDX-License-Identifier: Apache-2.0 */
/* /var/run/reboot-required.pkgs, written by packages' postinst scripts (sentinel_read_reason).
 * Invariants: the reason is printable ASCII, at most SENTINEL_REASON_MAX bytes (plus the ", and N
 * more" tail), and every name in it is a valid package name that the file holds. */
#include <string.h>

#include "fuzz-util.h"
#include "sentinel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *reason = NULL, *copy = NULL, *text = NULL, *sentinel = NULL;
        unsigned invalid = 0, names = 0;
        const char *path;
        int r;

        if (size > 128U * 1024U)
                return 0;
        path = fuzz_write_input("reboot-required.pkgs", data, size);
        /* the sentinel's path: the reason is read from <path>.pkgs */
        sentinel = strndup(path, strlen(path) - strlen(".pkgs"));
        fuzz_assert(sentinel);
        r = sentinel_read_reason(sentinel, &reason, &invalid);
        fuzz_assert(r >= 0 || r == -ENOMEM);
        if (r < 0 || !reason)
                return 0;

        fuzz_assert(strlen(reason) <= SENTINEL_REASON_MAX + 32);
        for (const char *p = reason; *p; p++)
                fuzz_assert(*p >= 0x20 && *p < 0x7f);

        /* Each name is on a line of its own in the (first 64 KiB of the) file, and comes once. */
        text = fuzz_string(data, MIN(size, (size_t) 64 * 1024));
        copy = strdup(reason);
        fuzz_assert(copy);
        /* the ", and N more" tail */
        for (char *p = strstr(copy, ", and "), *last = NULL; ; p = strstr(p + 1, ", and ")) {
                if (p)
                        last = p;
                else {
                        unsigned long n;
                        char *end;

                        if (last && (n = strtoul(last + 6, &end, 10)) > 0 && streq(end, " more"))
                                *last = 0;
                        break;
                }
        }
        for (char *state = NULL, *name = strtok_r(copy, ", ", &state); name; name = strtok_r(NULL, ", ", &state)) {
                fuzz_assert(sentinel_package_name_is_valid(name));
                names++;
                if (text)       /* its line may carry white space around it */
                        fuzz_assert(strstr(text, name));
        }
        fuzz_assert(names > 0 && names <= 50);
        return 0;
}
