/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes label selectors in their string form ("app=web,tier!=db", "env in (a,b)", "!canary",
 * "release", "gen>3"), parsed once and matched against an object's metadata.labels, with the API
 * server's semantics (k8s.io/apimachinery/pkg/labels). Pure, no logging. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "macro.h"

typedef struct LabelSelector LabelSelector;

/* NULL or "" selects everything. -EINVAL on a syntax error or an invalid key or value,
 * -ENOMEM on allocation failure. */
int label_selector_parse(const char *s, LabelSelector **ret);
LabelSelector *label_selector_free(LabelSelector *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(LabelSelector *, label_selector_free);

/* labels: a JSON object of string values (metadata.labels), or NULL for none. A NULL selector
 * matches everything. */
bool label_selector_matches(const LabelSelector *s, json_object *labels);
