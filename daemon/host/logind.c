/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <systemd/sd-bus.h>

#include "inhibitors.h"
#include "log.h"
#include "logind.h"
#include "string-util.h"

#define LOGIND_SERVICE   "org.freedesktop.login1"
#define LOGIND_PATH      "/org/freedesktop/login1"
#define LOGIND_MANAGER   "org.freedesktop.login1.Manager"

typedef enum LogindCallKind {
        LOGIND_CALL_REBOOT,
        LOGIND_CALL_INHIBIT,
} LogindCallKind;

typedef struct LogindCall LogindCall;

/* One request from the caller's point of view; it may take two bus calls (the Reboot fallback, or
 * BlockInhibited then ListInhibitors). It owns whatever is pending for it: a bus slot, or a defer
 * source that reports a local error from the event loop. Unreferencing the slot cancels the call. */
struct LogindCall {
        Logind *logind;
        LogindCallKind kind;
        sd_bus_slot *slot;
        sd_event_source *defer;
        int error;
        char *error_message;
        union {
                LogindRebootHandler reboot;
                LogindInhibitHandler inhibit;
        } handler;
        void *userdata;
        LogindCall *prev, *next;
};

struct Logind {
        sd_event *event;
        sd_bus *bus;
        usec_t method_timeout_usec;
        LogindCall *calls;
};

static LogindCall *logind_call_free(LogindCall *c) {
        if (!c)
                return NULL;

        if (c->logind) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        c->logind->calls = c->next;
                if (c->next)
                        c->next->prev = c->prev;
        }
        /* Safe from inside the slot's own callback: sd-bus holds its own reference while it
         * dispatches, and sd-event does the same for the defer source. */
        sd_bus_slot_unref(c->slot);
        sd_event_source_disable_unref(c->defer);
        free(c->error_message);
        return mfree(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(LogindCall *, logind_call_free);

static int logind_call_new(Logind *l, LogindCallKind kind, void *userdata, LogindCall **ret) {
        LogindCall *c;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->logind = l;
        c->kind = kind;
        c->userdata = userdata;
        c->next = l->calls;
        if (l->calls)
                l->calls->prev = c;
        l->calls = c;
        *ret = c;
        return 0;
}

/* Detaches and frees the call, then runs the handler last: the handler may free the Logind (and
 * with it every other call), so nothing here touches either afterwards. The strings passed in
 * must not be owned by the call. */
static void logind_call_finish(LogindCall *c, int error, const char *error_message, bool blocked,
                               const char *holders) {
        LogindCallKind kind = c->kind;
        Logind *l = c->logind;
        void *userdata = c->userdata;
        LogindRebootHandler reboot = NULL;
        LogindInhibitHandler inhibit = NULL;

        if (kind == LOGIND_CALL_REBOOT)
                reboot = c->handler.reboot;
        else
                inhibit = c->handler.inhibit;

        logind_call_free(c);

        if (error < 0) {
                blocked = false;
                holders = NULL;
        }

        if (reboot)
                reboot(l, error, error < 0 ? error_message : NULL, userdata);
        else if (inhibit)
                inhibit(l, error, blocked, blocked ? holders : NULL, userdata);
}

static int on_deferred_error(sd_event_source *s, void *userdata) {
        LogindCall *c = userdata;
        _cleanup_free_ char *message = TAKE_PTR(c->error_message);

        logind_call_finish(c, c->error, message, false, NULL);
        return 0;
}

/* Reports a local failure (no bus, a call that could not be queued) through the event loop, so the
 * handler never runs inside logind_reboot() or logind_check_shutdown_block() themselves. On failure
 * to do even that the call is left for the caller to free. */
static int logind_call_fail_deferred(LogindCall *c, int error, const char *what) {
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        c->error = -ERRNO_VALUE(error);
        free(c->error_message);
        c->error_message = strdup_printf("%s: %s", what, strerror(ERRNO_VALUE(error)));
        if (!c->error_message)
                return -ENOMEM;

        r = sd_event_add_defer(c->logind->event, &c->defer, on_deferred_error, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->defer, "logind-error");
        return 0;
}

static int logind_connect(Logind *l) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (l->bus && sd_bus_is_open(l->bus) > 0)
                return 0;

        /* A connection that dropped is still finishing: sd-bus answers its pending calls with
         * "Connection terminated" from the event loop. Drop only our reference; the slots of those
         * calls keep it alive (and attached) until then. Closing it here would strand them. */
        if (l->bus) {
                log_debug("System bus connection lost, connecting again.");
                l->bus = sd_bus_unref(l->bus);
        }

        /* Our own connection, not sd_bus_default_system(): the shared default one is cached per
         * thread and would be handed back dead after a disconnect. */
        r = sd_bus_open_system_with_description(&bus, "nodereboot-logind");
        if (r < 0)
                return r;

        r = sd_bus_attach_event(bus, l->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;

        l->bus = TAKE_PTR(bus);
        return 0;
}

static int logind_call_method(LogindCall *c, const char *interface, const char *member,
                              sd_bus_message_handler_t callback, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Logind *l = c->logind;
        va_list ap;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);

        r = logind_connect(l);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(l->bus, &m, LOGIND_SERVICE, LOGIND_PATH, interface, member);
        if (r < 0)
                return r;

        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }

        r = sd_bus_call_async(l->bus, &c->slot, m, callback, c, l->method_timeout_usec);
        if (r < 0) {
                /* A connection that broke since the last call: open a fresh one next time. */
                if (sd_bus_is_open(l->bus) <= 0)
                        l->bus = sd_bus_unref(l->bus);
                return r;
        }
        return 0;
}

static int reply_error(sd_bus_message *m, const char **ret_message) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;

        r = sd_bus_error_get_errno(e);
        if (r <= 0)
                r = EIO;
        *ret_message = e && e->message ? e->message : (e ? e->name : NULL);
        return -r;
}

/* ---- reboot ---- */

static int on_reboot_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LogindCall *c = userdata;
        const char *message = NULL;
        int r = 0;

        if (sd_bus_message_is_method_error(m, NULL))
                r = reply_error(m, &message);

        logind_call_finish(c, r, message, false, NULL);
        return 0;
}

static int on_reboot_with_flags_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LogindCall *c = userdata;
        const sd_bus_error *e;
        const char *message = NULL;
        int r;

        if (!sd_bus_message_is_method_error(m, NULL)) {
                logind_call_finish(c, 0, NULL, false, NULL);
                return 0;
        }

        e = sd_bus_message_get_error(m);
        /* logind before v248 has no RebootWithFlags. Never fall back on other errors: a denied or
         * failed request must not be asked a second way. */
        if (!sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_METHOD) &&
            !sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_INTERFACE) &&
            !sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS)) {
                r = reply_error(m, &message);
                logind_call_finish(c, r, message, false, NULL);
                return 0;
        }

        log_debug("logind does not know RebootWithFlags (%s), falling back to Reboot.",
                  strna(e ? e->name : NULL));

        /* interactive=false: never wait for a polkit agent. */
        r = logind_call_method(c, LOGIND_MANAGER, "Reboot", on_reboot_reply, "b", 0);
        if (r < 0)
                logind_call_finish(c, r, "Failed to call Reboot", false, NULL);
        return 0;
}

int logind_reboot(Logind *l, LogindRebootHandler handler, void *userdata) {
        _cleanup_(logind_call_freep) LogindCall *c = NULL;
        int r;

        if (!l || !handler)
                return -EINVAL;

        r = logind_call_new(l, LOGIND_CALL_REBOOT, userdata, &c);
        if (r < 0)
                return r;
        c->handler.reboot = handler;

        r = logind_call_method(c, LOGIND_MANAGER, "RebootWithFlags", on_reboot_with_flags_reply,
                               "t", (uint64_t) 0);
        if (r < 0) {
                r = logind_call_fail_deferred(c, r, "Failed to call logind RebootWithFlags");
                if (r < 0)
                        return r;
        }

        TAKE_PTR(c);
        return 0;
}

/* ---- block inhibitors ---- */

static int parse_inhibitors(sd_bus_message *m, char **ret) {
        _cleanup_(inhibitor_list_done) InhibitorList list = {};
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ssssuu)");
        if (r < 0)
                return r;

        for (;;) {
                const char *what, *who, *why, *mode;
                uint32_t uid, pid;

                r = sd_bus_message_read(m, "(ssssuu)", &what, &who, &why, &mode, &uid, &pid);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = inhibitor_list_add(&list, what, who, why, mode);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        return inhibitor_list_finish(&list, ret);
}

static int on_list_inhibitors_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LogindCall *c = userdata;
        _cleanup_free_ char *holders = NULL;
        int r;

        /* BlockInhibited already said "shutdown": that stays the answer. The list only names the
         * holders; when it cannot (an error, or the inhibitor went away in between and the next
         * check will see that), the reboot still waits. */
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                log_debug("ListInhibitors failed, ignoring: %s", strna(e ? e->message : NULL));
        } else {
                r = parse_inhibitors(m, &holders);
                if (r == -ENOMEM) {
                        logind_call_finish(c, r, NULL, false, NULL);
                        return 0;
                }
                if (r < 0)
                        log_debug_errno(r, "Failed to parse ListInhibitors reply, ignoring: %m");
        }

        logind_call_finish(c, 0, NULL, true, isempty(holders) ? "unknown holder" : holders);
        return 0;
}

static int on_block_inhibited_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LogindCall *c = userdata;
        const char *message = NULL, *value;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                r = reply_error(m, &message);
                logind_call_finish(c, r, message, false, NULL);
                return 0;
        }

        r = sd_bus_message_read(m, "v", "s", &value);
        if (r < 0) {
                logind_call_finish(c, r, "Failed to parse BlockInhibited property", false, NULL);
                return 0;
        }

        if (!inhibitor_what_contains(value, "shutdown")) {
                logind_call_finish(c, 0, NULL, false, NULL);
                return 0;
        }

        r = logind_call_method(c, LOGIND_MANAGER, "ListInhibitors", on_list_inhibitors_reply, NULL);
        if (r < 0) {
                log_debug_errno(r, "Failed to call ListInhibitors, ignoring: %m");
                logind_call_finish(c, 0, NULL, true, "unknown holder");
        }
        return 0;
}

/* An asynchronous Properties.Get of a Manager property (sd_bus_get_property() would block the
 * loop); reply parses it and finishes the call. */
static int logind_get_manager_property(Logind *l, const char *property, sd_bus_message_handler_t reply,
                                       LogindInhibitHandler handler, void *userdata) {
        _cleanup_(logind_call_freep) LogindCall *c = NULL;
        _cleanup_free_ char *what = NULL;
        int r;

        if (!l || !handler)
                return -EINVAL;

        r = logind_call_new(l, LOGIND_CALL_INHIBIT, userdata, &c);
        if (r < 0)
                return r;
        c->handler.inhibit = handler;

        r = logind_call_method(c, "org.freedesktop.DBus.Properties", "Get", reply, "ss", LOGIND_MANAGER, property);
        if (r < 0) {
                what = strjoin("Failed to read logind ", property);
                r = logind_call_fail_deferred(c, r, what ?: property);
                if (r < 0)
                        return r;
        }

        TAKE_PTR(c);
        return 0;
}

int logind_check_shutdown_block(Logind *l, LogindInhibitHandler handler, void *userdata) {
        return logind_get_manager_property(l, "BlockInhibited", on_block_inhibited_reply, handler, userdata);
}

static int on_preparing_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LogindCall *c = userdata;
        const char *message = NULL;
        int preparing = 0, r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                r = reply_error(m, &message);
                logind_call_finish(c, r, message, false, NULL);
                return 0;
        }
        r = sd_bus_message_read(m, "v", "b", &preparing);
        if (r < 0) {
                logind_call_finish(c, r, "Failed to parse PreparingForShutdown property", false, NULL);
                return 0;
        }
        logind_call_finish(c, 0, NULL, preparing, "the shutdown is in progress");
        return 0;
}

int logind_check_shutdown_in_progress(Logind *l, LogindInhibitHandler handler, void *userdata) {
        return logind_get_manager_property(l, "PreparingForShutdown", on_preparing_reply, handler, userdata);
}

/* ---- object ---- */

int logind_new(Logind **ret, sd_event *event) {
        Logind *l;

        if (!ret || !event)
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);

        /* The bus is opened on first use, so a daemon started before dbus (or without it) still
         * starts; each call reports a missing bus to its handler. */
        *ret = l;
        return 0;
}

Logind *logind_free(Logind *l) {
        if (!l)
                return NULL;

        /* Unreferencing the slots cancels the pending calls: no handler runs after this. */
        while (l->calls)
                logind_call_free(l->calls);

        l->bus = sd_bus_close_unref(l->bus);
        sd_event_unref(l->event);
        return mfree(l);
}

void logind_set_method_timeout(Logind *l, usec_t usec) {
        if (l)
                l->method_timeout_usec = usec;
}
