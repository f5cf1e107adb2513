/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the fuzz targets: writing an input where a file loader can read it, and (without a
 * fuzzing engine) a main() that runs every file of a seed corpus through LLVMFuzzerTestOneInput. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "string-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to <private temp folder>/name, replacing the previous input, and returns the path
 * (owned by this module; valid until exit). Aborts on I/O errors: they are not findings. */
const char *fuzz_write_input(const char *name, const uint8_t *data, size_t size);

/* Copies data into a NUL-terminated string (aborts on OOM); NULL when it holds a NUL byte, which
 * text parsers never see (their callers cut at the first NUL or refuse the file). */
char *fuzz_string(const uint8_t *data, size_t size);

/* Splits the input at its first n-1 occurrences of the byte sep into n NUL-terminated strings
 * (missing parts are ""). Returns an array of n strings, freed with fuzz_parts_free(). */
char **fuzz_split(const uint8_t *data, size_t size, char sep, size_t n);
void fuzz_parts_free(char **parts, size_t n);

/* Asserts that s (NULL is fine) holds no control character a terminal acts on: ASCII controls,
 * DEL, C1 controls in their UTF-8 form. */
void fuzz_assert_no_control(const char *s);

/* Aborts with a message when cond is false: an invariant of the parser under test is broken. */
#define fuzz_assert(cond)                                                                       \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)
