/* SPDX-License-Identifier: Apache-2.0 */
/* String helpers: copies, formatted allocation, string vectors, trimming. Pure, no logging. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
char *strjoin_real(const char *first, ...) _sentinel_;
#define strjoin(...) strjoin_real(__VA_ARGS__, NULL)

/* Overwrites s with zeros, then frees it: for secrets. Accepts NULL. */
void erase_and_free(char *s);

bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);
char *strstrip(char *s);                 /* trims whitespace in place, returns the start */

size_t strv_length(char * const *l);
int strv_push(char ***l, char *value);   /* takes ownership of value, even on failure */
int strv_extend(char ***l, const char *value);
bool strv_contains(char * const *l, const char *value);
/* Whether x is one of the strings given: STR_IN_SET(verb, "pause", "resume"). */
#define STR_IN_SET(x, ...) strv_contains((char *const[]) { __VA_ARGS__, NULL }, (x))
/* Splits a command line into words the way systemd's ExecStart= does for the simple cases:
 * whitespace separates, "double" and 'single' quotes group (no escapes inside single quotes),
 * a backslash escapes the next character elsewhere. No variables, globs or redirections: it is
 * never a shell. -EINVAL for an unterminated quote, a trailing backslash, or no word at all. */
int strv_split_command(const char *s, char ***ret);

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
 * what may go into the journal, STATUS= and JSON. */
bool utf8_is_valid(const char *s);

/* Replaces, in place, every control character a terminal could act on with c: ASCII controls
 * (ESC among them) and DEL, and the C1 controls U+0080..U+009F in their UTF-8 form (two bytes,
 * both replaced). Returns s. */
char *string_replace_control_with(char *s, char c);
/* The same with '?': for text from the API that is printed on an operator's terminal. */
static inline char *string_replace_control(char *s) {
        return string_replace_control_with(s, '?');
}

/* Percent-encodes for a URL query value (RFC 3986 unreserved characters stay). */
char *url_escape(const char *s);
