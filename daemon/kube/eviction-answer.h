/* SPDX-License-Identifier: Apache-2.0 */
/* What the API server's answer to an eviction means, as kube-apiserver 1.28's eviction subresource
 * (pkg/registry/core/pod/storage/eviction.go) words it: evicted, gone, blocked by a
 * PodDisruptionBudget (and which), throttled, refused. Pure, no logging; the drain acts on it. */
#pragma once

#include "kube-client.h"

typedef enum EvictionAnswer {
        EVICTION_ANSWER_EVICTED,                /* 201/200: the pod is being deleted */
        EVICTION_ANSWER_VERSION_UNSUPPORTED,    /* the server knows no such Eviction version */
        EVICTION_ANSWER_PDB_BUDGET,             /* 429 naming a budget with no disruption left */
        EVICTION_ANSWER_THROTTLED,              /* 429 without a budget: priority and fairness */
        EVICTION_ANSWER_GONE,                   /* 404: the pod is gone */
        EVICTION_ANSWER_REPLACED,               /* 409 on our UID precondition: the pod we listed is gone */
        EVICTION_ANSWER_CONFLICT,               /* other 409: read the pod again and retry */
        EVICTION_ANSWER_PDB_FORBIDS,            /* 403 for the budget's state (negative, too many) */
        EVICTION_ANSWER_FORBIDDEN,              /* 401/403: we may not evict (RBAC) */
        EVICTION_ANSWER_TWO_PDBS,               /* 500: more than one budget selects the pod */
        EVICTION_ANSWER_RETRY,                  /* anything else: retry later */
        _EVICTION_ANSWER_MAX,
        _EVICTION_ANSWER_INVALID = -EINVAL,
} EvictionAnswer;

const char *eviction_answer_to_string(EvictionAnswer a);

#define EVICTION_WHY_TWO_PDBS \
        "more than one PodDisruptionBudget selects the pod, which evictions do not support"

typedef struct EvictionVerdict {
        EvictionAnswer answer;
        char *pdb;              /* PDB_BUDGET, PDB_FORBIDS: the budget's name, when the server named it */
        char *why;              /* PDB_FORBIDS, TWO_PDBS: the reason, for operators */
        char *message;          /* the server's own words (Status message or a cause's), when any */
} EvictionVerdict;

void eviction_verdict_done(EvictionVerdict *v);

/* error and response as the client reported the call (error >= 0: success); pod: the pod's name
 * (a UID conflict must name it). -ENOMEM when the server's message cannot be copied (never for an
 * eviction that happened); a budget's name that cannot be copied is left out. */
int eviction_verdict_from_response(int error, const KubeResponse *response, const char *pod,
                                   EvictionVerdict *ret);
