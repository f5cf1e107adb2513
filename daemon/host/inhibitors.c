/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inhibitors.h"
#include "string-util.h"

bool inhibitor_what_contains(const char *list, const char *item) {
        size_t n = strlen(item);

        for (const char *p = list; p && *p;) {
                size_t k = strcspn(p, ":");

                if (k == n && strneq(p, item, n))
                        return true;
                p += k;
                if (*p == ':')
                        p++;
        }
        return false;
}

/* Appends text cut to INHIBITOR_FIELD_MAX bytes, at a character boundary (STATUS= must stay valid
 * UTF-8, PID 1 drops it otherwise), with control characters (ASCII and C1) made spaces: a newline
 * must not split STATUS=, an escape sequence not reach a terminal. */
static int append_sanitized(char **s, size_t *len, const char *text) {
        size_t n = strnlen(text, INHIBITOR_FIELD_MAX);
        char *t;

        /* not in the middle of a UTF-8 sequence: back off over continuation bytes */
        if (text[n] != 0)
                while (n > 0 && ((unsigned char) text[n] & 0xc0) == 0x80)
                        n--;

        t = realloc(*s, *len + n + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t + *len, text, n);
        t[*len + n] = 0;
        string_replace_control_with(t + *len, ' ');
        *len += n;
        *s = t;
        return 0;
}

static int append_text(char **s, size_t *len, const char *text) {
        size_t n = strlen(text);
        char *t;

        t = realloc(*s, *len + n + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t + *len, text, n + 1);
        *len += n;
        *s = t;
        return 0;
}

void inhibitor_list_done(InhibitorList *l) {
        if (!l)
                return;
        l->text = mfree(l->text);
        l->len = l->count = 0;
}

int inhibitor_list_add(InhibitorList *l, const char *what, const char *who, const char *why,
                       const char *mode) {
        if (!streq_ptr(mode, "block") || !inhibitor_what_contains(what, "shutdown"))
                return 0;

        if (l->count++ >= INHIBITOR_HOLDERS_MAX)
                return 0;
        if ((l->len > 0 && append_text(&l->text, &l->len, ", ") < 0) ||
            append_sanitized(&l->text, &l->len, isempty(who) ? "unknown" : who) < 0 ||
            append_text(&l->text, &l->len, " (") < 0 ||
            append_sanitized(&l->text, &l->len, strempty(why)) < 0 ||
            append_text(&l->text, &l->len, ")") < 0)
                return -ENOMEM;
        return 0;
}

int inhibitor_list_finish(InhibitorList *l, char **ret) {
        if (l->count > INHIBITOR_HOLDERS_MAX) {
                char more[64];

                (void) snprintf(more, sizeof(more), ", and %zu more", l->count - INHIBITOR_HOLDERS_MAX);
                if (append_text(&l->text, &l->len, more) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l->text);
        inhibitor_list_done(l);
        return 0;
}
