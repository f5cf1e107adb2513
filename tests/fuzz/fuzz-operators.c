/* SPDX-License-Identifier: Apache-2.0 */
/* What operators write for the daemons to read: the pause ConfigMap (its entries, JSON or plain
 * text), the request file of noderebootctl request, and the published status annotation. Input: a
 * selector byte, then the text (or, for the ConfigMap, its JSON). Invariants: what parses formats
 * back (pause_entry_format, reboot_request_format) to text that parses to the same values; a
 * ConfigMap's verdict for a node counts its node keys and sees the node's own key; texts kept for
 * display hold no control character a terminal acts on. */
#include <string.h>

#include "fuzz-util.h"
#include "json-util.h"
#include "pause.h"
#include "published-status.h"
#include "reboot-request.h"

#define FOREACH_ARRAY_STRING(...)                                                       \
        do {                                                                            \
                const char *_v[] = { __VA_ARGS__ };                                     \
                for (size_t _i = 0; _i < ELEMENTSOF(_v); _i++)                          \
                        fuzz_assert_no_control(_v[_i]);                                 \
        } while (0)

static void fuzz_pause_entry(const char *text) {
        PauseEntry a = {}, b = {};
        _cleanup_free_ char *again = NULL;

        if (pause_entry_parse(text, &a) < 0)
                return;
        fuzz_assert(a.set);
        fuzz_assert_no_control(a.reason);
        fuzz_assert_no_control(a.by);
        again = pause_entry_format(a.reason, a.by, a.since);
        fuzz_assert(again);
        fuzz_assert(pause_entry_parse(again, &b) >= 0);
        /* times are written to the second */
        fuzz_assert(streq_ptr(a.reason, b.reason) && streq_ptr(a.by, b.by) &&
                    a.since / USEC_PER_SEC == b.since / USEC_PER_SEC);
        pause_entry_done(&a);
        pause_entry_done(&b);
}

static void fuzz_configmap(const char *text) {
        _cleanup_json_ json_object *cm = NULL;
        _cleanup_free_ char *describe = NULL;
        PauseState s = {};
        json_object *d;
        unsigned keys = 0;

        if (json_parse(text, strlen(text), &cm) < 0 || pause_state_from_configmap(cm, "node-a", &s) < 0)
                return;
        d = json_get_member(cm, "data");
        if (json_object_is_type(d, json_type_object)) {
                json_object_object_foreach(d, k, v) {
                        (void) v;
                        if (startswith(k, "node."))
                                keys++;
                }
        }
        fuzz_assert(s.nodes_paused <= keys);
        if (s.node.set) {
                fuzz_assert(json_get_member(d, "node.node-a"));
                fuzz_assert(s.nodes_paused >= 1);
        }
        describe = pause_describe(&s, "nodereboot");
        if (pause_state_holds(&s))
                fuzz_assert(describe);
        pause_state_done(&s);
}

static void fuzz_request(const char *text) {
        _cleanup_(reboot_request_done) RebootRequest a = {}, b = {};
        _cleanup_free_ char *error = NULL, *again = NULL;
        int r;

        r = reboot_request_parse(text, &a, &error);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && error && error[0]));
                return;
        }
        fuzz_assert_no_control(a.reason);
        again = reboot_request_format(&a);
        fuzz_assert(again);
        fuzz_assert(reboot_request_parse(again, &b, NULL) >= 0);
        fuzz_assert(streq_ptr(a.reason, b.reason) && a.ignore_window == b.ignore_window &&
                    streq(a.boot_id, b.boot_id) && a.requested_at / USEC_PER_SEC == b.requested_at / USEC_PER_SEC);
}

static void fuzz_status(const char *text) {
        PublishedStatus p = {};

        if (published_status_parse(text, &p) < 0)
                return;
        FOREACH_ARRAY_STRING(p.lock, p.state, p.reason, p.blocked, p.slot, p.result, p.kernel_before,
                             p.kernel_after, p.boot_id);
        published_status_done(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;

        if (size < 1 || size > 64U * 1024U)
                return 0;
        text = fuzz_string(data + 1, size - 1);
        if (!text)
                return 0;
        switch (data[0] % 4) {
        case 0: fuzz_pause_entry(text); break;
        case 1: fuzz_configmap(text); break;
        case 2: fuzz_request(text); break;
        case 3: fuzz_status(text); break;
        }
        return 0;
}
