/* SPDX-License-Identifier: Apache-2.0 */
/* An LD_PRELOAD shim for the scenario tests: the disk under a folder fills up or fails. It fails
 * write(), fsync()/fdatasync() or rename()/renameat()/renameat2() on files under
 * $NODEREBOOT_FAULT_DIR with the errno $NODEREBOOT_FAULT_ERRNO (ENOSPC or EIO), for the operation
 * $NODEREBOOT_FAULT_OP (write, fsync or rename), while the file $NODEREBOOT_FAULT_DIR/.fault-on
 * exists: the test switches the fault on and off mid-cycle by creating and removing that file.
 *
 * Everything else passes through to the next definition (libc, or the ASan interceptors). The
 * control file is looked at with raw system calls, so the shim never calls itself, and only when
 * the operation is the one configured: other calls cost nothing but a getenv(). */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FAULT_CONTROL_FILE ".fault-on"

/* Exported: the definitions that interpose libc's. Declared here so -Wmissing-prototypes holds
 * for renameat2(), which older libc headers do not declare. */
ssize_t write(int fd, const void *buf, size_t count);
int fsync(int fd);
int fdatasync(int fd);
int rename(const char *oldpath, const char *newpath);
int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags);

typedef enum FaultOp {
        FAULT_OP_WRITE,
        FAULT_OP_FSYNC,
        FAULT_OP_RENAME,
} FaultOp;

static void *next_symbol(const char *name) {
        void *p = dlsym(RTLD_NEXT, name);

        if (!p) {
                static const char msg[] = "fault-inject: no next definition of a wrapped function\n";
                (void) syscall(SYS_write, STDERR_FILENO, msg, sizeof msg - 1);
                abort();
        }
        return p;
}

/* The errno to fail op with now, or 0. */
static int fault_errno(FaultOp op) {
        static const char *const ops[] = {
                [FAULT_OP_WRITE] = "write",
                [FAULT_OP_FSYNC] = "fsync",
                [FAULT_OP_RENAME] = "rename",
        };
        const char *dir = getenv("NODEREBOOT_FAULT_DIR"), *want = getenv("NODEREBOOT_FAULT_OP"),
                *e = getenv("NODEREBOOT_FAULT_ERRNO");
        char control[PATH_MAX];
        int n;

        if (!dir || !want || strcmp(want, ops[op]) != 0)
                return 0;
        n = snprintf(control, sizeof control, "%s/" FAULT_CONTROL_FILE, dir);
        if (n < 0 || (size_t) n >= sizeof control)
                return 0;
        if (syscall(SYS_faccessat, AT_FDCWD, control, F_OK, 0) < 0)
                return 0;
        if (e && strcmp(e, "EIO") == 0)
                return EIO;
        return ENOSPC;
}

/* Whether the absolute path lies in $NODEREBOOT_FAULT_DIR (the folder itself included). */
static bool path_in_fault_dir(const char *path) {
        const char *dir = getenv("NODEREBOOT_FAULT_DIR");
        size_t n;

        if (!dir || !path)
                return false;
        n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* The path fd was opened by, from /proc/self/fd (read with raw system calls). */
static bool fd_path(int fd, char *buf, size_t size) {
        char link[64];
        long k;

        if (fd < 0)
                return false;
        (void) snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        k = syscall(SYS_readlinkat, AT_FDCWD, link, buf, size - 1);
        if (k <= 0)
                return false;
        buf[k] = 0;
        return true;
}

static bool fd_in_fault_dir(int fd) {
        char target[PATH_MAX];

        return fd_path(fd, target, sizeof target) && path_in_fault_dir(target);
}

/* A path as renameat() gets it: absolute, or relative to dirfd (AT_FDCWD: the working folder). */
static bool at_path_in_fault_dir(int dirfd, const char *path) {
        char base[PATH_MAX], full[PATH_MAX];
        int n;

        if (!path)
                return false;
        if (path[0] == '/')
                return path_in_fault_dir(path);
        if (dirfd == AT_FDCWD) {
                if (syscall(SYS_getcwd, base, sizeof base) < 0)
                        return false;
        } else if (!fd_path(dirfd, base, sizeof base))
                return false;
        n = snprintf(full, sizeof full, "%s/%s", base, path);
        return n > 0 && (size_t) n < sizeof full && path_in_fault_dir(full);
}

ssize_t write(int fd, const void *buf, size_t count) {
        static ssize_t (*next)(int, const void *, size_t) = NULL;
        int e = fault_errno(FAULT_OP_WRITE);

        if (e != 0 && fd_in_fault_dir(fd)) {
                errno = e;
                return -1;
        }
        if (!next)
                next = (ssize_t (*)(int, const void *, size_t)) next_symbol("write");
        return next(fd, buf, count);
}

/* The errno an operation on fd fails with now, 0 when it goes through. */
static int fd_fault(FaultOp op, int fd) {
        int e = fault_errno(op);

        return e != 0 && fd_in_fault_dir(fd) ? e : 0;
}

/* fsync() and fdatasync(): fail with the fault's errno, or call the real one (looked up once). */
static int sync_call(int (**next)(int), const char *name, int fd) {
        int e = fd_fault(FAULT_OP_FSYNC, fd);

        if (e != 0) {
                errno = e;
                return -1;
        }
        if (!*next)
                *next = (int (*)(int)) next_symbol(name);
        return (*next)(fd);
}

int fsync(int fd) {
        static int (*next)(int) = NULL;

        return sync_call(&next, "fsync", fd);
}

int fdatasync(int fd) {
        static int (*next)(int) = NULL;

        return sync_call(&next, "fdatasync", fd);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags) {
        static int (*next)(int, const char *, int, const char *, unsigned) = NULL;
        int e = fault_errno(FAULT_OP_RENAME);

        if (e != 0 && (at_path_in_fault_dir(olddirfd, oldpath) || at_path_in_fault_dir(newdirfd, newpath))) {
                errno = e;
                return -1;
        }
        if (!next)
                next = (int (*)(int, const char *, int, const char *, unsigned)) next_symbol("renameat2");
        return next(olddirfd, oldpath, newdirfd, newpath, flags);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
        static int (*next)(int, const char *, int, const char *) = NULL;
        int e = fault_errno(FAULT_OP_RENAME);

        if (e != 0 && (at_path_in_fault_dir(olddirfd, oldpath) || at_path_in_fault_dir(newdirfd, newpath))) {
                errno = e;
                return -1;
        }
        if (!next)
                next = (int (*)(int, const char *, int, const char *)) next_symbol("renameat");
        return next(olddirfd, oldpath, newdirfd, newpath);
}

/* glibc's rename() calls the renameat system call itself, not renameat(): wrapped on its own. */
int rename(const char *oldpath, const char *newpath) {
        static int (*next)(const char *, const char *) = NULL;
        int e = fault_errno(FAULT_OP_RENAME);

        if (e != 0 && (at_path_in_fault_dir(AT_FDCWD, oldpath) || at_path_in_fault_dir(AT_FDCWD, newpath))) {
                errno = e;
                return -1;
        }
        if (!next)
                next = (int (*)(const char *, const char *)) next_symbol("rename");
        return next(oldpath, newpath);
}
