/* SPDX-License-Identifier: Apache-2.0 */
/* The systemd-logind client: asks for the reboot over asynchronous sd-bus calls and reads the
 * inhibitors that may forbid it. The system bus is the one sd-bus finds (DBUS_SYSTEM_BUS_ADDRESS
 * is honoured). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Logind Logind;

int logind_new(Logind **ret, sd_event *event);
Logind *logind_free(Logind *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Logind *, logind_free);

/* error: 0 when logind accepted the request (the machine goes down once delay inhibitors such as
 * kubelet's graceful node shutdown let it), or -errno from the bus (mapped from the D-Bus error). */
typedef void (*LogindRebootHandler)(Logind *l, int error, const char *error_message, void *userdata);

/* Calls org.freedesktop.login1.Manager.RebootWithFlags(t 0), falling back to Reboot(b false) when
 * logind does not know that method. Never interactive; never overrides block inhibitors. */
int logind_reboot(Logind *l, LogindRebootHandler handler, void *userdata);

/* blocked: a "shutdown" block inhibitor is held; holders: "who (why), ..." for a status line, or
 * NULL when not blocked. error < 0 when logind could not be asked (blocked is then false). */
typedef void (*LogindInhibitHandler)(Logind *l, int error, bool blocked, const char *holders,
                                     void *userdata);

/* Reads the Manager's BlockInhibited property and, when it names "shutdown", ListInhibitors to
 * say who holds it. */
int logind_check_shutdown_block(Logind *l, LogindInhibitHandler handler, void *userdata);
