/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                ssize_t k;

                if (allocated - n < 4096) {
                        size_t want = allocated ? allocated * 2 : 16384;
                        char *t;

                        if (want > max_size + 1)
                                want = max_size + 1;
                        if (want <= n)
                                return -EFBIG;
                        t = realloc(buf, want + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = want;
                }
                k = read(fd, buf + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max_size)
                        return -EFBIG;
        }

        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

static int fsync_directory_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        return write_file_atomic_full(path, data, size, mode, 0);
}

int write_file_atomic_full(const char *path, const void *data, size_t size, mode_t mode, WriteFileFlags flags) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *p = data;
        int r;

        tmp = strdup_printf("%s.tmp-%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        if ((flags & WRITE_FILE_EXACT_MODE) && fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                p += k;
                size -= (size_t) k;
        }
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (close(TAKE_FD(fd)) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        return fsync_directory_of(path);

fail:
        (void) unlink(tmp);
        return r;
}

int read_one_line_file(const char *path, char **ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_full_file(path, 4096, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = TAKE_PTR(s);
        return 0;
}
