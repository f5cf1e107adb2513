/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "macro.h"
#include "package-lock.h"

int package_lock_test(const char *path, pid_t *ret_pid) {
        _cleanup_close_ int fd = -EBADF;
        struct flock fl = {
                .l_type = F_WRLCK,        /* a write lock conflicts with any lock: read or write */
                .l_whence = SEEK_SET,
                .l_start = 0,
                .l_len = 0,               /* the whole file */
        };

        if (!path || !ret_pid)
                return -EINVAL;

        /* O_NONBLOCK: a FIFO put there must not hang the daemon. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        *ret_pid = 0;
                        return 0;
                }
                return -errno;
        }

        /* F_OFD_GETLK reports locks of any kind held by anyone but this open file; F_GETLK is the
         * fallback for kernels before 3.15. Neither needs write access to the file. */
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
                if (errno != EINVAL)
                        return -errno;
                fl = (struct flock) { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                if (fcntl(fd, F_GETLK, &fl) < 0)
                        return -errno;
        }

        if (fl.l_type == F_UNLCK) {
                *ret_pid = 0;
                return 0;
        }
        /* OFD locks report -1: they belong to an open file, not to a process. */
        *ret_pid = fl.l_pid > 0 ? fl.l_pid : 0;
        return 1;
}

int package_locks_test(char * const *paths, const char **ret_path, pid_t *ret_pid, int *ret_error) {
        int error = 0;

        if (!ret_path || !ret_pid)
                return -EINVAL;

        for (char * const *p = paths; p && *p; p++) {
                pid_t pid;
                int r;

                r = package_lock_test(*p, &pid);
                if (r < 0) {
                        if (error == 0)
                                error = r;
                        continue;
                }
                if (r > 0) {
                        *ret_path = *p;
                        *ret_pid = pid;
                        if (ret_error)
                                *ret_error = error;
                        return 1;
                }
        }
        *ret_path = NULL;
        *ret_pid = 0;
        if (ret_error)
                *ret_error = error;
        return 0;
}
