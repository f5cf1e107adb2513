/* SPDX-License-Identifier: Apache-2.0 */
/* The maintenance window: days of the week and a daily start and end time in a time zone (IANA
 * name, "UTC" or "Local"); an end before the start wraps past midnight. Pure apart from reading
 * the time zone database. */
#pragma once

#include <stdbool.h>

#include "macro.h"
#include "time-util.h"

typedef struct Window Window;

/* days: "mon,tue" or "mon-fri" or "su,mo" or "0-6" (kured's forms too); times "2:00", "02:00:30",
 * "3pm"; error names the field and the expected form in *ret_error (caller frees). */
int window_new(Window **ret, const char *days, const char *start, const char *end, const char *time_zone,
               char **ret_error);
Window *window_free(Window *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Window *, window_free);

bool window_contains(const Window *w, usec_t realtime);
/* The next moment at or after realtime that lies inside the window (realtime itself when inside);
 * USEC_INFINITY for an empty window. */
usec_t window_next_open(const Window *w, usec_t realtime);
/* "mon-fri 02:00-05:00 Europe/Berlin" */
char *window_describe(const Window *w);
