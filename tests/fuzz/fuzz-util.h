/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the fuzz targets: writing an input where a file loader can read it, and (without a
 * fuzzing engine) a main() that runs every file of a seed corpus through LLVMFuzzerTestOneInput. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to <private temp folder>/name, replacing the previous input, and returns the path
 * (owned by this module; valid until exit). Aborts on I/O errors: they are not findings. */
const char *fuzz_write_input(const char *name, const uint8_t *data, size_t size);
