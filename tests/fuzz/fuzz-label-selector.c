/* SPDX-License-Identifier: Apache-2.0 */
/* Label selectors (label_selector_parse/matches). Input: "SELECTOR\nLABELS" where LABELS is a JSON
 * object (metadata.labels). Invariant: a selector is the AND of its comma-separated requirements:
 * each requirement parses on its own, and the selector matches exactly when all of them do. */
#include <string.h>

#include "fuzz-util.h"
#include "json-util.h"
#include "label-selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(label_selector_freep) LabelSelector *s = NULL;
        _cleanup_json_ json_object *labels = NULL;
        char **parts;
        bool whole, all = true;
        size_t start = 0, depth = 0, n;

        if (size > 16U * 1024U)
                return 0;
        parts = fuzz_split(data, size, '\n', 2);

        if (json_parse(parts[1], strlen(parts[1]), &labels) >= 0 && !json_object_is_type(labels, json_type_object)) {
                json_object_put(labels);
                labels = NULL;
        }

        if (label_selector_parse(parts[0], &s) < 0)
                goto finish;
        whole = label_selector_matches(s, labels);
        fuzz_assert(whole == label_selector_matches(s, labels));

        n = strlen(parts[0]);
        for (size_t i = 0; i <= n; i++) {
                char c = parts[0][i];

                if (c == '(')
                        depth++;
                else if (c == ')' && depth > 0)
                        depth--;
                else if ((c == ',' && depth == 0) || c == 0) {
                        _cleanup_(label_selector_freep) LabelSelector *one = NULL;
                        _cleanup_free_ char *req = strndup(parts[0] + start, i - start);

                        fuzz_assert(req);
                        if (label_selector_parse(req, &one) < 0) {
                                fprintf(stderr, "selector '%s' parses but its part '%s' does not\n", parts[0], req);
                                abort();
                        }
                        all = all && label_selector_matches(one, labels);
                        start = i + 1;
                }
        }
        if (whole != all) {
                fprintf(stderr, "selector '%s' matches=%d, its parts together %d\n", parts[0], whole, all);
                abort();
        }
finish:
        fuzz_parts_free(parts, 2);
        return 0;
}
