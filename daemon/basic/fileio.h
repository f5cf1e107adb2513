/* SPDX-License-Identifier: Apache-2.0 */
/* Whole-file reads with a size cap, and crash-safe atomic replacement (temp file in the same
 * folder, fsync, rename, fsync of the folder). No logging. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Reads all of path; -EFBIG when larger than max_size. The result is NUL-terminated. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);
/* Replaces path atomically with data; after success the new content survives a power cut. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
typedef enum WriteFileFlags {
        WRITE_FILE_EXACT_MODE = 1 << 0,         /* mode as given, whatever the umask */
} WriteFileFlags;
int write_file_atomic_full(const char *path, const void *data, size_t size, mode_t mode, WriteFileFlags flags);
/* Reads the first line (no newline), e.g. /proc/sys/kernel/random/boot_id. */
int read_one_line_file(const char *path, char **ret);
