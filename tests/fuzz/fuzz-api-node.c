/* SPDX-License-Identifier: Apache-2.0 */
/* Node objects as the daemon reads them (GET, watch, list): readiness, the kubelet's return after a
 * reboot, the kernel version, taints, an expired lock holder's idleness, and the published status
 * annotation. Input: 8 bytes of a boot time, then a Node in JSON. Invariants: a kubelet that is back
 * reports Ready; a kernel version is printable and short; adding a taint yields it once, removing
 * it leaves none, and other taints are kept; an idle holder is Ready; a status annotation that
 * parses describes a state whose status, formatted again, parses. */
#include <string.h>

#include "fuzz-util.h"
#include "json-util.h"
#include "lock.h"
#include "node.h"
#include "published-status.h"

#define TAINT "nodereboot.io/rebooting"

static size_t count_key(json_object *taints, const char *key, size_t *ret_total) {
        size_t n = 0, total = json_object_is_type(taints, json_type_array) ? json_object_array_length(taints) : 0;

        for (size_t i = 0; i < total; i++)
                if (streq_ptr(json_get_string(json_object_array_get_idx(taints, i), "key"), key))
                        n++;
        *ret_total = total;
        return n;
}

static void check_taints(json_object *node) {
        _cleanup_json_ json_object *added = NULL, *removed = NULL;
        json_object *spec = json_get_member(node, "spec");
        json_object *before = spec ? json_get_member(spec, "taints") : NULL;
        size_t total_before, ours_before, total, ours;
        int r;

        ours_before = count_key(before, TAINT, &total_before);

        r = node_taints_update(node, TAINT, true, &added);
        fuzz_assert(r >= 0 || r == -ENOMEM || r == -EBADMSG);
        if (r > 0) {
                ours = count_key(added, TAINT, &total);
                fuzz_assert(ours == 1 && total == total_before - ours_before + 1);
        } else if (r == 0)
                fuzz_assert(ours_before == 1 && !added);

        r = node_taints_update(node, TAINT, false, &removed);
        fuzz_assert(r >= 0 || r == -ENOMEM || r == -EBADMSG);
        if (r > 0) {
                ours = count_key(removed, TAINT, &total);
                fuzz_assert(ours == 0 && total == total_before - ours_before);
        } else if (r == 0)
                fuzz_assert(ours_before == 0 && !removed);
}

static void check_status(json_object *node) {
        const char *text;
        json_object *annotations = json_get_member(json_get_member(node, "metadata"), "annotations");
        PublishedStatus a = {}, b = {};
        RebootState s;
        _cleanup_free_ char *again = NULL;

        text = json_object_get_string(json_get_member(annotations, PUBLISHED_STATUS_ANNOTATION));
        if (!text || published_status_parse(text, &a) < 0)
                return;
        /* Rebuild the state it describes, format it, and read that back. */
        reboot_state_init(&s);
        s.phase = a.state ? reboot_phase_from_string(a.state) : REBOOT_PHASE_IDLE;
        if (s.phase >= 0) {
                s.phase_since = a.since;
                s.reason = a.reason;
                s.lease = a.slot;
                s.stats.last_reboot = a.last_reboot;
                s.kernel_before = a.kernel_before;
                s.kernel_after = a.kernel_after;
                again = published_status_format(&s, a.lock ?: "nodereboot", a.blocked, a.boot_id);
                if (again) {
                        fuzz_assert(published_status_parse(again, &b) >= 0);
                        fuzz_assert(streq_ptr(a.lock ?: "nodereboot", b.lock) && b.state);
                        published_status_done(&b);
                }
        }
        published_status_done(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ json_object *node = NULL;
        _cleanup_free_ char *why = NULL;
        const char *reason = NULL, *kernel, *boot_id;
        uint64_t raw;
        usec_t boot_time;

        if (size < 8 || size > 512U * 1024U)
                return 0;
        memcpy(&raw, data, 8);
        boot_time = raw % ((usec_t) 4102444800ULL * USEC_PER_SEC);
        if (json_parse((const char *) data + 8, size - 8, &node) < 0)
                return 0;

        boot_id = json_get_string(node, "status.nodeInfo.bootID");
        if (node_kubelet_is_back(node, boot_id ?: "0123456789abcdef0123456789abcdef", boot_time, &reason))
                fuzz_assert(node_is_ready(node));
        else
                fuzz_assert(reason && reason[0]);
        (void) node_is_unschedulable(node);

        kernel = node_kernel_version(node);
        if (kernel) {
                fuzz_assert(strlen(kernel) <= 128);
                for (const char *p = kernel; *p; p++)
                        fuzz_assert(*p >= 0x20 && *p < 0x7f);
        }
        if (lock_holder_is_idle(node, &why))
                fuzz_assert(node_is_ready(node) && !why);
        check_taints(node);
        check_status(node);
        return 0;
}
