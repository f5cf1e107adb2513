/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "regex-util.h"

/* glibc's regcomp copies an interval's operand once per count ("(x){1,100}" is a hundred x), and
 * "x+" is "x" then a copy of it looped ("x x*"), so stacked or nested '+' double it each time:
 * measured, 20 stacked '+' took 700 MiB, "a{1,32767}" 3.9 GiB, "((a{1,100}){1,100}){1,100}"
 * 1.1 GiB, and "((a+)+)+..." doubles with each group. So the pattern's size is estimated the way
 * regcomp grows it: an atom counts 1, a group its content, an interval multiplies its operand by
 * its upper bound, '+' by two ('*' and '?' copy nothing). */
#define REGEX_SIZE_MAX 4096U             /* atoms once intervals are expanded */
#define REGEX_STACKED_MAX 3U             /* "a+?" and "a*?" are fine, "a+++" stays the limit */
#define REGEX_DEPTH_MAX 32U

/* The bound of the interval starting at p ("{n}", "{n,}", "{n,m}", "{,m}"): its largest count, and
 * the end after '}'. Returns false when p does not start an interval (then '{' is a character to glibc). */
static bool parse_interval(const char *p, unsigned long *ret_bound, const char **ret_end) {
        unsigned long lo, hi;
        char *e;

        if (p[0] != '{' || !((p[1] >= '0' && p[1] <= '9') || p[1] == ','))
                return false;
        /* "{,m}" is "{0,m}" to glibc */
        lo = p[1] == ',' ? 0 : strtoul(p + 1, &e, 10);
        if (p[1] == ',')
                e = (char *) p + 1;
        hi = lo;
        if (*e == ',') {
                if (e[1] >= '0' && e[1] <= '9')
                        hi = strtoul(e + 1, &e, 10);
                else {
                        e++;
                        hi = lo + 1;    /* "{n,}": n copies, then a loop */
                }
        }
        if (*e != '}')
                return false;
        *ret_bound = MAX(lo, hi);
        *ret_end = e + 1;
        return true;
}

/* The last atom or group (last, already counted in size) copied to bound copies in all. */
static void repeat_last(unsigned long *size, unsigned long *last, unsigned long bound) {
        if (bound > 1) {
                *size += *last * (bound - 1);
                *last *= bound;
        }
}

/* Whether regcomp would build something far larger than the pattern (see above). Bracket
 * expressions and escaped characters are single atoms. */
static bool pattern_too_costly(const char *p) {
        unsigned long size[REGEX_DEPTH_MAX + 1] = {}, last[REGEX_DEPTH_MAX + 1] = {};
        unsigned depth = 0, stacked = 0;

        while (*p) {
                unsigned long bound;
                const char *end;

                if (*p == '*' || *p == '+' || *p == '?') {
                        if (++stacked > REGEX_STACKED_MAX)
                                return true;
                        if (*p == '+')
                                repeat_last(&size[depth], &last[depth], 2);
                        if (size[depth] > REGEX_SIZE_MAX)
                                return true;
                        p++;
                        continue;
                }
                if (parse_interval(p, &bound, &end)) {
                        if (bound > REGEX_INTERVAL_MAX || ++stacked > REGEX_STACKED_MAX)
                                return true;
                        repeat_last(&size[depth], &last[depth], bound);
                        if (size[depth] > REGEX_SIZE_MAX)
                                return true;
                        p = end;
                        continue;
                }
                stacked = 0;

                if (*p == '(') {
                        if (depth == REGEX_DEPTH_MAX)
                                return true;
                        depth++;
                        size[depth] = last[depth] = 0;
                        p++;
                        continue;
                }
                if (*p == ')' && depth > 0) {
                        unsigned long group = size[depth--];

                        size[depth] += group;
                        last[depth] = group;
                        if (size[depth] > REGEX_SIZE_MAX)
                                return true;
                        p++;
                        continue;
                }
                if (*p == '|') {
                        last[depth] = 0;
                        p++;
                        continue;
                }

                /* an atom: a character, an escaped one, or a bracket expression */
                if (*p == '\\')
                        p += p[1] ? 2 : 1;
                else if (*p == '[') {
                        /* "[]...]" and "[^]...]" hold a literal ']' first */
                        p++;
                        if (*p == '^')
                                p++;
                        if (*p == ']')
                                p++;
                        while (*p && *p != ']') {
                                if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                                        const char *e = strchr(p + 2, p[1]);

                                        p = e && e[1] == ']' ? e + 2 : p + 1;
                                } else
                                        p++;
                        }
                        if (*p)
                                p++;
                } else
                        p++;
                size[depth]++;
                last[depth] = 1;
                if (size[depth] > REGEX_SIZE_MAX)
                        return true;
        }
        return false;
}

int regex_compile(regex_t *ret, const char *pattern, int flags) {
        int r;

        if (!ret || !pattern)
                return -EINVAL;
        if (strlen(pattern) > REGEX_PATTERN_MAX || pattern_too_costly(pattern))
                return -E2BIG;
        r = regcomp(ret, pattern, REG_EXTENDED | flags);
        if (r == REG_ESPACE)
                return -ENOMEM;
        return r == 0 ? 0 : -EINVAL;
}
