/* SPDX-License-Identifier: Apache-2.0 */
/* Assertions for the unit tests: each failure prints file, line and the expression, then aborts
 * so meson reports the test as failed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__has_include) && __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
#else
#  define RUNNING_ON_VALGRIND 0
#  define VALGRIND_CLO_CHANGE(option) do {} while (0)
#endif

/* How many times longer an assertion about speed allows (never one about order or safety): under
 * valgrind (meson test --setup valgrind) our code runs 10 to 50 times slower. */
#define TEST_SLOW ((unsigned) (RUNNING_ON_VALGRIND ? 10 : 1))

/* The exit of a forked child that does not exec: under valgrind its leak check would report the
 * parent's memory that only registers pointed to as lost, and exit with valgrind's error code. */
#define TEST_CHILD_EXIT(status)                                                                 \
        do {                                                                                    \
                VALGRIND_CLO_CHANGE("--leak-check=no");                                         \
                _exit(status);                                                                  \
        } while (0)

#define ASSERT_TRUE(expr)                                                                       \
        do {                                                                                    \
                if (!(expr)) {                                                                  \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_OK(expr)                                                                         \
        do {                                                                                    \
                long _r = (long) (expr);                                                        \
                if (_r < 0) {                                                                   \
                        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,   \
                                strerror((int) -_r));                                           \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define ASSERT_ERROR(expr, err)                                                                 \
        do {                                                                                    \
                long _r = (long) (expr);                                                        \
                if (_r != -(long) (err)) {                                                      \
                        fprintf(stderr, "%s:%d: %s returned %ld, expected -%s\n", __FILE__,    \
                                __LINE__, #expr, _r, #err);                                     \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define ASSERT_EQ(a, b)                                                                         \
        do {                                                                                    \
                long long _a = (long long) (a), _b = (long long) (b);                           \
                if (_a != _b) {                                                                 \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,     \
                                __LINE__, #a, #b, _a, _b);                                      \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                      \
        do {                                                                                    \
                const char *_a = (a), *_b = (b);                                                \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                        \
                        fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                                __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");      \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name) do { fprintf(stderr, "  %s\n", #name); test_##name(); } while (0)
