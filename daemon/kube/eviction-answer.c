/* SPDX-License-Identifier: Apache-2.0 */
/* The meaning of an eviction's answer (see eviction-answer.h). The texts matched here are the real
 * server's (captured from kube-apiserver 1.28.4 in tests/integration/apiserver/api.py). */
#include <string.h>

#include "eviction-answer.h"
#include "json-util.h"
#include "macro.h"
#include "string-util.h"

static const char * const eviction_answer_table[_EVICTION_ANSWER_MAX] = {
        [EVICTION_ANSWER_EVICTED] = "evicted",
        [EVICTION_ANSWER_VERSION_UNSUPPORTED] = "version-unsupported",
        [EVICTION_ANSWER_PDB_BUDGET] = "pdb-budget",
        [EVICTION_ANSWER_THROTTLED] = "throttled",
        [EVICTION_ANSWER_GONE] = "gone",
        [EVICTION_ANSWER_REPLACED] = "replaced",
        [EVICTION_ANSWER_CONFLICT] = "conflict",
        [EVICTION_ANSWER_PDB_FORBIDS] = "pdb-forbids",
        [EVICTION_ANSWER_FORBIDDEN] = "forbidden",
        [EVICTION_ANSWER_TWO_PDBS] = "two-pdbs",
        [EVICTION_ANSWER_RETRY] = "retry",
};

const char *eviction_answer_to_string(EvictionAnswer a) {
        return a >= 0 && a < _EVICTION_ANSWER_MAX ? eviction_answer_table[a] : NULL;
}

void eviction_verdict_done(EvictionVerdict *v) {
        if (!v)
                return;
        v->pdb = mfree(v->pdb);
        v->why = mfree(v->why);
        v->message = mfree(v->message);
}

/* "The disruption budget web-pdb needs 2 healthy pods and has 2 currently" (the real server's
 * cause message) -> "web-pdb". */
static char *pdb_name_from_message(const char *m) {
        static const char *const prefixes[] = { "The disruption budget ", "disruption budget " };

        if (!m)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                const char *p = strstr(m, prefixes[i]);
                size_t n;

                if (!p)
                        continue;
                p += strlen(prefixes[i]);
                n = strcspn(p, " \t\n,:;\"");
                if (n > 0 && n <= 253)
                        return strndup(p, n);
        }
        return NULL;
}

/* The PodDisruptionBudget's name and the server's words from a 429 Status. */
static void pdb_from_status(json_object *status, char **ret_name, char **ret_message) {
        json_object *causes = json_get(status, "details.causes");
        const char *message = NULL;
        char *name = NULL;

        for (size_t i = 0; i < json_array_length(causes); i++) {
                json_object *cause = json_object_array_get_idx(causes, i);
                const char *m = json_get_string(cause, "message");

                if (!streq_ptr(json_get_string(cause, "reason"), "DisruptionBudget") || !m)
                        continue;
                message = m;
                name = pdb_name_from_message(m);
                if (name)
                        break;
        }
        if (!message)
                message = json_get_string(status, "message");
        if (!name)
                name = pdb_name_from_message(json_get_string(status, "message"));

        *ret_name = name;
        *ret_message = message ? strdup(message) : NULL;
}

/* The server does not know this Eviction version: an old server (no policy/v1) answers with a 404
 * for the path, or refuses the body's apiVersion. A 404 naming the pod means the pod is gone. */
static bool eviction_version_unsupported(const KubeResponse *response) {
        const char *message = json_get_string(response->body, "message");

        switch (response->status) {
        case 404:
                return message && strstr(message, "the server could not find the requested resource");
        case 400:
        case 415:
                return message && (strstr(message, "policy/v1") || strstr(message, "apiVersion") ||
                                   strstr(message, "no kind"));
        default:
                return false;
        }
}

/* A 409 means the listed pod is gone only when our UID precondition failed. The real server
 * (1.28) says so in these words, with details {"name": "web-a", "kind": "Pod"}:
 *   Operation cannot be fulfilled on Pod "web-a": the UID in the precondition (X) does not match
 *   the UID in record (Y). The object might have been deleted and then recreated
 * Other 409s come while the pod still runs: the eviction's update of the PodDisruptionBudget's
 * status kept conflicting (details name the poddisruptionbudgets), or a resourceVersion
 * precondition the server added itself failed ("the ResourceVersion in the precondition"). */
static bool conflict_is_uid_precondition(json_object *status, const char *name) {
        const char *kind = json_get_string(status, "details.kind"),
                *message = json_get_string(status, "message");

        return (streq_ptr(kind, "Pod") || streq_ptr(kind, "pods")) &&
                isempty(json_get_string(status, "details.group")) &&
                streq_ptr(json_get_string(status, "details.name"), name) &&
                message && strstr(message, "the UID in the precondition");
}

/* A 403 on an eviction is RBAC refusing us, unless the server refused for the state of the pod's
 * PodDisruptionBudget (pkg/registry/core/pod/storage/eviction.go, checkAndDecrement):
 *   poddisruptionbudget.policy "web-pdb" is forbidden: pdb disruptions allowed is negative
 *   poddisruptionbudget.policy "web-pdb" is forbidden: DisruptedPods map too big - too many
 *   evictions not confirmed by PDB controller
 * with details {"name": "web-pdb", "group": "policy", "kind": "poddisruptionbudget"}. RBAC names
 * the pod: pods "web-a" is forbidden: User "x" cannot create resource "pods/eviction" in ...
 * On true, ret_name and ret_why get the budget's name and the server's reason (either may be NULL). */
static bool forbidden_by_pdb(json_object *status, char **ret_name, char **ret_why) {
        static const char infix[] = " is forbidden: ";
        const char *kind = json_get_string(status, "details.kind"),
                *group = json_get_string(status, "details.group"),
                *name = json_get_string(status, "details.name"),
                *message = json_get_string(status, "message"),
                *why;

        if (!kind || !startswith(kind, "poddisruptionbudget") || (group && !streq(group, "policy")))
                return false;

        why = message ? strstr(message, infix) : NULL;
        why = why ? why + strlen(infix) : message;
        *ret_name = isempty(name) ? NULL : strdup(name);
        *ret_why = strdup(isempty(why) ? "its state forbids evictions" : why);
        return true;
}

/* 500 "This pod has more than one PodDisruptionBudget, which the eviction subresource does not
 * support." (no reason field): nothing passes until someone removes a budget. */
static bool refused_for_two_pdbs(const KubeResponse *response) {
        const char *message = json_get_string(response->body, "message");

        return response->status == 500 && message && strstr(message, "more than one PodDisruptionBudget");
}

int eviction_verdict_from_response(int error, const KubeResponse *response, const char *pod,
                                   EvictionVerdict *ret) {
        _cleanup_(eviction_verdict_done) EvictionVerdict v = {};
        const char *message = json_get_string(response->body, "message");

        if (error >= 0)
                v.answer = EVICTION_ANSWER_EVICTED;
        else if (eviction_version_unsupported(response))
                v.answer = EVICTION_ANSWER_VERSION_UNSUPPORTED;
        else if (error == -EBUSY) {
                _cleanup_free_ char *name = NULL, *text = NULL;

                pdb_from_status(response->body, &name, &text);
                v.answer = name || (text && strcasestr(text, "disruption budget")) ?
                        EVICTION_ANSWER_PDB_BUDGET : EVICTION_ANSWER_THROTTLED;
                v.pdb = TAKE_PTR(name);
                v.message = TAKE_PTR(text);
        } else if (error == -ENOENT)
                v.answer = EVICTION_ANSWER_GONE;
        else if (error == -ESTALE)
                v.answer = conflict_is_uid_precondition(response->body, pod) ?
                        EVICTION_ANSWER_REPLACED : EVICTION_ANSWER_CONFLICT;
        else if (error == -EACCES)
                v.answer = response->status == 403 && forbidden_by_pdb(response->body, &v.pdb, &v.why) ?
                        EVICTION_ANSWER_PDB_FORBIDS : EVICTION_ANSWER_FORBIDDEN;
        else if (refused_for_two_pdbs(response)) {
                v.answer = EVICTION_ANSWER_TWO_PDBS;
                v.why = strdup(EVICTION_WHY_TWO_PDBS);
                if (!v.why)
                        return -ENOMEM;
        } else
                v.answer = EVICTION_ANSWER_RETRY;

        /* the server's words explain a refusal; an eviction that happened needs none */
        if (v.answer != EVICTION_ANSWER_EVICTED && !v.message && message) {
                v.message = strdup(message);
                if (!v.message)
                        return -ENOMEM;
        }
        *ret = v;
        v = (EvictionVerdict) {};
        return 0;
}
