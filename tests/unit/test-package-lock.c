/* SPDX-License-Identifier: Apache-2.0 */
/* The package manager lock check against real fcntl() locks: a classic write lock taken by another
 * process, as dpkg and apt take theirs (its PID is reported), an open file description lock (no
 * PID), a read lock, a missing file, and a lock released. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
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
                int fd;

                /* Gone with a test that failed before it stopped us: meson waits for our stdout. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                fd = open(path, (type == F_WRLCK ? O_RDWR : O_RDONLY) | O_CLOEXEC);
                if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
                        TEST_CHILD_EXIT(1);
                if (write(p[1], "x", 1) != 1)
                        TEST_CHILD_EXIT(1);
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

/* Lines of /proc/locks as the kernel prints them (fs/locks.c lock_get_status): device as hex
 * major:minor, inode in decimal; waiters behind "->". */
TEST(proc_locks_parsing) {
        const char *text =
                "1: OFDLCK ADVISORY  READ  -1 00:19:77 0 EOF\n"
                "2: POSIX  ADVISORY  WRITE 4242 fd:01:131074 0 EOF\n"
                "2: -> POSIX  ADVISORY  WRITE 4300 fd:01:131074 0 EOF\n"
                "3: FLOCK  ADVISORY  WRITE 77 08:02:5 0 EOF\n"
                "garbage\n"
                "4: OFDLCK ADVISORY  WRITE -1 08:02:131075 0 EOF\n";
        pid_t pid = -5;

        ASSERT_EQ(package_lock_find_in_proc_locks(text, makedev(0xfd, 0x01), 131074, &pid), 1);
        ASSERT_EQ(pid, 4242);
        ASSERT_EQ(package_lock_find_in_proc_locks(text, makedev(0x08, 0x02), 131075, &pid), 1);
        ASSERT_EQ(pid, 0);                      /* an OFD lock: no process */
        ASSERT_EQ(package_lock_find_in_proc_locks(text, makedev(0x08, 0x02), 131076, &pid), 0);
        ASSERT_EQ(package_lock_find_in_proc_locks(text, makedev(0xfd, 0x02), 131074, &pid), 0);
        ASSERT_EQ(package_lock_find_in_proc_locks("", makedev(1, 1), 1, &pid), 0);
}

/* dpkg's lock files are 0640 root:root and the daemon runs as an ordinary user: it cannot open
 * them, and must still see dpkg's lock (through /proc/locks). Run as root, a child drops to
 * nobody to be that user. */
TEST(lock_file_the_user_cannot_open) {
        char dir[] = "/tmp/test-package-lock-XXXXXX";
        _cleanup_free_ char *path = NULL;
        pid_t holder, child;
        int status;

        if (geteuid() != 0) {
                fprintf(stderr, "    (not root: skipped)\n");
                return;
        }
        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_OK(chmod(dir, 0755));
        path = make_file(dir, "/lock");           /* 0640 root:root, as dpkg leaves it */
        holder = hold_lock(path, F_WRLCK);

        child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                pid_t pid = 0;
                int r;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        TEST_CHILD_EXIT(10);
                if (open(path, O_RDONLY | O_CLOEXEC) >= 0)
                        TEST_CHILD_EXIT(11);    /* the premise: this user cannot open it */
                r = package_lock_test(path, &pid);
                TEST_CHILD_EXIT(r == 1 && pid == holder ? 0 : 12);
        }
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);

        stop(holder);
        child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                pid_t pid = 1;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        TEST_CHILD_EXIT(10);
                TEST_CHILD_EXIT(package_lock_test(path, &pid) == 0 && pid == 0 ? 0 : 12);
        }
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);

        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        RUN(missing_and_unlocked);
        RUN(classic_lock_names_the_holder);
        RUN(ofd_lock_has_no_pid);
        RUN(proc_locks_parsing);
        RUN(lock_file_the_user_cannot_open);
        return 0;
}
