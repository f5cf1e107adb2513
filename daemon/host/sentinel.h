/* SPDX-License-Identifier: Apache-2.0 */
/* Watches the reboot-required sentinel with inotify on its folder, so a file created or removed
 * later is seen at once (the file need not exist; /var/run is usually a link to /run). A new
 * sentinel counts once it has existed for the settle time: unattended-upgrades' kernel hook
 * touches it before it appends the package to "<sentinel>.pkgs", mid-upgrade. Also reads the
 * reason: the package list in that file, validated, and tells when the file changed. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef struct Sentinel Sentinel;

/* Called when the sentinel's presence changes (not for every inotify event): present once it has
 * existed for the settle time, absent as soon as it is gone. Also called, with present == true,
 * when "<sentinel>.pkgs" changed while the sentinel is present, so the reason is read again. */
typedef void (*SentinelHandler)(Sentinel *s, bool present, void *userdata);

/* Checks once at start (sentinel_present() is valid right after; the handler is not called for
 * that first look). A sentinel already there at start counts as settled: at boot /run is empty, so
 * it was there before the daemon (re)started, and a restart in the middle of an upgrade waits for
 * the package manager's lock anyway. If the folder does not exist, checks again every 10 s until
 * it does. settle_usec == 0: a new sentinel counts at once. */
int sentinel_new(Sentinel **ret, sd_event *event, const char *path, usec_t settle_usec,
                 SentinelHandler handler, void *userdata);
Sentinel *sentinel_free(Sentinel *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sentinel *, sentinel_free);

bool sentinel_present(Sentinel *s);

/* "linux-image-6.1.0-28-amd64, libc6" from <path>.pkgs (one package a line, duplicates dropped,
 * at most 64 KiB read); *ret = NULL and 0 when there is no such file (or it names no package).
 * Lines that are not a Debian package name ([a-z0-9][a-z0-9+.-]+, optionally ":arch") are
 * skipped and counted in *ret_n_invalid (may be NULL), so the reason is always printable ASCII.
 * At most 50 names and SENTINEL_REASON_MAX bytes, then ", and N more". */
#define SENTINEL_REASON_MAX 1024U
int sentinel_read_reason(const char *path, char **ret, unsigned *ret_n_invalid);

/* Debian's package name grammar, with an optional ":arch" qualifier as dpkg-query prints it. */
bool sentinel_package_name_is_valid(const char *name);

/* For tests: how often to look for a missing folder (default 10 s; 0 restores the default). */
void sentinel_set_recheck_interval(Sentinel *s, usec_t usec);
