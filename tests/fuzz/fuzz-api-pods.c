/* SPDX-License-Identifier: Apache-2.0 */
/* Pod lists as the drain and the recovery gate read them. Input: 8 bytes of a boot time, then
 * "SELECTOR\n" and a PodList (or a bare array of pods) in JSON. Invariants: a pod the selector does
 * not select is skipped; a skipped pod has a reason; a finished pod is skipped by the drain and left
 * out by the gate; the gate's verdict is "ready" exactly when some pod counts and each pod that
 * counts is ready on its own, and otherwise it says why. */
#include <string.h>

#include "drain.h"
#include "fuzz-util.h"
#include "json-util.h"
#include "label-selector.h"
#include "pod-health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(label_selector_freep) LabelSelector *selector = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *message = NULL;
        json_object *items;
        size_t n, counted = 0, ready = 0;
        uint64_t raw;
        usec_t boot_time;
        char **parts;
        int r;

        if (size < 8 || size > 512U * 1024U)
                return 0;
        memcpy(&raw, data, 8);
        boot_time = raw % ((usec_t) 4102444800ULL * USEC_PER_SEC);
        parts = fuzz_split(data + 8, size - 8, '\n', 2);
        if (label_selector_parse(parts[0], &selector) < 0 ||
            json_parse(parts[1], strlen(parts[1]), &o) < 0)
                goto finish;

        items = json_object_is_type(o, json_type_array) ? o : json_get_member(o, "items");
        if (!json_object_is_type(items, json_type_array))
                goto finish;
        n = json_object_array_length(items);

        for (size_t i = 0; i < n; i++) {
                json_object *pod = json_object_array_get_idx(items, i);
                _cleanup_free_ char *why = NULL;
                const char *reason = NULL;
                bool skipped = drain_pod_is_skipped_full(pod, selector, &reason);

                if (skipped)
                        fuzz_assert(reason && reason[0]);
                if (!label_selector_matches(selector, json_get_member(json_get_member(pod, "metadata"), "labels")))
                        fuzz_assert(skipped);
                if (drain_pod_is_skipped(pod, &reason) && !skipped)
                        abort();        /* the selector only adds pods to skip */
                if (pod_health_pod_is_finished(pod)) {
                        fuzz_assert(drain_pod_is_skipped(pod, &reason));
                        continue;
                }
                counted++;
                r = pod_health_check_pod(pod, boot_time, &why);
                fuzz_assert(r >= 0 || r == -ENOMEM);
                if (r > 0)
                        ready++;
                else if (r == 0)
                        fuzz_assert(why && why[0]);
        }

        r = pod_health_summarize(items, boot_time, parts[0], &message);
        fuzz_assert(r >= 0 || r == -ENOMEM);
        if (r >= 0)
                fuzz_assert((r == 1) == (counted > 0 && ready == counted));
        if (r == 0)
                fuzz_assert(message && message[0]);
finish:
        fuzz_parts_free(parts, 2);
        return 0;
}
