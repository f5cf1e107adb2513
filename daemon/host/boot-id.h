/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel's boot ID, which tells a real reboot (new ID) from a daemon restart (same ID), and the
 * wall-clock time of the boot. $NODEREBOOT_BOOT_ID_FILE and $NODEREBOOT_BOOT_TIME_FILE name other
 * files to read instead: for tests only, where a "reboot" is a restart of the daemon. */
#pragma once

#include "time-util.h"

#define BOOT_ID_MAX 33          /* 32 hex digits and the NUL */

/* 32 lowercase hex digits, dashes removed. -EBADMSG if the file does not hold a UUID. */
int boot_id_read(char ret[static BOOT_ID_MAX]);

/* When this boot began, CLOCK_REALTIME: now minus CLOCK_BOOTTIME (which counts suspend too).
 * The test file holds seconds since the epoch ("1764842400.25"). */
int boot_time_read(usec_t *ret);
