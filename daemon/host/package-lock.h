/* SPDX-License-Identifier: Apache-2.0 */
/* Tells whether the package manager is at work: dpkg and apt hold fcntl() write locks on
 * /var/lib/dpkg/lock-frontend and /var/lib/dpkg/lock for as long as they run. Read-only (it works
 * under ProtectSystem=strict) and without side effects: the files are only opened for reading, and
 * a file the daemon's user may not open (dpkg's are 0640 root:root) is looked up in /proc/locks by
 * its device and inode. */
#pragma once

#include <sys/types.h>

/* 1 when the file is locked, with the PID of the holder in *ret_pid (0 when it cannot be known:
 * an open file description lock, or a holder in another PID namespace); 0 when it is not locked
 * or does not exist; -errno when it cannot be checked. */
int package_lock_test(const char *path, pid_t *ret_pid);

/* The first locked file of the NULL-terminated list: 1 with *ret_path pointing into paths and
 * the holder's PID as above; 0 when none is locked. A file that cannot be checked is skipped;
 * its error is returned through *ret_error (the first such error, 0 when none), when given. */
int package_locks_test(char * const *paths, const char **ret_path, pid_t *ret_pid, int *ret_error);

/* Pure: whether the text of /proc/locks lists a lock held on the file dev:ino (1, with the holder's
 * PID or 0 as above) or not (0). Lines of waiters ("->") and malformed lines are skipped. */
int package_lock_find_in_proc_locks(const char *text, dev_t dev, ino_t ino, pid_t *ret_pid);
