/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics endpoint (metrics-server.c, libmicrohttpd on our event loop) reading arbitrary bytes
 * from a client on loopback. Invariants: every answer is HTTP; a 200 answers only a GET or HEAD of
 * /metrics and carries exactly the metrics; and after each such client, a well-formed scrape still
 * gets its 200 (one bad client does not break the endpoint). */
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "metrics-server.h"

#define METRICS_TEXT "# HELP nodereboot_up fuzz\n# TYPE nodereboot_up gauge\nnodereboot_up 1\n"

static sd_event *event;
static MetricsServer *server;
static struct sockaddr_in address;

static void setup(void) {
        socklen_t len = sizeof address;
        int fd;

        fuzz_assert(sd_event_new(&event) >= 0);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        fuzz_assert(fd >= 0);
        address = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        fuzz_assert(bind(fd, (struct sockaddr *) &address, sizeof address) >= 0);
        fuzz_assert(listen(fd, 64) >= 0);
        fuzz_assert(getsockname(fd, (struct sockaddr *) &address, &len) >= 0);
        fuzz_assert(metrics_server_new(&server, event, NULL, 0, fd) >= 0);
        fuzz_assert(metrics_server_set_text(server, METRICS_TEXT) >= 0);
}

/* Whether answer holds a whole response: its headers, and as much body as Content-Length says. */
static bool answer_complete(const char *answer, size_t got, bool head) {
        const char *end = strstr(answer, "\r\n\r\n"), *cl;
        unsigned long length;

        if (!end)
                return false;
        if (head)
                return true;
        cl = strcasestr(answer, "\r\nContent-Length:");
        if (!cl || cl > end)
                return false;
        length = strtoul(cl + 17, NULL, 10);
        return got >= (size_t) (end + 4 - answer) + length;
}

/* Sends request from a loopback address of its own (the endpoint limits connections per address),
 * closes our sending side, and collects the answer until the server closes, the answer is whole,
 * or the server stays silent for 25 ms after the request is sent (it waits for more of an
 * incomplete request). The connection is then reset, as a client that goes away does. */
static size_t exchange(const uint8_t *request, size_t size, char *answer, size_t max) {
        static unsigned n;
        struct sockaddr_in local = { .sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK + 2 + n++ % 250) };
        struct linger reset = { .l_onoff = 1, .l_linger = 0 };
        bool head = size >= 5 && memcmp(request, "HEAD ", 5) == 0;
        size_t got = 0, sent = 0;
        unsigned silent = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        fuzz_assert(fd >= 0);
        fuzz_assert(bind(fd, (struct sockaddr *) &local, sizeof local) >= 0);
        if (connect(fd, (struct sockaddr *) &address, sizeof address) < 0)
                fuzz_assert(errno == EINPROGRESS);

        for (unsigned round = 0; round < 400 && silent < 5; round++) {
                struct pollfd p = { .fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0) };
                ssize_t k;

                (void) sd_event_run(event, 0);
                if (poll(&p, 1, 5) <= 0) {
                        if (sent == size)
                                silent++;
                        continue;
                }
                if ((p.revents & POLLOUT) && sent < size) {
                        k = send(fd, request + sent, size - sent, MSG_NOSIGNAL);
                        if (k > 0) {
                                sent += (size_t) k;
                                if (sent == size)
                                        (void) shutdown(fd, SHUT_WR);
                        } else if (k < 0 && errno != EAGAIN)
                                sent = size;    /* the server closed on us */
                }
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        k = recv(fd, answer + got, max - 1 - got, 0);
                        if (k == 0 || (k < 0 && errno != EAGAIN) || got + (size_t) k >= max - 1) {
                                if (k > 0)
                                        got += (size_t) k;
                                break;
                        }
                        if (k > 0) {
                                got += (size_t) k;
                                answer[got] = 0;
                                if (answer_complete(answer, got, head))
                                        break;
                        }
                }
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fd);
        (void) sd_event_run(event, 0);
        answer[got] = 0;
        return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char scrape[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        static char answer[65536];
        size_t got;

        if (size > 32U * 1024U)
                return 0;
        if (!event)
                setup();

        got = exchange(data, size, answer, sizeof answer);
        if (got > 0) {
                fuzz_assert(startswith(answer, "HTTP/1."));
                if (got >= 13 && startswith(answer + 8, " 200 ")) {
                        /* libmicrohttpd skips lines it reads as empty (a NUL ends a line for it)
                         * before a request: the 200 may answer a later line of the input. */
                        fuzz_assert(memmem(data, size, "GET /metrics", 12) || memmem(data, size, "HEAD /metrics", 13));
                        if (!memmem(data, size, "HEAD ", 5))
                                fuzz_assert(strstr(answer, "\r\n\r\n" METRICS_TEXT));
                }
        }

        got = exchange((const uint8_t *) scrape, sizeof scrape - 1, answer, sizeof answer);
        if (!startswith(answer, "HTTP/1.1 200 ") || !endswith(answer, METRICS_TEXT)) {
                fprintf(stderr, "a scrape after that input got (%zu bytes):\n%s\n", got, answer);
                abort();
        }
        return 0;
}
