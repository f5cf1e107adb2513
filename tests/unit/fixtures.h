/* SPDX-License-Identifier: Apache-2.0 */
/* Shorthands for the unit tests that build API objects: a JSON text parsed, a time read. */
#pragma once

#include <string.h>

#include "json-util.h"
#include "tests.h"
#include "time-util.h"

/* A JSON text, asserted to parse; the caller owns the object. */
static inline json_object *J(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

/* An RFC 3339 time, asserted to parse. */
static inline usec_t T(const char *s) {
        usec_t t = 0;

        ASSERT_OK(parse_rfc3339(s, &t));
        return t;
}
