/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel's boot ID, which tells a real reboot (new ID) from a daemon restart (same ID).
 * $NODEREBOOT_BOOT_ID_FILE names another file to read instead: for tests only. */
#pragma once

#define BOOT_ID_MAX 33          /* 32 hex digits and the NUL */

/* 32 lowercase hex digits, dashes removed. -EBADMSG if the file does not hold a UUID. */
int boot_id_read(char ret[static BOOT_ID_MAX]);
