/* SPDX-License-Identifier: Apache-2.0 */
/* What each daemon publishes on its Node for noderebootctl list and kubectl: the annotation
 * nodereboot.io/status, compact JSON {"lock", "state", "since", "reason", "blocked", "slot",
 * "last_reboot", "result", "kernel_before", "kernel_after"} (absent members are unknown or none),
 * and the label nodereboot.io/state=<state> for kubectl get nodes -L nodereboot.io/state.
 * Written only when it changes, twice a cycle on its own (pending, rebooting); draining and the
 * end go with the cordon's and the uncordon's patches, and recovering is not written: a reader
 * sees it from the Node's bootID, no longer the one the rebooting status names. */
#pragma once

#include "reboot-machine.h"

#define PUBLISHED_STATUS_ANNOTATION "nodereboot.io/status"
#define PUBLISHED_STATE_LABEL "nodereboot.io/state"

typedef struct PublishedStatus {
        char *lock;
        char *state;
        usec_t since;                   /* CLOCK_REALTIME, 0 unknown */
        char *reason;
        char *blocked;                  /* why a pending node does not go on (metrics' reason) */
        char *slot;
        usec_t last_reboot;
        char *result;                   /* "rebooted", "failed: <why>" */
        char *kernel_before;
        char *kernel_after;
        char *boot_id;                  /* rebooting: the boot being left (32 hex digits) */
} PublishedStatus;

void published_status_done(PublishedStatus *p);

/* Pure. The annotation's value for state s of lock group lock_name; blocked may be NULL. boot_id:
 * this boot's, named while draining (rebooting names the recorded one), so that a reader sees
 * from the Node's bootID that the machine is back even when a later status was not written. */
char *published_status_format(const RebootState *s, const char *lock_name, const char *blocked,
                              const char *boot_id);
/* Pure. -EBADMSG for text that is not such an object (a hand edit): the caller shows "unknown". */
int published_status_parse(const char *text, PublishedStatus *ret);
