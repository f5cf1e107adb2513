/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "base64.h"
#include "macro.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int decode_char(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -EINVAL;
}

static bool is_base64_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int base64_decode(const char *s, size_t len, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        unsigned quad[4];
        size_t n = 0, k = 0, pad = 0;

        /* Every 4 input characters give at most 3 bytes; the +1 is the terminating NUL. */
        buf = malloc(len / 4 * 3 + 3 + 1);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                int v;

                if (is_base64_space(c))
                        continue;
                if (c == '=') {
                        /* Padding only in the last two positions of the final quad. */
                        if (k < 2)
                                return -EINVAL;
                        pad++;
                        quad[k++] = 0;
                } else {
                        if (pad > 0)
                                return -EINVAL;    /* data after padding */
                        v = decode_char(c);
                        if (v < 0)
                                return v;
                        quad[k++] = (unsigned) v;
                }

                if (k == 4) {
                        buf[n++] = (char) (quad[0] << 2 | quad[1] >> 4);
                        if (pad < 2)
                                buf[n++] = (char) ((quad[1] & 0xf) << 4 | quad[2] >> 2);
                        if (pad < 1)
                                buf[n++] = (char) ((quad[2] & 0x3) << 6 | quad[3]);
                        k = 0;
                        if (pad > 0) {
                                /* Nothing but whitespace may follow the padded quad. */
                                for (i++; i < len; i++)
                                        if (!is_base64_space(s[i]))
                                                return -EINVAL;
                                break;
                        }
                }
        }
        if (k != 0)
                return -EINVAL;

        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

int base64_encode(const void *data, size_t size, char **ret) {
        const unsigned char *p = data;
        char *buf, *o;

        if (size > (SIZE_MAX - 1) / 4 * 3 - 3)
                return -ENOMEM;
        buf = malloc((size + 2) / 3 * 4 + 1);
        if (!buf)
                return -ENOMEM;

        o = buf;
        for (size_t i = 0; i < size; i += 3) {
                unsigned v = (unsigned) p[i] << 16;
                size_t left = size - i;

                if (left > 1)
                        v |= (unsigned) p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = left > 1 ? alphabet[v >> 6 & 63] : '=';
                *o++ = left > 2 ? alphabet[v & 63] : '=';
        }
        *o = 0;
        *ret = buf;
        return 0;
}
