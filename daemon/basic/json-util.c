/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <string.h>

#include "json-util.h"
#include "string-util.h"

json_object *json_get_member(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

json_object *json_get(json_object *o, const char *path) {
        char key[256];

        while (o && *path) {
                size_t l = strcspn(path, ".");
                if (l >= sizeof key)
                        return NULL;
                memcpy(key, path, l);
                key[l] = 0;
                o = json_get_member(o, key);
                path += l;
                if (*path == '.')
                        path++;
        }
        return o;
}

const char *json_get_string(json_object *o, const char *path) {
        json_object *v = json_get(o, path);

        if (!v || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

bool json_get_int64(json_object *o, const char *path, int64_t *ret) {
        json_object *v = json_get(o, path);

        if (!v || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

bool json_get_bool(json_object *o, const char *path, bool def) {
        json_object *v = json_get(o, path);

        if (!v || !json_object_is_type(v, json_type_boolean))
                return def;
        return json_object_get_boolean(v);
}

size_t json_array_length(json_object *o) {
        if (!o || !json_object_is_type(o, json_type_array))
                return 0;
        return json_object_array_length(o);
}

static inline void json_tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}

int json_parse_with_error(const char *text, size_t size, json_object **ret, char **ret_error) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        enum json_tokener_error e;
        size_t used;
        json_object *o;

        if (size > INT_MAX)
                return -EFBIG;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int) size);
        e = json_tokener_get_error(tok);
        used = json_tokener_get_parse_end(tok);
        if (!o && e == json_tokener_continue) {
                /* All input consumed, value unfinished: a number or literal, which has no end of its
                 * own, or a truncated text. A NUL tells the tokener that the input ends here. */
                o = json_tokener_parse_ex(tok, "", 1);
                if (json_tokener_get_error(tok) != json_tokener_success) {
                        json_object_put(o);
                        if (ret_error)
                                *ret_error = strdup_printf("unexpected end of data after %zu bytes", size);
                        return -EBADMSG;
                }
                e = json_tokener_success;
                used = size;
        }
        if (!o || e != json_tokener_success) {
                json_object_put(o);
                if (ret_error)
                        *ret_error = e == json_tokener_success ?
                                strdup("the value is null") :
                                strdup_printf("%s at byte %zu", json_tokener_error_desc(e), used);
                return -EBADMSG;
        }
        /* Only whitespace may follow the value; a NUL byte is not whitespace. */
        for (size_t i = used; i < size; i++)
                if (!strchr(" \t\r\n", text[i]) || text[i] == 0) {
                        json_object_put(o);
                        if (ret_error)
                                *ret_error = strdup_printf("unexpected data after the JSON value at byte %zu", i);
                        return -EBADMSG;
                }
        *ret = o;
        return 0;
}

int json_parse(const char *text, size_t size, json_object **ret) {
        return json_parse_with_error(text, size, ret, NULL);
}

int json_set(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_set_time(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        return json_set(o, key, json_object_new_string(format_rfc3339(buf, sizeof buf, t, true)));
}
