/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "parse-util.h"

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

int parse_uint64(const char *s, unsigned long long *ret) {
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned *ret) {
        unsigned long long v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_socket_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct sockaddr_storage a = {};
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon, *port;
        unsigned p;
        size_t n;

        if (!s || !ret || !ret_len)
                return -EINVAL;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');

                if (!end || end[1] != ':')
                        return -EINVAL;
                n = (size_t) (end - s - 1);
                port = end + 2;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, n);
                host[n] = 0;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a;
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                in6->sin6_family = AF_INET6;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - s);
                port = colon + 1;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, s, n);
                host[n] = 0;
                struct sockaddr_in *in = (struct sockaddr_in *) &a;
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                in->sin_family = AF_INET;
        }
        if (parse_unsigned(port, &p) < 0 || p == 0 || p > 65535)
                return -EINVAL;
        if (a.ss_family == AF_INET6) {
                ((struct sockaddr_in6 *) &a)->sin6_port = htons((uint16_t) p);
                *ret_len = sizeof(struct sockaddr_in6);
        } else {
                ((struct sockaddr_in *) &a)->sin_port = htons((uint16_t) p);
                *ret_len = sizeof(struct sockaddr_in);
        }
        *ret = a;
        return 0;
}
