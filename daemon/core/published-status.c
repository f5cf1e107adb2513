/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "json-util.h"
#include "published-status.h"
#include "string-util.h"

void published_status_done(PublishedStatus *p) {
        p->lock = mfree(p->lock);
        p->state = mfree(p->state);
        p->reason = mfree(p->reason);
        p->blocked = mfree(p->blocked);
        p->slot = mfree(p->slot);
        p->result = mfree(p->result);
        p->kernel_before = mfree(p->kernel_before);
        p->kernel_after = mfree(p->kernel_after);
        p->boot_id = mfree(p->boot_id);
        p->since = p->last_reboot = 0;
}

static int put_string(json_object *o, const char *key, const char *v) {
        return isempty(v) ? 0 : json_set(o, key, json_object_new_string(v));
}

static int put_time(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        return t == 0 || t == USEC_INFINITY ? 0 : put_string(o, key, format_rfc3339(buf, sizeof buf, t, false));
}

char *published_status_format(const RebootState *s, const char *lock_name, const char *blocked,
                              const char *boot_id) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *result = NULL;
        bool idle = s->phase == REBOOT_PHASE_IDLE;

        if (!o)
                return NULL;
        if (s->failed_cycles > 0 && s->last_error)
                result = strdup_printf("failed: %s", s->last_error);
        else if (s->stats.reboots > 0)
                result = strdup("rebooted");
        if ((s->failed_cycles > 0 || s->stats.reboots > 0) && !result)
                return NULL;
        /* Idle says when it was last busy, not since when it is idle: that changes nothing. */
        if (put_string(o, "lock", lock_name) < 0 ||
            put_string(o, "state", reboot_phase_to_string(s->phase)) < 0 ||
            (!idle && put_time(o, "since", s->phase == REBOOT_PHASE_PENDING && s->pending_since ?
                               s->pending_since : s->phase_since) < 0) ||
            (!idle && put_string(o, "reason", s->reason) < 0) ||
            (s->phase == REBOOT_PHASE_PENDING && put_string(o, "blocked", blocked) < 0) ||
            (reboot_phase_holds_lock(s->phase) && put_string(o, "slot", s->lease) < 0) ||
            (s->phase == REBOOT_PHASE_REBOOTING && put_string(o, "boot_id", s->boot_id) < 0) ||
            (s->phase == REBOOT_PHASE_DRAINING && put_string(o, "boot_id", boot_id) < 0) ||
            put_time(o, "last_reboot", s->stats.last_reboot) < 0 ||
            put_string(o, "result", result) < 0 ||
            put_string(o, "kernel_before", s->kernel_before) < 0 ||
            /* (after the cycle: recovering does not write again for it) */
            (idle && put_string(o, "kernel_after", s->kernel_after) < 0))
                return NULL;
        return strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int get_string(json_object *o, const char *key, char **ret) {
        json_object *v = json_get_member(o, key);

        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        /* Any writer of the Node's annotations may have put it there: noderebootctl list prints
         * it on a terminal. */
        *ret = string_replace_control(strdup(json_object_get_string(v)));
        return *ret ? 0 : -ENOMEM;
}

static int get_time(json_object *o, const char *key, usec_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r = get_string(o, key, &s);

        if (r < 0 || !s)
                return r;
        return parse_rfc3339(s, ret) < 0 ? -EBADMSG : 0;
}

int published_status_parse(const char *text, PublishedStatus *ret) {
        _cleanup_json_ json_object *o = NULL;
        PublishedStatus p = {};
        int r;

        if (!text || json_parse(text, strlen(text), &o) < 0 || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if ((r = get_string(o, "lock", &p.lock)) < 0 || (r = get_string(o, "state", &p.state)) < 0 ||
            (r = get_time(o, "since", &p.since)) < 0 || (r = get_string(o, "reason", &p.reason)) < 0 ||
            (r = get_string(o, "blocked", &p.blocked)) < 0 || (r = get_string(o, "slot", &p.slot)) < 0 ||
            (r = get_time(o, "last_reboot", &p.last_reboot)) < 0 || (r = get_string(o, "result", &p.result)) < 0 ||
            (r = get_string(o, "kernel_before", &p.kernel_before)) < 0 ||
            (r = get_string(o, "kernel_after", &p.kernel_after)) < 0 ||
            (r = get_string(o, "boot_id", &p.boot_id)) < 0 || !p.state) {
                published_status_done(&p);
                return r < 0 ? r : -EBADMSG;
        }
        *ret = p;
        return 0;
}
