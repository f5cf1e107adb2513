/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "base64.h"
#include "macro.h"
#include "tests.h"

static void check_decode(const char *in, const char *expected, size_t expected_size) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0;

        ASSERT_OK(base64_decode(in, strlen(in), &out, &n));
        ASSERT_EQ(n, expected_size);
        ASSERT_TRUE(memcmp(out, expected, n) == 0);
        ASSERT_EQ(out[n], 0);   /* always NUL-terminated */
}

static void check_invalid(const char *in) {
        char *out = (char *) 0x1;
        size_t n = 4711;

        ASSERT_ERROR(base64_decode(in, strlen(in), &out, &n), EINVAL);
        /* Outputs are written only on success. */
        ASSERT_TRUE(out == (char *) 0x1);
        ASSERT_EQ(n, 4711);
}

TEST(rfc4648_vectors) {
        check_decode("", "", 0);
        check_decode("Zg==", "f", 1);
        check_decode("Zm8=", "fo", 2);
        check_decode("Zm9v", "foo", 3);
        check_decode("Zm9vYg==", "foob", 4);
        check_decode("Zm9vYmE=", "fooba", 5);
        check_decode("Zm9vYmFy", "foobar", 6);
}

TEST(whitespace_is_skipped) {
        check_decode("Zm9v\nYmFy\n", "foobar", 6);
        check_decode("  Zm 9v\r\n\tYg==  \n", "foob", 4);
}

TEST(binary_and_full_alphabet) {
        static const unsigned char bytes[] = { 0x00, 0xff, 0xfe, 0x3e, 0x3f, 0x80, 0x00 };
        _cleanup_free_ char *enc = NULL, *dec = NULL;
        size_t n;

        check_decode("+/+/", "\xfb\xff\xbf", 3);
        ASSERT_OK(base64_encode(bytes, sizeof bytes, &enc));
        ASSERT_OK(base64_decode(enc, strlen(enc), &dec, &n));
        ASSERT_EQ(n, sizeof bytes);
        ASSERT_TRUE(memcmp(dec, bytes, n) == 0);
}

TEST(encode) {
        static const struct {
                const char *in, *out;
        } v[] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *s = NULL;

                ASSERT_OK(base64_encode(v[i].in, strlen(v[i].in), &s));
                ASSERT_STREQ(s, v[i].out);
        }
}

TEST(invalid) {
        check_invalid("Zm9");           /* not a multiple of 4 */
        check_invalid("Z");
        check_invalid("Zm9v!");         /* outside the alphabet */
        check_invalid("Zm-v");          /* URL-safe alphabet is not accepted */
        check_invalid("Z===");          /* too much padding */
        check_invalid("====");
        check_invalid("Zg=a");          /* data after padding */
        check_invalid("Zg==Zm9v");      /* data after the padded quad */
        check_invalid("Zm8=\nZg==");
}

TEST(embedded_nul_is_data) {
        _cleanup_free_ char *out = NULL;
        size_t n;

        /* "AAA=" decodes to two NUL bytes: the size, not strlen(), tells the length. */
        ASSERT_OK(base64_decode("AAA=", 4, &out, &n));
        ASSERT_EQ(n, 2);
        ASSERT_EQ(out[0], 0);
        ASSERT_EQ(out[1], 0);
        /* Only len bytes are read. */
        free(out);
        out = NULL;
        ASSERT_OK(base64_decode("Zm9vgarbage", 4, &out, &n));
        ASSERT_STREQ(out, "foo");
}

int main(void) {
        RUN(rfc4648_vectors);
        RUN(whitespace_is_skipped);
        RUN(binary_and_full_alphabet);
        RUN(encode);
        RUN(invalid);
        RUN(embedded_nul_is_data);
        return 0;
}
