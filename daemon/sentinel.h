/* SPDX-License-Identifier: Apache-2.0 */
/* Watches the reboot-required sentinel with inotify on its folder, so a file created or removed
 * later is seen at once (the file need not exist; /var/run is usually a link to /run). Also reads
 * the reason: the package list in "<sentinel>.pkgs" beside it, when present. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef struct Sentinel Sentinel;

/* Called when the sentinel's presence changes (not for every inotify event). */
typedef void (*SentinelHandler)(Sentinel *s, bool present, void *userdata);

/* Checks once at start (sentinel_present() is valid right after; the handler is not called for
 * that first look). If the folder does not exist, checks again every 10 s until it does. */
int sentinel_new(Sentinel **ret, sd_event *event, const char *path, SentinelHandler handler,
                 void *userdata);
Sentinel *sentinel_free(Sentinel *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sentinel *, sentinel_free);

bool sentinel_present(Sentinel *s);

/* "linux-image-6.1.0-28-amd64, libc6" from <path>.pkgs (one package a line, duplicates dropped,
 * at most 64 KiB read); *ret = NULL and 0 when there is no such file (or it names no package).
 * At most 50 names, then ", and N more". */
int sentinel_read_reason(const char *path, char **ret);

/* For tests: how often to look for a missing folder (default 10 s; 0 restores the default). */
void sentinel_set_recheck_interval(Sentinel *s, usec_t usec);
