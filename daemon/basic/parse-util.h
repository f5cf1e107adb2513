/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers for single configuration values: booleans and bounded integers. Pure, no logging. */
#pragma once

#include <stdbool.h>

/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int parse_boolean(const char *s);
/* Decimal, no sign, no trailing garbage, no overflow. */
int parse_unsigned(const char *s, unsigned *ret);
int parse_uint64(const char *s, unsigned long long *ret);
