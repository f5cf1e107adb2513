/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "macro.h"
#include "regex-util.h"
#include "tests.h"

static void check_ok(const char *pattern, const char *matching, const char *other) {
        regex_t re;

        ASSERT_OK(regex_compile(&re, pattern, REG_NOSUB));
        ASSERT_EQ(regexec(&re, matching, 0, NULL, 0), 0);
        ASSERT_EQ(regexec(&re, other, 0, NULL, 0), REG_NOMATCH);
        regfree(&re);
}

TEST(accepts_what_operators_write) {
        check_ok("^(Watchdog|InfoInhibitor)$", "Watchdog", "NodeDown");
        check_ok("^Reboot is required", "Reboot is required to apply", "No reboot");
        check_ok("a{2,3}b", "aab", "ab");
        check_ok("[*+?]+x", "*+x", "x");          /* inside brackets they are characters */
        check_ok("\\++", "++", "x");              /* an escaped '+' repeated once */
        check_ok("[]+]+", "]+", "x");
        check_ok("[[:digit:]]+", "42", "x");
        check_ok("(a+)+b", "aab", "b");           /* a group repeated: defined by POSIX */
        check_ok("^a+?b", "aab", "c");            /* PCRE's lazy form: (a+)? to POSIX, and cheap */
        check_ok("x{1,255}y", "xxy", "y");
        check_ok("(a{1,32}){1,32}$", "aaa", "b");
        check_ok("[a{]{2}", "a{", "a");           /* '{' in brackets is a character */
        check_ok("^a{,2}$", "aa", "aaa");         /* "{,m}" is "{0,m}" to glibc */
}

TEST(refuses_stacked_repetitions_and_long_patterns) {
        /* Found by fuzz-prometheus-alerts: 3.5 GiB for a 70-byte pattern in glibc's regcomp. */
        char long_pattern[REGEX_PATTERN_MAX + 2];
        regex_t re;

        ASSERT_ERROR(regex_compile(&re, "N+++++++++++++++++++++++++++++++++++ode.*", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "a++++", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "a*+*+", 0), E2BIG);
        /* Found by review, measured with glibc 2.36: 3.9 GiB, over 1.9 GiB, 1.1 GiB, 800 MiB. */
        ASSERT_ERROR(regex_compile(&re, "a{1,32767}", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "a{,32767}", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "(a{1,1000}){1,1000}", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "((a{1,100}){1,100}){1,100}", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "(.{1,255}){1,100}", 0), E2BIG);
        memset(long_pattern, 'a', sizeof long_pattern - 1);
        long_pattern[sizeof long_pattern - 1] = 0;
        ASSERT_ERROR(regex_compile(&re, long_pattern, 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "(unclosed", 0), EINVAL);
}

int main(void) {
        RUN(accepts_what_operators_write);
        RUN(refuses_stacked_repetitions_and_long_patterns);
        return 0;
}
