/* SPDX-License-Identifier: Apache-2.0 */
/* Captures what the code under test logs to stderr, for tests that check error messages name the
 * file, line or field. Header-only, for the unit tests. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "tests.h"

/* Redirects fd 2 to a temporary file until capture_end(), which returns what was written. */
typedef struct Capture {
        int saved;
        char path[64];
} Capture;

static inline void capture_begin(Capture *c) {
        int fd;

        snprintf(c->path, sizeof c->path, "/tmp/nodereboot-test-stderr-XXXXXX");
        fd = mkstemp(c->path);
        ASSERT_TRUE(fd >= 0);
        fflush(stderr);
        c->saved = dup(STDERR_FILENO);
        ASSERT_TRUE(c->saved >= 0);
        ASSERT_TRUE(dup2(fd, STDERR_FILENO) >= 0);
        close(fd);
}

static inline char *capture_end(Capture *c) {
        char *s = NULL;

        fflush(stderr);
        ASSERT_TRUE(dup2(c->saved, STDERR_FILENO) >= 0);
        close(c->saved);
        ASSERT_OK(read_full_file(c->path, 1024 * 1024, &s, NULL));
        unlink(c->path);
        /* Shown again so a failing test's log makes sense. */
        fprintf(stderr, "%s", s);
        return s;
}

#define ASSERT_CONTAINS(haystack, needle)                                                       \
        do {                                                                                    \
                if (!strstr((haystack), (needle))) {                                            \
                        fprintf(stderr, "%s:%d: \"%s\" not found in \"%s\"\n", __FILE__,        \
                                __LINE__, (needle), (haystack));                                \
                        abort();                                                                \
                }                                                                               \
        } while (0)
