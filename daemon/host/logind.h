/* SPDX-License-Identifier: Apache-2.0 */
/* The systemd-logind client: asks for the reboot over asynchronous sd-bus calls and reads the
 * inhibitors that may forbid it. The system bus is the one sd-bus finds (DBUS_SYSTEM_BUS_ADDRESS
 * is honoured). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef struct Logind Logind;

int logind_new(Logind **ret, sd_event *event);
Logind *logind_free(Logind *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Logind *, logind_free);

/* error: 0 when logind accepted the request (the machine goes down once delay inhibitors such as
 * kubelet's graceful node shutdown let it), or -errno from the bus (mapped from the D-Bus error). */
typedef void (*LogindRebootHandler)(Logind *l, int error, const char *error_message, void *userdata);

/* Calls org.freedesktop.login1.Manager.RebootWithFlags(t 0), falling back to Reboot(b false) when
 * logind does not know that method. Never interactive; never overrides block inhibitors.
 * Both calls below return 0 when the request is under way: the handler then runs exactly once, from
 * the event loop and never from inside the call (also when the bus cannot be reached: the error
 * goes to the handler). A negative return (-ENOMEM, -EINVAL) means the handler will not run.
 * The connection is opened on first use and opened again after it dropped. logind_free() cancels
 * requests in flight: their handlers do not run (it may be called from a handler). */
int logind_reboot(Logind *l, LogindRebootHandler handler, void *userdata);

/* blocked: a "shutdown" block inhibitor is held; holders: "who (why), ..." for a status line, or
 * NULL when not blocked. error < 0 when logind could not be asked (blocked is then false). */
typedef void (*LogindInhibitHandler)(Logind *l, int error, bool blocked, const char *holders,
                                     void *userdata);

/* Reads the Manager's BlockInhibited property and, when it names "shutdown", ListInhibitors to
 * say who holds it. */
int logind_check_shutdown_block(Logind *l, LogindInhibitHandler handler, void *userdata);

/* Reads the Manager's PreparingForShutdown property: blocked is true while logind is taking the
 * machine down (delay inhibitors such as kubelet's graceful node shutdown may hold it there for
 * minutes). Same handler contract as above. */
int logind_check_shutdown_in_progress(Logind *l, LogindInhibitHandler handler, void *userdata);

/* For tests: the D-Bus method call timeout (0: sd-bus's default of 25 s). A timeout reaches the
 * handler as -ETIMEDOUT. */
void logind_set_method_timeout(Logind *l, usec_t usec);
