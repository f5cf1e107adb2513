/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "string-util.h"

static int max_level = LOG_INFO;
static bool to_journal = false;
static char context_node[256];
static char context_state[32];

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (int) i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        return -EINVAL;
}

void log_open(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        to_journal = false;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return;
        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        to_journal = (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_set_context(const char *node, const char *state) {
        if (node)
                snprintf(context_node, sizeof context_node, "%s", node);
        if (state)
                snprintf(context_state, sizeof context_state, "%s", state);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *message_id, const char *fmt, ...) {
        char buf[2048];
        va_list ap;

        if (level > max_level)
                return -ERRNO_VALUE(error);

        errno = ERRNO_VALUE(error);
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        if (to_journal) {
                char fields[9][320];
                struct iovec iov[9];
                size_t n = 0;

#define ADD_FIELD(...) \
        do { \
                snprintf(fields[n], sizeof fields[n], __VA_ARGS__); \
                iov[n] = (struct iovec) { fields[n], strlen(fields[n]) }; \
                n++; \
        } while (0)

                ADD_FIELD("PRIORITY=%d", level);
                ADD_FIELD("CODE_FILE=%s", file);
                ADD_FIELD("CODE_LINE=%d", line);
                ADD_FIELD("CODE_FUNC=%s", func);
                ADD_FIELD("SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
                if (message_id)
                        ADD_FIELD("MESSAGE_ID=%s", message_id);
                if (context_node[0])
                        ADD_FIELD("NODEREBOOT_NODE=%s", context_node);
                if (context_state[0])
                        ADD_FIELD("NODEREBOOT_STATE=%s", context_state);
                if (error != 0)
                        ADD_FIELD("ERRNO=%d", ERRNO_VALUE(error));
#undef ADD_FIELD
                {
                        _cleanup_free_ char *m = strjoin("MESSAGE=", buf);
                        struct iovec all[10];

                        memcpy(all, iov, n * sizeof(struct iovec));
                        if (m) {
                                all[n++] = (struct iovec) { m, strlen(m) };
                                (void) sd_journal_sendv(all, (int) n);
                        }
                }
        } else
                fprintf(stderr, "%s\n", buf);

        return -ERRNO_VALUE(error);
}
