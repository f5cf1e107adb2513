/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX extended regular expressions from the configuration, compiled with limits: glibc's regcomp
 * copies an interval's operand once per count and a '+' operand twice, so a ten-byte pattern
 * ("a{1,32767}") or nested groups ("((a+)+)+...") can take gigabytes. Pure, no logging. */
#pragma once

#include <regex.h>

#define REGEX_PATTERN_MAX 1024
#define REGEX_INTERVAL_MAX 255          /* per interval: "{2,255}" */

/* Compiles pattern (REG_EXTENDED | flags) when it is at most REGEX_PATTERN_MAX bytes, has no
 * interval count over 255, no more than three repetition operators in a row ("a+?" is fine), and
 * at most 4096 atoms once its intervals and '+' are expanded ("(x{1,100}){1,100}" is not, nor are
 * twelve nested "(...)+"). -E2BIG beyond those limits, -EINVAL for a syntax error, -ENOMEM. */
int regex_compile(regex_t *ret, const char *pattern, int flags);
