/* SPDX-License-Identifier: Apache-2.0 */
/* Who blocks a shutdown, as a line for STATUS= and the journal: built from the inhibitors logind
 * lists (ListInhibitors: what, who, why, mode). who and why come from any local process that took
 * an inhibitor, so they are cut short and kept on one line. Pure, no logging. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* The line names a handful of holders, not every inhibitor on a busy machine. */
#define INHIBITOR_HOLDERS_MAX 16U
#define INHIBITOR_FIELD_MAX 128U

typedef struct InhibitorList {
        char *text;
        size_t len;
        size_t count;           /* block inhibitors of shutdown seen, named or not */
} InhibitorList;

void inhibitor_list_done(InhibitorList *l);

/* Whether a colon-separated "what" list ("shutdown:sleep") names item. */
bool inhibitor_what_contains(const char *list, const char *item);

/* Adds one inhibitor; only mode "block" of "shutdown" counts (a delay inhibitor, as the kubelet's
 * graceful node shutdown takes, only postpones the reboot). -ENOMEM. */
int inhibitor_list_add(InhibitorList *l, const char *what, const char *who, const char *why,
                       const char *mode);

/* "kubelet (graceful shutdown), backup (nightly run), and 3 more", or NULL when no block
 * inhibitor of shutdown was added; the list is emptied. -ENOMEM. */
int inhibitor_list_finish(InhibitorList *l, char **ret);
