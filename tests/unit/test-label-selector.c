/* SPDX-License-Identifier: Apache-2.0 */
/* Label selectors: the syntax the API server accepts (and refuses), and matching with its
 * semantics, so "--drain-pod-selector" selects the same pods here as in kubectl. */
#include <string.h>

#include "json-util.h"
#include "label-selector.h"
#include "tests.h"

static json_object *labels(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

static bool matches(const char *selector, const char *labels_json) {
        _cleanup_(label_selector_freep) LabelSelector *s = NULL;
        _cleanup_json_ json_object *l = NULL;

        ASSERT_OK(label_selector_parse(selector, &s));
        if (labels_json)
                l = labels(labels_json);
        return label_selector_matches(s, l);
}

static int parse(const char *selector) {
        _cleanup_(label_selector_freep) LabelSelector *s = NULL;
        int r;

        r = label_selector_parse(selector, &s);
        if (r >= 0)
                ASSERT_TRUE(s);
        return r;
}

TEST(empty_selects_everything) {
        ASSERT_TRUE(matches(NULL, NULL));
        ASSERT_TRUE(matches("", NULL));
        ASSERT_TRUE(matches("   ", "{\"a\":\"b\"}"));
        ASSERT_TRUE(label_selector_matches(NULL, NULL));
}

TEST(equality) {
        const char *l = "{\"app\":\"web\",\"tier\":\"front\",\"empty\":\"\"}";

        ASSERT_TRUE(matches("app=web", l));
        ASSERT_TRUE(matches("app==web", l));
        ASSERT_TRUE(matches(" app = web ", l));
        ASSERT_FALSE(matches("app=db", l));
        ASSERT_FALSE(matches("missing=web", l));
        ASSERT_TRUE(matches("app!=db", l));
        ASSERT_FALSE(matches("app!=web", l));
        ASSERT_TRUE(matches("missing!=web", l));       /* absent keys satisfy != */
        ASSERT_TRUE(matches("empty=", l));
        ASSERT_FALSE(matches("app=", l));
        ASSERT_TRUE(matches("app=web,tier=front", l));
        ASSERT_FALSE(matches("app=web,tier=back", l));
        ASSERT_FALSE(matches("app=web", NULL));
        ASSERT_TRUE(matches("app!=web", NULL));
}

TEST(sets) {
        const char *l = "{\"env\":\"prod\",\"team\":\"a\"}";

        ASSERT_TRUE(matches("env in (prod,staging)", l));
        ASSERT_TRUE(matches("env in(prod)", l));
        ASSERT_TRUE(matches("env in ( staging , prod )", l));
        ASSERT_FALSE(matches("env in (dev,staging)", l));
        ASSERT_FALSE(matches("missing in (prod)", l));
        ASSERT_TRUE(matches("env notin (dev,staging)", l));
        ASSERT_FALSE(matches("env notin (prod)", l));
        ASSERT_TRUE(matches("missing notin (prod)", l));
        ASSERT_TRUE(matches("env in (prod),team in (a,b)", l));
        ASSERT_FALSE(matches("env in (prod),team notin (a,b)", l));
        ASSERT_TRUE(matches("env in (prod,)", l));
}

TEST(existence) {
        const char *l = "{\"release\":\"stable\",\"example.com/owner\":\"x\"}";

        ASSERT_TRUE(matches("release", l));
        ASSERT_FALSE(matches("canary", l));
        ASSERT_TRUE(matches("!canary", l));
        ASSERT_FALSE(matches("!release", l));
        ASSERT_TRUE(matches("example.com/owner", l));
        ASSERT_TRUE(matches("release,!canary,example.com/owner=x", l));
        ASSERT_FALSE(matches("release,!canary,example.com/owner=y", l));
}

TEST(numeric) {
        const char *l = "{\"gen\":\"5\",\"name\":\"abc\"}";

        ASSERT_TRUE(matches("gen>3", l));
        ASSERT_FALSE(matches("gen>5", l));
        ASSERT_TRUE(matches("gen<6", l));
        ASSERT_FALSE(matches("gen<-1", l));
        ASSERT_FALSE(matches("name>1", l));             /* not a number */
        ASSERT_FALSE(matches("missing>1", l));
}

TEST(non_string_labels_are_absent) {
        ASSERT_FALSE(matches("a=1", "{\"a\":1}"));
        ASSERT_TRUE(matches("!a", "{\"a\":1}"));
        ASSERT_FALSE(matches("a", "[]"));
}

TEST(syntax_errors) {
        ASSERT_OK(parse("a=b"));
        ASSERT_OK(parse("a.b-c/d_e.f=g_h"));
        ASSERT_ERROR(parse("a_b/c=d"), EINVAL);            /* no _ in a DNS prefix */
        ASSERT_ERROR(parse("a=b,"), EINVAL);
        ASSERT_ERROR(parse(",a=b"), EINVAL);
        ASSERT_ERROR(parse("a=b c"), EINVAL);
        ASSERT_ERROR(parse("a in ()"), EINVAL);
        ASSERT_ERROR(parse("a in (b"), EINVAL);
        ASSERT_ERROR(parse("a in b"), EINVAL);
        ASSERT_ERROR(parse("a in (b c)"), EINVAL);
        ASSERT_ERROR(parse("!"), EINVAL);
        ASSERT_ERROR(parse("!a=b"), EINVAL);
        ASSERT_ERROR(parse("=b"), EINVAL);
        ASSERT_ERROR(parse("a>b"), EINVAL);
        ASSERT_ERROR(parse("a>"), EINVAL);
        ASSERT_ERROR(parse("a=(b)"), EINVAL);
        ASSERT_ERROR(parse("-a=b"), EINVAL);            /* names start with an alphanumeric */
        ASSERT_ERROR(parse("a=b-"), EINVAL);            /* values end with one */
        ASSERT_ERROR(parse("Example.com/a=b"), EINVAL); /* prefixes are lower case */
        ASSERT_ERROR(parse("/a=b"), EINVAL);
        ASSERT_ERROR(parse("a/=b"), EINVAL);
        ASSERT_ERROR(parse("a=0123456789012345678901234567890123456789012345678901234567890123"),
                     EINVAL);                           /* 64 characters */
        ASSERT_OK(parse("a=012345678901234567890123456789012345678901234567890123456789012"));
}

TEST(length_cap) {
        char big[5000];

        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = 0;
        ASSERT_ERROR(parse(big), EINVAL);
}

int main(void) {
        RUN(empty_selects_everything);
        RUN(equality);
        RUN(sets);
        RUN(existence);
        RUN(numeric);
        RUN(non_string_labels_are_absent);
        RUN(syntax_errors);
        RUN(length_cap);
        return 0;
}
