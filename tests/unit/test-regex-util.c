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
        check_ok("^(Kube(Node|Pod)[A-Za-z]+|Watchdog)+$", "KubeNodeNotReady", "NodeDown");
        /* twelve nested "(...)+": 2^12 copies of "a", the most allowed */
        check_ok("((((((((((((a)+)+)+)+)+)+)+)+)+)+)+)+", "aa", "b");
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

TEST(refuses_what_nested_groups_multiply) {
        /* Found by review: glibc copies a '+' operand once more ("x+" is "x x*"), so each nested
         * "(...)+" doubles the automaton (measured with glibc 2.36: 10, 12 and 14 levels took 2, 4
         * and 12 MiB; the 24 levels below passed a model that counted only operators in a row). */
        char pattern[REGEX_PATTERN_MAX + 1] = "";
        regex_t re;

        ASSERT_ERROR(regex_compile(&re, "(((((((((((((a)+)+)+)+)+)+)+)+)+)+)+)+)+", 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "((((((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+",
                                   0), E2BIG);
        /* Groups each under the limit add up: "((a{1,255}){1,16})" is 4080 atoms (about 10 MiB in
         * regcomp), fifty of them 200 000 (about 500 MiB). */
        for (unsigned i = 0; i < 50; i++)
                strcat(pattern, "((a{1,255}){1,16})");
        ASSERT_ERROR(regex_compile(&re, pattern, 0), E2BIG);
        ASSERT_ERROR(regex_compile(&re, "((a{1,255}){1,16})((a{1,255}){1,16})", 0), E2BIG);
        ASSERT_OK(regex_compile(&re, "((a{1,255}){1,16})", REG_NOSUB));
        regfree(&re);
}

int main(void) {
        RUN(accepts_what_operators_write);
        RUN(refuses_stacked_repetitions_and_long_patterns);
        RUN(refuses_what_nested_groups_multiply);
        return 0;
}
