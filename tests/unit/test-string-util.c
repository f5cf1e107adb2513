/* SPDX-License-Identifier: Apache-2.0 */
/* String helpers: so far the UTF-8 check that guards the journal, STATUS= and the state file. */
#include "string-util.h"
#include "tests.h"

TEST(utf8_is_valid) {
        ASSERT_TRUE(utf8_is_valid(""));
        ASSERT_TRUE(utf8_is_valid("libc6, linux-image-6.1.0-28-amd64"));
        ASSERT_TRUE(utf8_is_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));   /* é € 😀 */
        ASSERT_TRUE(utf8_is_valid("\xf4\x8f\xbf\xbf"));                             /* U+10FFFF */
        ASSERT_FALSE(utf8_is_valid(NULL));
        ASSERT_FALSE(utf8_is_valid("caf\xe9"));                 /* Latin-1 */
        ASSERT_FALSE(utf8_is_valid("\x80"));                    /* a lone continuation byte */
        ASSERT_FALSE(utf8_is_valid("\xc3"));                    /* cut short at the end */
        ASSERT_FALSE(utf8_is_valid("\xe2\x82"));
        ASSERT_FALSE(utf8_is_valid("\xc0\xaf"));                /* overlong '/' */
        ASSERT_FALSE(utf8_is_valid("\xe0\x80\xaf"));
        ASSERT_FALSE(utf8_is_valid("\xf0\x80\x80\xaf"));
        ASSERT_FALSE(utf8_is_valid("\xed\xa0\x80"));            /* a surrogate */
        ASSERT_FALSE(utf8_is_valid("\xf4\x90\x80\x80"));        /* past U+10FFFF */
        ASSERT_FALSE(utf8_is_valid("\xff\xfe"));
}

TEST(split_command) {
        static const struct {
                const char *in;
                const char *out;        /* words joined by '|'; NULL: -EINVAL */
        } cases[] = {
                { "needs-restarting -r", "needs-restarting|-r" },
                { "  a \t b\n", "a|b" },
                { "/bin/sh -c 'exit 1; echo \"x\"'", "/bin/sh|-c|exit 1; echo \"x\"" },
                { "echo \"a \\\"b\\\" c\"", "echo|a \"b\" c" },
                { "a\\ b", "a b" },
                { "'' x", "|x" },
                { "pre'fix'\"ed\"", "prefixed" },
                { "'unterminated", NULL },
                { "\"unterminated", NULL },
                { "trailing\\", NULL },
                { "", NULL },
                { "   ", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **l = NULL;
                _cleanup_free_ char *joined = NULL;
                int r = strv_split_command(cases[i].in, &l);

                if (!cases[i].out) {
                        ASSERT_ERROR(r, EINVAL);
                        continue;
                }
                ASSERT_OK(r);
                for (char **w = l; *w; w++) {
                        char *t = strjoin(joined ?: "", joined ? "|" : "", *w);
                        free(joined);
                        joined = t;
                }
                ASSERT_STREQ(joined, cases[i].out);
        }
}

int main(void) {
        RUN(split_command);
        RUN(utf8_is_valid);
        return 0;
}
