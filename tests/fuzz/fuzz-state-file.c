/* SPDX-License-Identifier: Apache-2.0 */
/* The state file's JSON (state_from_json): whatever it accepts is written back (state_to_json) to a
 * text that reads back to the same state, and that text is a fixed point; whatever it refuses
 * comes with a message naming what is wrong (a newer version is told apart). */
#include <string.h>

#include "fuzz-util.h"
#include "state-file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *error = NULL, *text = NULL, *again = NULL;
        RebootState s, t;
        int r;

        if (size > 256U * 1024U)
                return 0;       /* over the loader's cap: refused before parsing */

        reboot_state_init(&s);
        reboot_state_init(&t);

        r = state_from_json((const char *) data, size, &s, &error);
        if (r < 0) {
                /* -EPROTONOSUPPORT: a newer version, left alone for the newer daemon */
                fuzz_assert(r == -EBADMSG || r == -ENOMEM || r == -EPROTONOSUPPORT);
                fuzz_assert(r != -EBADMSG || (error && error[0]));
                goto finish;
        }

        r = state_to_json(&s, &text);
        fuzz_assert(r >= 0 || r == -ENOMEM);
        if (r < 0)
                goto finish;

        free(error);
        error = NULL;
        r = state_from_json(text, strlen(text), &t, &error);
        if (r < 0 && r != -ENOMEM) {
                fprintf(stderr, "written state does not read back (%s):\n%s\n", error ?: "?", text);
                abort();
        }
        if (r < 0)
                goto finish;
        fuzz_assert(state_to_json(&t, &again) >= 0);
        if (!streq(text, again)) {
                fprintf(stderr, "not a fixed point:\n%s\n%s\n", text, again);
                abort();
        }
        fuzz_assert(s.phase == t.phase && s.cordoned == t.cordoned && s.stats.reboots == t.stats.reboots &&
                    streq(s.boot_id, t.boot_id) && streq_ptr(s.lease, t.lease) && streq_ptr(s.reason, t.reason));

finish:
        reboot_state_done(&s);
        reboot_state_done(&t);
        return 0;
}
