/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration (config_load_file with its drop-ins, config_verify). Input: the main file, then
 * up to two drop-ins, separated by form feeds (\f). Invariants: whatever loads keeps the ranges the
 * parser promises; loading is deterministic; and the main file's text given as a drop-in of an
 * empty main file loads to the same values (a drop-in is read exactly like the file it extends). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz-util.h"

static char *dir;

typedef struct Part {
        const uint8_t *data;
        size_t size;
} Part;

/* Raw bytes, NULs included: the loader refuses a file with a NUL, and that is fuzzed too. */
static void write_text(const char *name, Part text) {
        _cleanup_free_ char *path = strjoin(dir, "/", name);
        FILE *f;

        fuzz_assert(path);
        f = fopen(path, "we");
        fuzz_assert(f);
        if (text.size > 0)      /* an empty part has no data pointer */
                fuzz_assert(fwrite(text.data, 1, text.size, f) == text.size);
        fuzz_assert(fclose(f) == 0);
}

static void remove_text(const char *name) {
        _cleanup_free_ char *path = strjoin(dir, "/", name);

        fuzz_assert(path);
        (void) unlink(path);
}

/* The values config_verify and the daemon rely on, as one comparable line. */
static char *summary(const Config *c) {
        return strdup_printf("%s|%s|%s|%s|%s|%u|%" PRIu64 "|%u|%" PRIu64 "|%s|%s|%s|%s|%" PRIi64 "|%d|%d|%s|%s|%u|%u|%d",
                             strna(c->node_name), strna(c->kubeconfig), strna(c->sentinel_path),
                             strna(c->lock_namespace), strna(c->lock_name), c->concurrency, c->lock_ttl_usec,
                             c->reboot_max_attempts, c->drain_timeout_usec, strna(c->window_days),
                             strna(c->window_start), strna(c->window_end), strna(c->window_time_zone),
                             c->drain_grace_period_sec, c->force_reboot, c->lock_queue,
                             strna(c->drain_pod_selector), strna(c->metrics_listen_address),
                             (unsigned) strv_length(c->blocking_pod_selectors),
                             (unsigned) strv_length(c->notify_urls), c->log_level);
}

static int load(Part main_text, const Part *dropin, char **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *path = strjoin(dir, "/nodereboot.conf");
        int r;

        fuzz_assert(path);
        write_text("nodereboot.conf", main_text);
        if (dropin)
                write_text("nodereboot.conf.d/50-fuzz.conf", *dropin);
        else
                remove_text("nodereboot.conf.d/50-fuzz.conf");

        fuzz_assert(config_new(&c) >= 0);
        r = config_load_file(c, path);
        if (r < 0)
                return r;
        /* Whatever loaded keeps the ranges the parser promises. */
        fuzz_assert(c->concurrency >= 1 && c->concurrency <= 1000 && c->reboot_max_attempts >= 1 &&
                    c->reboot_max_attempts <= 100 && c->lock_ttl_usec >= 10 * USEC_PER_SEC && c->lock_name &&
                    c->lock_namespace && c->kubeconfig && c->sentinel_path);
        (void) config_verify(c);
        *ret = summary(c);
        fuzz_assert(*ret);
        return 0;
}

static void cleanup(void) {
        _cleanup_free_ char *d = strjoin(dir, "/nodereboot.conf.d");

        remove_text("nodereboot.conf.d/50-fuzz.conf");
        remove_text("nodereboot.conf.d/60-fuzz.conf");
        remove_text("nodereboot.conf");
        if (d)
                (void) rmdir(d);
        (void) rmdir(dir);
        dir = mfree(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        Part parts[3] = {};
        int ra, rb;

        if (size > 256U * 1024U)
                return 0;
        if (!dir) {
                _cleanup_free_ char *d = NULL;
                const char *tmp = getenv("TMPDIR");

                dir = strjoin(tmp ?: "/tmp", "/nodereboot-fuzz-config-XXXXXX");
                fuzz_assert(dir && mkdtemp(dir));
                d = strjoin(dir, "/nodereboot.conf.d");
                fuzz_assert(d && mkdir(d, 0755) >= 0);
                atexit(cleanup);
        }
        /* the main file, then the drop-ins, separated by form feeds */
        for (size_t i = 0; i < 3; i++) {
                const uint8_t *ff = i < 2 ? memchr(data, '\f', size) : NULL;

                parts[i] = (Part) { data, ff ? (size_t) (ff - data) : size };
                data += parts[i].size + (ff ? 1 : 0);
                size -= parts[i].size + (ff ? 1 : 0);
                if (!ff)
                        break;
        }

        /* The main file and its drop-ins, as given. */
        write_text("nodereboot.conf.d/60-fuzz.conf", parts[2]);
        ra = load(parts[0], &parts[1], &a);
        rb = load(parts[0], &parts[1], &b);
        fuzz_assert(ra == rb && (ra < 0 || streq(a, b)));
        remove_text("nodereboot.conf.d/60-fuzz.conf");

        /* The main file's text as a drop-in of an empty main file. */
        a = mfree(a);
        ra = load(parts[0], NULL, &a);
        rb = load((Part) {}, &parts[0], &c);
        if ((ra < 0) != (rb < 0) || (ra >= 0 && !streq(a, c))) {
                fprintf(stderr, "as the main file: %d %s\nas a drop-in:     %d %s\n", ra, strna(a), rb, strna(c));
                abort();
        }
        return 0;
}
