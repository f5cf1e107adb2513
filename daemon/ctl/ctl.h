/* SPDX-License-Identifier: Apache-2.0 */
/* What every noderebootctl command shares: the daemon's configuration, the client of its
 * kubeconfig (or --kubeconfig=), an event loop turned until the answers are in, time formats. */
#pragma once

#include <systemd/sd-event.h>

#include "config.h"
#include "kube-client.h"
#include "kubeconfig.h"
#include "lock.h"
#include "window.h"

/* A command-line tool must not hang on a slow API: the whole cluster part gets this long. */
#define CTL_DEADLINE_USEC (30 * USEC_PER_SEC)
#define CTL_CONNECT_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CTL_REQUEST_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define TIME_MAX 64
/* format_when(): two TIME_MAX strings joined as "%s (%s)". */
#define WHEN_MAX (TIME_MAX * 2 + sizeof " ()")

typedef struct Ctl {
        Config *config;
        Window *window;
        char *state_dir;
        sd_event *event;
        Kubeconfig *kubeconfig;
        KubeClient *client;
        Lock *lock;
        const char *kubeconfig_path;    /* --kubeconfig=, NULL: the configuration's */
} Ctl;

void ctl_done(Ctl *c);
/* Turns the loop until *done or the deadline (CLOCK_MONOTONIC). */
int ctl_wait(Ctl *c, const bool *done, usec_t deadline);
/* Reads the kubeconfig (c->kubeconfig_path when set, else the configuration's) and sets up the
 * client and the lock. The loaders log what is wrong. */
int ctl_connect(Ctl *c);
/* Whether ctl_connect()'s error is one of the configuration (exit 78). */
bool connect_error_is_config(int r);

/* "2026-11-27 10:02:03 UTC"; "-" for 0. */
const char *format_abs(char *buf, size_t size, usec_t t);
/* "2min 3s ago", "in 5min", "now", to the second. */
const char *format_rel(char *buf, size_t size, usec_t t, usec_t now);
/* "2026-11-27 10:02:03 UTC (2min 3s ago)". */
const char *format_when(char *buf, size_t size, usec_t t, usec_t now);

/* noderebootctl pause / resume [--node NAME] [--reason TEXT]: ctl-pause.c. */
int command_pause(Ctl *c, bool pause, const char *node, const char *reason);
/* noderebootctl request [--reason TEXT] [--ignore-window] / cancel: ctl-request.c. */
int command_request(Ctl *c, const char *reason, bool ignore_window);
int command_cancel(Ctl *c);
/* noderebootctl list [--json]: ctl-list.c. */
int command_list(Ctl *c, bool json);
