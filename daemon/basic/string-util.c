/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "string-util.h"

int free_and_strdup(char **p, const char *s) {
        char *t = NULL;

        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

char *strjoin_real(const char *first, ...) {
        va_list ap;
        size_t n = 0;
        char *r, *p;

        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *))
                n += strlen(s);
        va_end(ap);

        r = malloc(n + 1);
        if (!r)
                return NULL;

        p = r;
        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *))
                p = stpcpy(p, s);
        va_end(ap);
        *p = 0;
        return r;
}

bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *strstrip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                e--;
        *e = 0;
        return s;
}

size_t strv_length(char * const *l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

int strv_push(char ***l, char *value) {
        size_t n = strv_length(*l);
        char **t;

        t = reallocarray(*l, n + 2, sizeof(char *));
        if (!t) {
                free(value);
                return -ENOMEM;
        }
        t[n] = value;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *value) {
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        return strv_push(l, v);
}

bool strv_contains(char * const *l, const char *value) {
        if (l)
                for (char * const *i = l; *i; i++)
                        if (streq(*i, value))
                                return true;
        return false;
}

char *url_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *r, *p;

        r = malloc(strlen(s) * 3 + 1);
        if (!r)
                return NULL;
        for (p = r; *s; s++) {
                unsigned char c = *s;
                if (isalnum(c) || strchr("-._~", c))
                        *p++ = c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p = 0;
        return r;
}

bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        if (!s)
                return false;
        while (*p) {
                unsigned n;
                uint32_t c;

                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if (*p >= 0xc2 && *p <= 0xdf) {
                        n = 1;
                        c = *p & 0x1f;
                } else if (*p >= 0xe0 && *p <= 0xef) {
                        n = 2;
                        c = *p & 0x0f;
                } else if (*p >= 0xf0 && *p <= 0xf4) {
                        n = 3;
                        c = *p & 0x07;
                } else
                        return false;   /* a continuation byte, 0xc0, 0xc1 or 0xf5.. */
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;   /* also stops at the NUL */
                        c = (c << 6) | (p[i] & 0x3f);
                }
                if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) || c > 0x10ffff ||
                    (c >= 0xd800 && c <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

int strv_split_command(const char *s, char ***ret) {
        char **l = NULL, *word = NULL;
        size_t n = 0;
        int r = -EINVAL;

        if (!s || !ret)
                return -EINVAL;
        word = malloc(strlen(s) + 1);
        if (!word)
                return -ENOMEM;
        for (const char *p = s;;) {
                bool in_word = false;

                while (*p == ' ' || *p == '\t' || *p == '\n')
                        p++;
                if (!*p)
                        break;
                n = 0;
                while (*p && !(*p == ' ' || *p == '\t' || *p == '\n')) {
                        in_word = true;
                        if (*p == '\'') {
                                const char *end = strchr(p + 1, '\'');
                                if (!end)
                                        goto fail;
                                memcpy(word + n, p + 1, (size_t) (end - p - 1));
                                n += (size_t) (end - p - 1);
                                p = end + 1;
                        } else if (*p == '"') {
                                for (p++; *p != '"'; p++) {
                                        if (!*p)
                                                goto fail;
                                        if (*p == '\\') {
                                                if (!p[1])
                                                        goto fail;
                                                p++;
                                        }
                                        word[n++] = *p;
                                }
                                p++;
                        } else if (*p == '\\') {
                                if (!p[1])
                                        goto fail;
                                word[n++] = p[1];
                                p += 2;
                        } else
                                word[n++] = *p++;
                }
                if (in_word) {
                        word[n] = 0;
                        r = strv_extend(&l, word);
                        if (r < 0)
                                goto fail;
                        r = -EINVAL;
                }
        }
        if (!l)
                goto fail;
        free(word);
        *ret = l;
        return 0;

fail:
        free(word);
        strv_free(l);
        return r;
}

void erase_and_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

char *string_replace_control_with(char *s, char c) {
        for (unsigned char *p = (unsigned char *) s; p && *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        *p = c;
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        p[0] = p[1] = c;
                        p++;
                }
        return s;
}
