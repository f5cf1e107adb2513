/* SPDX-License-Identifier: Apache-2.0 */
/* The answers of kube-apiserver 1.28.4 to evictions, as captured in
 * ../shared/reference/kube-apiserver-1.28/ (bodies verbatim), and what each means. */
#include <string.h>

#include "eviction-answer.h"
#include "json-util.h"
#include "kube-client-internal.h"
#include "macro.h"
#include "tests.h"

static EvictionAnswer check(long status, const char *body, const char *pod, EvictionVerdict *ret) {
        _cleanup_json_ json_object *o = NULL;
        KubeResponse response = { .status = status };
        int error = kube_errno_from_result(CURLE_OK, status, 0);

        if (body)
                ASSERT_OK(json_parse(body, strlen(body), &o));
        response.body = o;
        ASSERT_OK(eviction_verdict_from_response(error, &response, pod, ret));
        ASSERT_TRUE(eviction_answer_to_string(ret->answer) != NULL);
        return ret->answer;
}

TEST(captured_answers) {
        _cleanup_(eviction_verdict_done) EvictionVerdict a = {}, b = {}, c = {}, d = {}, e = {}, f = {}, g = {};

        ASSERT_EQ(check(201, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\"}",
                        "ev01", &a), EVICTION_ANSWER_EVICTED);
        ASSERT_TRUE(a.message == NULL);

        /* 04: disruptionsAllowed 0, the budget named in a cause */
        ASSERT_EQ(check(429, "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", "
                        "\"message\": \"Cannot evict pod as it would violate the pod's disruption budget.\", "
                        "\"reason\": \"TooManyRequests\", \"details\": {\"causes\": [{\"reason\": \"DisruptionBudget\", "
                        "\"message\": \"The disruption budget pdb04 needs 1 healthy pods and has 1 currently\"}]}, "
                        "\"code\": 429}", "ev04", &b), EVICTION_ANSWER_PDB_BUDGET);
        ASSERT_STREQ(b.pdb, "pdb04");
        ASSERT_STREQ(b.message, "The disruption budget pdb04 needs 1 healthy pods and has 1 currently");

        /* 03: our UID precondition failed: the pod we listed is gone */
        ASSERT_EQ(check(409, "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", "
                        "\"message\": \"Operation cannot be fulfilled on Pod \\\"ev03\\\": the UID in the precondition "
                        "(00000000-0000-0000-0000-000000000000) does not match the UID in record "
                        "(aa52df4f-411e-4804-88f2-24949394f376). The object might have been deleted and then recreated\", "
                        "\"reason\": \"Conflict\", \"details\": {\"name\": \"ev03\", \"kind\": \"Pod\"}, \"code\": 409}",
                        "ev03", &c), EVICTION_ANSWER_REPLACED);

        /* 06: two budgets select the pod */
        ASSERT_EQ(check(500, "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", "
                        "\"message\": \"This pod has more than one PodDisruptionBudget, which the eviction subresource "
                        "does not support.\", \"code\": 500}", "ev06", &d), EVICTION_ANSWER_TWO_PDBS);
        ASSERT_STREQ(d.why, EVICTION_WHY_TWO_PDBS);

        /* 09: RBAC */
        ASSERT_EQ(check(403, "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", "
                        "\"message\": \"pods \\\"ev09\\\" is forbidden: User \\\"kas-user\\\" cannot create resource "
                        "\\\"pods/eviction\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\", \"reason\": "
                        "\"Forbidden\", \"details\": {\"name\": \"ev09\", \"kind\": \"pods\"}, \"code\": 403}",
                        "ev09", &e), EVICTION_ANSWER_FORBIDDEN);

        /* checkAndDecrement's 403 for a negative budget (eviction.go) */
        ASSERT_EQ(check(403, "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"poddisruptionbudget.policy "
                        "\\\"web-pdb\\\" is forbidden: pdb disruptions allowed is negative\",\"reason\":\"Forbidden\","
                        "\"details\":{\"name\":\"web-pdb\",\"group\":\"policy\",\"kind\":\"poddisruptionbudget\"},"
                        "\"code\":403}", "web-1", &f), EVICTION_ANSWER_PDB_FORBIDS);
        ASSERT_STREQ(f.pdb, "web-pdb");
        ASSERT_STREQ(f.why, "pdb disruptions allowed is negative");

        /* API Priority and Fairness: 429, text body, no budget */
        ASSERT_EQ(check(429, NULL, "web-1", &g), EVICTION_ANSWER_THROTTLED);
}

TEST(gone_conflict_unsupported_retry) {
        _cleanup_(eviction_verdict_done) EvictionVerdict a = {}, b = {}, c = {}, d = {};

        ASSERT_EQ(check(404, "{\"kind\":\"Status\",\"message\":\"pods \\\"web-1\\\" not found\",\"reason\":\"NotFound\","
                        "\"code\":404}", "web-1", &a), EVICTION_ANSWER_GONE);
        /* a 404 for the path itself: an old server without policy/v1 */
        ASSERT_EQ(check(404, "{\"kind\":\"Status\",\"message\":\"the server could not find the requested resource\","
                        "\"reason\":\"NotFound\",\"code\":404}", "web-1", &b), EVICTION_ANSWER_VERSION_UNSUPPORTED);
        /* a 409 for the budget's status update, not the pod */
        ASSERT_EQ(check(409, "{\"kind\":\"Status\",\"message\":\"Operation cannot be fulfilled on "
                        "poddisruptionbudgets.policy \\\"web-pdb\\\": the object has been modified\",\"reason\":\"Conflict\","
                        "\"details\":{\"name\":\"web-pdb\",\"group\":\"policy\",\"kind\":\"poddisruptionbudgets\"},"
                        "\"code\":409}", "web-1", &c), EVICTION_ANSWER_CONFLICT);
        ASSERT_EQ(check(503, NULL, "web-1", &d), EVICTION_ANSWER_RETRY);
}

int main(void) {
        RUN(captured_answers);
        RUN(gone_conflict_unsupported_retry);
        return 0;
}
