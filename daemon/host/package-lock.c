/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "package-lock.h"

#define PROC_LOCKS_MAX (4U * 1024U * 1024U)

int package_lock_find_in_proc_locks(const char *text, dev_t dev, ino_t ino, pid_t *ret_pid) {
        if (!text || !ret_pid)
                return -EINVAL;

        for (const char *line = text; line && *line; ) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t) (nl - line) : strlen(line);
                char buf[256], kind[16], mode[16], access[16];
                unsigned maj, min;
                uintmax_t inode;
                long pid;

                if (n < sizeof buf) {
                        memcpy(buf, line, n);
                        buf[n] = 0;
                        /* "1: POSIX  ADVISORY  WRITE 1234 08:01:131074 0 EOF"; waiters ("1: -> POSIX ...")
                         * hold nothing and do not match this format. */
                        if (sscanf(buf, "%*u: %15s %15s %15s %ld %x:%x:%ju", kind, mode, access, &pid, &maj,
                                   &min, &inode) == 7 &&
                            makedev(maj, min) == dev && (ino_t) inode == ino) {
                                /* OFD locks show pid -1; a holder in another PID namespace 0. */
                                *ret_pid = pid > 0 ? (pid_t) pid : 0;
                                return 1;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        *ret_pid = 0;
        return 0;
}

/* For a file we may not open (dpkg's locks are 0640 root:root, the daemon runs as an ordinary
 * user): the kernel's table of every lock, world-readable, by the file's device and inode. */
static int package_lock_test_proc(const char *path, pid_t *ret_pid) {
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t size;
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        r = read_full_file("/proc/locks", PROC_LOCKS_MAX, &text, &size);
        if (r < 0)
                return r;
        return package_lock_find_in_proc_locks(text, st.st_dev, st.st_ino, ret_pid);
}

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
                if (errno == EACCES || errno == EPERM)
                        return package_lock_test_proc(path, ret_pid);
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
