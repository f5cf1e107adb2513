/* SPDX-License-Identifier: Apache-2.0 */
/* Error answers of the API server: the Status objects of evictions (PodDisruptionBudgets, UID
 * conflicts, RBAC, two budgets), of Lease creation (AlreadyExists), of Node reads (NotFound), of
 * Node writes (403/422 refusals), and the Retry-After header. Input: 2 bytes of HTTP status, then
 * "RETRY-AFTER\n" and the body (JSON). Invariants: every answer has exactly one meaning, consistent
 * with the status; a budget's name is a plausible object name; a refusal's text is the Status's
 * message ("refused" without one); a Retry-After delay written back as seconds reads the same. */
#include <inttypes.h>
#include <string.h>

#include "eviction-answer.h"
#include "fuzz-util.h"
#include "json-util.h"
#include "kube-client-internal.h"
#include "lock-internal.h"
#include "node.h"

#define NOW_USEC ((usec_t) 1796000000 * USEC_PER_SEC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ json_object *body = NULL;
        _cleanup_(eviction_verdict_done) EvictionVerdict v = {};
        KubeResponse response = {};
        const char *refusal;
        usec_t delay;
        char **parts;
        int error;

        if (size < 2 || size > 256U * 1024U)
                return 0;
        response.status = 100 + (data[0] | data[1] << 8) % 500;
        parts = fuzz_split(data + 2, size - 2, '\n', 2);
        (void) json_parse(parts[1], strlen(parts[1]), &body);
        response.body = body;

        if (kube_parse_retry_after(parts[0], NOW_USEC, &delay) >= 0 && delay % USEC_PER_SEC == 0) {
                /* seconds written back read as the same delay (dates are seconds too) */
                char seconds[32];
                usec_t again;

                snprintf(seconds, sizeof seconds, "%" PRIu64, delay / USEC_PER_SEC);
                fuzz_assert(kube_parse_retry_after(seconds, NOW_USEC, &again) >= 0 && again == delay);
        }
        error = kube_errno_from_result(CURLE_OK, response.status, 0);
        fuzz_assert(error <= 0);
        fuzz_assert((error == 0) == (response.status >= 200 && response.status < 300));

        fuzz_assert(eviction_verdict_from_response(error, &response, "web-1", &v) >= 0);
        fuzz_assert(eviction_answer_to_string(v.answer));
        switch (v.answer) {
        case EVICTION_ANSWER_EVICTED:
                fuzz_assert(error == 0);
                break;
        case EVICTION_ANSWER_PDB_BUDGET:
        case EVICTION_ANSWER_THROTTLED:
                fuzz_assert(response.status == 429);
                break;
        case EVICTION_ANSWER_GONE:
                fuzz_assert(response.status == 404);
                break;
        case EVICTION_ANSWER_REPLACED:
                fuzz_assert(response.status == 409 && streq_ptr(json_get_string(body, "details.name"), "web-1"));
                break;
        case EVICTION_ANSWER_CONFLICT:
                fuzz_assert(response.status == 409);
                break;
        case EVICTION_ANSWER_PDB_FORBIDS:
                fuzz_assert(response.status == 403 && v.why);
                break;
        case EVICTION_ANSWER_FORBIDDEN:
                fuzz_assert(response.status == 401 || response.status == 403);
                break;
        case EVICTION_ANSWER_TWO_PDBS:
                fuzz_assert(response.status == 500 && v.why);
                break;
        default:
                break;
        }
        if (v.pdb) {
                fuzz_assert(v.pdb[0] && strlen(v.pdb) <= 253);
                fuzz_assert(v.answer == EVICTION_ANSWER_PDB_BUDGET || v.answer == EVICTION_ANSWER_PDB_FORBIDS);
        }

        refusal = node_refusal(&response);
        if (refusal)
                fuzz_assert((response.status == 403 || response.status == 422) &&
                            streq(refusal, json_get_string(body, "message") ?: "refused"));
        else
                fuzz_assert(response.status != 403 && response.status != 422);
        if (lock_status_is_already_exists(body, "nodereboot-0"))
                fuzz_assert(streq_ptr(json_get_string(body, "details.name"), "nodereboot-0"));
        if (lock_status_is_node_not_found(body, "node-a"))
                fuzz_assert(streq_ptr(json_get_string(body, "details.name"), "node-a"));

        fuzz_parts_free(parts, 2);
        return 0;
}
