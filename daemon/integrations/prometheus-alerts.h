/* SPDX-License-Identifier: Apache-2.0 */
/* [Blockers] PrometheusURL=: active Prometheus alerts hold reboots back, as kured's
 * --prometheus-url does. Asks GET <url>/api/v1/alerts (Prometheus's own list of the alerts its
 * rules hold, pending and firing) and keeps the names of those that block, after the filters:
 * AlertFilterRegex= (names to ignore, or with AlertFilterMatchOnly= the only names that count)
 * and AlertFiringOnly= (pending alerts do not count). An answer that cannot be had or read blocks:
 * fail safe. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "http-client.h"
#include "macro.h"

typedef struct AlertFilter {
        const regex_t *regex;           /* NULL: no filter */
        bool match_only;
        bool firing_only;
} AlertFilter;

/* The blocking alert names in a /api/v1/alerts answer, sorted, each once; an empty list (not
 * NULL) when none blocks. -EBADMSG with *ret_error saying what is wrong for an answer that is
 * not one (not JSON, status "error", no data.alerts array, an alert without labels.alertname or
 * with a state other than pending and firing). Pure. */
int alerts_blocking(const char *body, size_t size, const AlertFilter *filter, char ***ret, char **ret_error);

typedef struct AlertsSettings {
        const char *url;                /* the server: http(s)://host:port[/prefix] */
        const char *ca_file;
        const char *bearer_token_file;  /* read at every check (tokens rotate) */
        const char *basic_auth_file;    /* "user:password", first line, read at every check */
        AlertFilter filter;
} AlertsSettings;

typedef struct AlertsCheck AlertsCheck;

/* error < 0: the alerts could not be had; message says why (Prometheus's own words, an HTTP
 * status, or what was wrong with the answer) and the reboot must wait. Otherwise blocking is
 * the list (empty: go on). Runs once, from the event loop. */
typedef void (*AlertsHandler)(int error, char **blocking, const char *message, void *userdata);

int alerts_check(AlertsCheck **ret, HttpClient *http, const AlertsSettings *settings, AlertsHandler handler,
                 void *userdata);
/* Cancels a check in flight (its handler does not run). */
AlertsCheck *alerts_check_free(AlertsCheck *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AlertsCheck *, alerts_check_free);

/* "A, B, C" (at most 10 names, then ", and N more"), newly allocated. */
char *alerts_join(char **names);
