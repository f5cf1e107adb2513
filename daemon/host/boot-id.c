/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot-id.h"
#include "fileio.h"
#include "macro.h"

int boot_id_read(char ret[static BOOT_ID_MAX]) {
        _cleanup_free_ char *line = NULL;
        const char *path;
        char id[BOOT_ID_MAX];
        size_t n = 0;
        int r;

        path = getenv("NODEREBOOT_BOOT_ID_FILE");
        if (isempty(path))
                path = "/proc/sys/kernel/random/boot_id";

        r = read_one_line_file(path, &line);
        if (r < 0)
                return r;

        for (const char *p = line; *p; p++) {
                if (*p == '-')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= 32)
                        return -EBADMSG;
                id[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != 32)
                return -EBADMSG;
        id[n] = 0;
        memcpy(ret, id, BOOT_ID_MAX);
        return 0;
}

static int boot_time_from_file(const char *path, usec_t *ret) {
        _cleanup_free_ char *line = NULL;
        char *end = NULL;
        double seconds;
        int r;

        r = read_one_line_file(path, &line);
        if (r < 0)
                return r;
        errno = 0;
        seconds = strtod(line, &end);
        if (errno != 0 || end == line || *end || !(seconds > 0) || seconds > 1e11)
                return -EBADMSG;
        *ret = (usec_t) (seconds * (double) USEC_PER_SEC);
        return 0;
}

int boot_time_read(usec_t *ret) {
        const char *path = getenv("NODEREBOOT_BOOT_TIME_FILE");
        usec_t now, up;

        if (!isempty(path))
                return boot_time_from_file(path, ret);

        now = now_usec(CLOCK_REALTIME);
        up = now_usec(CLOCK_BOOTTIME);
        if (up > now)
                return -ERANGE;
        *ret = now - up;
        return 0;
}
