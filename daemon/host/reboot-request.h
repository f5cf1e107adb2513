/* SPDX-License-Identifier: Apache-2.0 */
/* A reboot asked for by an operator on this machine (noderebootctl request): the file "request"
 * in the daemon's state folder, JSON {"reason", "ignore_window", "boot_id", "requested_at"},
 * written atomically by noderebootctl and watched by the daemon like the sentinel. It asks for a
 * reboot of the boot it was made in: once the machine has booted again (by nodereboot or anyone
 * else), the boot ID differs and the request is done, as /run/reboot-required vanishes at a boot.
 * noderebootctl cancel removes it. */
#pragma once

#include <stdbool.h>

#include "boot-id.h"
#include "time-util.h"

#define REBOOT_REQUEST_FILE "request"
#define REBOOT_REQUEST_REASON_MAX 256U

typedef struct RebootRequest {
        char *reason;                   /* the operator's text, printable ASCII; NULL when none */
        bool ignore_window;
        char boot_id[BOOT_ID_MAX];
        usec_t requested_at;            /* CLOCK_REALTIME */
} RebootRequest;

void reboot_request_done(RebootRequest *r);

/* "<dir>/request", newly allocated. */
char *reboot_request_path(const char *dir);
/* Pure. -EBADMSG with *ret_error (may be NULL) saying which field is wrong. */
int reboot_request_parse(const char *text, RebootRequest *ret, char **ret_error);
char *reboot_request_format(const RebootRequest *r);
/* -ENOENT when there is none; -EBADMSG with *ret_error for a file that is not a request. */
int reboot_request_read(const char *dir, RebootRequest *ret, char **ret_error);
int reboot_request_write(const char *dir, const RebootRequest *r);
/* 0 also when there was none. */
int reboot_request_remove(const char *dir);
