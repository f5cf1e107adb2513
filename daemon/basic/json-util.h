/* SPDX-License-Identifier: Apache-2.0 */
/* json-c accessors by dotted path ("metadata.resourceVersion"), tolerant of missing members and
 * wrong types (they read as absent). Pure, no logging. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "time-util.h"

static inline json_object *json_object_put_and_null(json_object *o) {
        json_object_put(o);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put_and_null);
#define _cleanup_json_ _cleanup_(json_object_put_and_nullp)

/* The member at a dotted path, or NULL. Keys containing dots cannot be reached this way: use
 * json_get_member() for annotation keys. */
json_object *json_get(json_object *o, const char *path);
/* Adds v (owned: freed on failure; NULL, a failed allocation, gives -ENOMEM) under key. */
int json_set(json_object *o, const char *key, json_object *v);
/* Adds t as an RFC 3339 time with microseconds (a Kubernetes MicroTime). */
int json_set_time(json_object *o, const char *key, usec_t t);
json_object *json_get_member(json_object *o, const char *key);
const char *json_get_string(json_object *o, const char *path);
/* Returns false when absent or not an integer. */
bool json_get_int64(json_object *o, const char *path, int64_t *ret);
/* Absent reads as def. */
bool json_get_bool(json_object *o, const char *path, bool def);
size_t json_array_length(json_object *o);

/* Parses text of a known length; -EBADMSG on malformed JSON. */
int json_parse(const char *text, size_t size, json_object **ret);
/* Same, and on -EBADMSG says why and where in *ret_error ("unexpected end of data at byte 12"). */
int json_parse_with_error(const char *text, size_t size, json_object **ret, char **ret_error);
