/* SPDX-License-Identifier: Apache-2.0 */
/* The package manager lock check against real fcntl() locks: a classic write lock taken by another
 * process, as dpkg and apt take theirs (its PID is reported), an open file description lock (no
 * PID), a read lock, a missing file, and a lock released. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "package-lock.h"
#include "string-util.h"
#include "tests.h"

static char *make_file(const char *dir, const char *name) {
        char *path = strjoin(dir, name);
        int fd;

        ASSERT_TRUE(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(close(fd));
        return path;
}

/* A child that takes a classic lock of the given type on path, as dpkg does with F_SETLK, and
 * holds it until killed. Returns once the lock is held. */
static pid_t hold_lock(const char *path, short type) {
        int p[2];
        pid_t pid;
        char c;

        ASSERT_OK(pipe2(p, O_CLOEXEC));
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
                int fd = open(path, (type == F_WRLCK ? O_RDWR : O_RDONLY) | O_CLOEXEC);

                if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
                        _exit(1);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        ASSERT_OK(close(p[1]));
        ASSERT_EQ(read(p[0], &c, 1), 1);
        ASSERT_OK(close(p[0]));
        return pid;
}

static void stop(pid_t pid) {
        ASSERT_OK(kill(pid, SIGKILL));
        ASSERT_EQ(waitpid(pid, NULL, 0), pid);
}

TEST(missing_and_unlocked) {
        char dir[] = "/tmp/test-package-lock-XXXXXX";
        _cleanup_free_ char *missing = NULL, *file = NULL;
        pid_t pid = 42;

        ASSERT_TRUE(mkdtemp(dir));
        missing = strjoin(dir, "/lock-frontend");
        file = make_file(dir, "/lock");

        /* No dpkg on this host: not locked, not an error. */
        ASSERT_EQ(package_lock_test(missing, &pid), 0);
        ASSERT_EQ(pid, 0);
        pid = 42;
        ASSERT_EQ(package_lock_test(file, &pid), 0);
        ASSERT_EQ(pid, 0);

        ASSERT_ERROR(package_lock_test(NULL, &pid), EINVAL);
        ASSERT_OK(unlink(file));
        ASSERT_OK(rmdir(dir));
}

TEST(classic_lock_names_the_holder) {
        char dir[] = "/tmp/test-package-lock-XXXXXX";
        _cleanup_free_ char *frontend = NULL, *lock = NULL, *missing = NULL;
        char *paths[4];
        const char *which = NULL;
        pid_t holder, pid = 0;
        int error = -1;

        ASSERT_TRUE(mkdtemp(dir));
        frontend = make_file(dir, "/lock-frontend");
        lock = make_file(dir, "/lock");
        missing = strjoin(dir, "/missing");
        paths[0] = missing;
        paths[1] = frontend;
        paths[2] = lock;
        paths[3] = NULL;

        /* Even a file this process can only read: F_GETLK needs no write access. */
        ASSERT_OK(chmod(lock, 0444));
        holder = hold_lock(lock, F_WRLCK);
        ASSERT_EQ(package_lock_test(lock, &pid), 1);
        ASSERT_EQ(pid, holder);
        ASSERT_EQ(package_lock_test(frontend, &pid), 0);

        ASSERT_EQ(package_locks_test(paths, &which, &pid, &error), 1);
        ASSERT_STREQ(which, lock);
        ASSERT_EQ(pid, holder);
        ASSERT_EQ(error, 0);

        /* Released: the very next look says so. */
        stop(holder);
        ASSERT_EQ(package_locks_test(paths, &which, &pid, &error), 0);
        ASSERT_TRUE(which == NULL);

        /* A read lock keeps a writer out just the same. */
        holder = hold_lock(frontend, F_RDLCK);
        ASSERT_EQ(package_locks_test(paths, &which, &pid, NULL), 1);
        ASSERT_STREQ(which, frontend);
        ASSERT_EQ(pid, holder);
        stop(holder);

        ASSERT_OK(unlink(frontend));
        ASSERT_OK(unlink(lock));
        ASSERT_OK(rmdir(dir));
}

TEST(ofd_lock_has_no_pid) {
        char dir[] = "/tmp/test-package-lock-XXXXXX";
        _cleanup_free_ char *file = NULL;
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        pid_t pid = 42;
        int fd;

        ASSERT_TRUE(mkdtemp(dir));
        file = make_file(dir, "/lock");

        /* An open file description lock, held by this very process through another open(). */
        fd = open(file, O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(fcntl(fd, F_OFD_SETLK, &fl));
        ASSERT_EQ(package_lock_test(file, &pid), 1);
        ASSERT_EQ(pid, 0);
        ASSERT_OK(close(fd));
        ASSERT_EQ(package_lock_test(file, &pid), 0);

        ASSERT_OK(unlink(file));
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        RUN(missing_and_unlocked);
        RUN(classic_lock_names_the_holder);
        RUN(ofd_lock_has_no_pid);
        return 0;
}
