/* SPDX-License-Identifier: Apache-2.0 */
/* A watch stream's framing (kube_line_buffer_*) and its events (kube_watch_line_parse). Input: one
 * byte choosing the line cap, then the bytes of the stream as the server sent them. The stream is
 * fed at once, a byte at a time, and split in two at every byte (for inputs up to 2 KiB), and
 * compared with a model: lines end at "\n" (a "\r" before it is dropped); a line longer than the
 * cap fails the stream with -EFBIG at that line, or, for an unterminated tail, once the tail
 * outgrows the cap. Fed a byte at a time, a stream gives exactly the model's lines; fed in larger
 * pieces, a prefix of them (a piece whose unterminated tail is too long fails before the lines
 * ahead of it are taken), and it fails exactly when the model does; one that does not fail gives
 * every line however it is cut. Each line then goes through the event parser. */
#include <string.h>

#include "fuzz-util.h"
#include "json-util.h"
#include "kube-client-internal.h"

typedef struct Lines {
        size_t n;
        size_t sizes[1024];
        const char *starts[1024];       /* into the input (model) */
        char *texts[1024];              /* copies (runs) */
        bool failed;
} Lines;

static void lines_done(Lines *l) {
        for (size_t i = 0; i < l->n; i++)
                l->texts[i] = mfree(l->texts[i]);
}

static void model(const char *data, size_t size, size_t max_line, Lines *ret) {
        const char *p = data, *end = data + size;

        ret->n = 0;
        ret->failed = false;
        while (p < end && ret->n < ELEMENTSOF(ret->sizes)) {
                const char *nl = memchr(p, '\n', end - p);
                size_t len;

                if (!nl) {
                        ret->failed = (size_t) (end - p) > max_line;
                        return;
                }
                len = nl - p;
                if (len > max_line) {
                        ret->failed = true;
                        return;
                }
                if (len > 0 && p[len - 1] == '\r')
                        len--;
                ret->starts[ret->n] = p;
                ret->sizes[ret->n++] = len;
                p = nl + 1;
        }
}

/* Feeds pieces of at most chunk bytes, except that split (when > 0) ends the first piece. */
static void run(const uint8_t *data, size_t size, size_t max_line, size_t chunk, size_t split, Lines *ret) {
        KubeLineBuffer b;
        size_t pos = 0;

        ret->n = 0;
        ret->failed = false;
        kube_line_buffer_init(&b, max_line);
        while (pos < size && !ret->failed) {
                size_t k = MIN(chunk, size - pos);
                char *line;
                size_t len;
                int r;

                if (split > 0 && pos < split)
                        k = MIN(k, split - pos);
                r = kube_line_buffer_feed(&b, data + pos, k);
                fuzz_assert(r == 0 || r == -EFBIG);
                pos += k;
                if (r < 0) {
                        ret->failed = true;
                        break;
                }
                while ((r = kube_line_buffer_next(&b, &line, &len)) > 0) {
                        fuzz_assert(strlen(line) == len || memchr(line, 0, len));
                        if (ret->n < ELEMENTSOF(ret->sizes)) {
                                ret->texts[ret->n] = malloc(len + 1);
                                fuzz_assert(ret->texts[ret->n]);
                                memcpy(ret->texts[ret->n], line, len + 1);
                                ret->sizes[ret->n++] = len;
                        }
                }
                fuzz_assert(r == 0 || r == -EFBIG);
                if (r < 0)
                        ret->failed = true;
        }
        kube_line_buffer_done(&b);
}

static void compare(const Lines *m, const Lines *got, bool exact, const char *how) {
        if (got->failed != m->failed || got->n > m->n || (exact && got->n != m->n)) {
                fprintf(stderr, "%s: %zu lines, failed=%d; model %zu lines, failed=%d\n", how, got->n,
                        got->failed, m->n, m->failed);
                abort();
        }
        for (size_t i = 0; i < got->n; i++)
                fuzz_assert(got->sizes[i] == m->sizes[i] && memcmp(got->texts[i], m->starts[i], m->sizes[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Lines m, got;
        size_t max_line;

        if (size < 1 || size > 1024U * 1024U)
                return 0;
        max_line = 16 + (size_t) data[0] * 8;
        data++, size--;

        model((const char *) data, size, max_line, &m);
        if (m.n == ELEMENTSOF(m.sizes))
                return 0;       /* beyond what the model keeps */

        /* A stream that does not fail gives every line however it is cut. */
        run(data, size, max_line, SIZE_MAX, 0, &got);
        compare(&m, &got, !m.failed, "at once");
        lines_done(&got);
        run(data, size, max_line, 1, 0, &got);
        compare(&m, &got, true, "a byte at a time");

        for (size_t i = 0; i < got.n; i++) {
                _cleanup_json_ json_object *event = NULL;
                json_object *object = NULL;
                const char *type = NULL;

                /* exercised for the sanitizers; its contract is checked by test-kube-client */
                (void) kube_watch_line_parse(got.texts[i], got.sizes[i], &event, &type, &object);
        }
        lines_done(&got);

        if (size <= 2048)
                for (size_t split = 1; split < size; split++) {
                        run(data, size, max_line, SIZE_MAX, split, &got);
                        compare(&m, &got, !m.failed, "split in two");
                        lines_done(&got);
                }
        return 0;
}
