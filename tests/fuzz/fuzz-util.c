/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "fuzz-util.h"
#include "macro.h"
#include "string-util.h"

static char *fuzz_dir;
static char *fuzz_file;

static void fuzz_cleanup(void) {
        if (fuzz_file)
                (void) unlink(fuzz_file);
        if (fuzz_dir)
                (void) rmdir(fuzz_dir);
        free(fuzz_file);
        free(fuzz_dir);
}

const char *fuzz_write_input(const char *name, const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = -EBADF;

        if (!fuzz_dir) {
                const char *tmp = getenv("TMPDIR");

                fuzz_dir = strjoin(tmp ?: "/tmp", "/nodereboot-fuzz-XXXXXX");
                if (!fuzz_dir || !mkdtemp(fuzz_dir))
                        abort();
                atexit(fuzz_cleanup);
        }
        if (!fuzz_file || !endswith(fuzz_file, name)) {
                if (fuzz_file)
                        (void) unlink(fuzz_file);
                free(fuzz_file);
                fuzz_file = strjoin(fuzz_dir, "/", name);
                if (!fuzz_file)
                        abort();
        }

        /* Not write_file_atomic(): its fsyncs would make fuzzing crawl. */
        fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                abort();
        while (size > 0) {
                ssize_t k = write(fd, data, size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        abort();
                }
                data += k;
                size -= (size_t) k;
        }
        return fuzz_file;
}

char *fuzz_string(const uint8_t *data, size_t size) {
        char *s;

        if (memchr(data, 0, size))
                return NULL;
        s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

char **fuzz_split(const uint8_t *data, size_t size, char sep, size_t n) {
        char **parts = calloc(n, sizeof(char *));

        if (!parts)
                abort();
        for (size_t i = 0; i < n; i++) {
                const uint8_t *end = i + 1 < n ? memchr(data, sep, size) : NULL;
                size_t len = end ? (size_t) (end - data) : size;

                parts[i] = strndup((const char *) data, len);
                if (!parts[i])
                        abort();
                data += end ? len + 1 : len;
                size -= end ? len + 1 : len;
        }
        return parts;
}

void fuzz_parts_free(char **parts, size_t n) {
        for (size_t i = 0; parts && i < n; i++)
                free(parts[i]);
        free(parts);
}

#ifndef FUZZING_ENGINE
static int run_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, 64U * 1024U * 1024U, &data, &size);
        if (r < 0) {
                fprintf(stderr, "Failed to read %s: %s\n", path, strerror(-r));
                return r;
        }
        fprintf(stderr, "--- %s (%zu bytes)\n", path, size);
        (void) LLVMFuzzerTestOneInput((const uint8_t *) data, size);
        return 0;
}

static int name_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* Runs every regular file of dir, in name order so that runs are reproducible. */
static int run_dir(const char *dir, unsigned *count) {
        _cleanup_strv_free_ char **names = NULL;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.' && strv_extend(&names, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
        closedir(d);
        if (r < 0)
                return r;
        if (names)
                qsort(names, strv_length(names), sizeof(char *), name_compare);

        for (char **n = names; n && *n; n++) {
                _cleanup_free_ char *path = strjoin(dir, "/", *n);
                struct stat st;

                if (!path)
                        return -ENOMEM;
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = run_file(path);
                if (r < 0)
                        return r;
                (*count)++;
        }
        return 0;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        int r;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s CORPUS-FOLDER|FILE...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                r = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : run_file(argv[i]);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
                if (!S_ISDIR(st.st_mode))
                        count++;
        }
        /* An empty corpus would make this test pass without testing anything. */
        if (count == 0) {
                fprintf(stderr, "No inputs found.\n");
                return 1;
        }
        fprintf(stderr, "%u inputs ran without a crash.\n", count);
        return 0;
}
#endif

void fuzz_assert_no_control(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; p && *p; p++)
                fuzz_assert(*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
}
