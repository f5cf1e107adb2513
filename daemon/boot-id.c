/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
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
