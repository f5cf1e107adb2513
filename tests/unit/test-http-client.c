/* SPDX-License-Identifier: Apache-2.0 */
/* The one-shot HTTP client: URLs shown without their secrets, a refused connection, a server
 * that accepts and never answers (the timeout), and a client freed with a request in flight. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-client.h"
#include "string-util.h"
#include "tests.h"

TEST(display) {
        static const char *const cases[][2] = {
                { "https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com" },
                { "http://user:password@prometheus:9090/prefix?token=x", "http://prometheus:9090" },
                { "http://[::1]:8080/", "http://[::1]:8080" },
                { "not a url", "(invalid URL)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *d = http_url_for_display(cases[i][0]);
                ASSERT_STREQ(d, cases[i][1]);
        }
}

typedef struct Result {
        bool done;
        int error;
        long status;
} Result;

static void on_done(HttpRequest *r, int error, const char *message, const HttpResponse *response, void *userdata) {
        Result *res = userdata;

        res->done = true;
        res->error = error;
        res->status = response->status;
        ASSERT_TRUE(error >= 0 || message);
}

static int listener(int *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t n = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(bind(fd, (struct sockaddr *) &a, sizeof a));
        ASSERT_OK(listen(fd, 4));
        ASSERT_OK(getsockname(fd, (struct sockaddr *) &a, &n));
        *ret_port = ntohs(a.sin_port);
        return fd;
}

TEST(failures) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;
        _cleanup_free_ char *url = NULL;
        sd_event *e = NULL;
        Result res = {};
        usec_t start;
        int port, fd = listener(&port);

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(http_client_new(&c, e, "test"));

        /* accepted (by the kernel), never answered */
        url = strdup_printf("http://127.0.0.1:%d/api/v1/alerts", port);
        start = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(http_client_request(c, "GET", url, NULL, &(HttpOptions) { .timeout_usec = 300 * USEC_PER_MSEC },
                                      on_done, &res, NULL));
        for (unsigned i = 0; !res.done && i < 500; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_TRUE(res.done);
        ASSERT_ERROR(res.error, ETIMEDOUT);
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start < 3 * USEC_PER_SEC);

        /* nothing listens */
        close(fd);
        res = (Result) {};
        ASSERT_OK(http_client_request(c, "POST", url, "{}", &(HttpOptions) { .content_type = "application/json" },
                                      on_done, &res, NULL));
        for (unsigned i = 0; !res.done && i < 500; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_ERROR(res.error, ECONNREFUSED);
        ASSERT_EQ(res.status, 0);

        /* a method we do not send */
        ASSERT_ERROR(http_client_request(c, "DELETE", url, NULL, NULL, on_done, &res, NULL), EINVAL);

        /* freed with a request in flight: no handler */
        fd = listener(&port);
        free(url);
        url = strdup_printf("http://127.0.0.1:%d/", port);
        res = (Result) {};
        ASSERT_OK(http_client_request(c, "GET", url, NULL, NULL, on_done, &res, NULL));
        ASSERT_OK(sd_event_run(e, 50 * USEC_PER_MSEC));
        c = http_client_free(c);
        ASSERT_OK(sd_event_run(e, 50 * USEC_PER_MSEC));
        ASSERT_FALSE(res.done);
        close(fd);
        sd_event_unref(e);
}

static void on_done_free_client(HttpRequest *r, int error, const char *message, const HttpResponse *response,
                                void *userdata) {
        HttpClient **c = userdata;

        *c = http_client_free(*c);
}

/* Several transfers that end in the same turn of the loop: every handler runs (curl tells of each
 * finished transfer only once), and a handler may free the client. */
TEST(finished_together) {
        HttpClient *c = NULL;
        _cleanup_free_ char *url = NULL;
        sd_event *e = NULL;
        Result res[4] = {};
        int port, fd = listener(&port);

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(http_client_new(&c, e, "test"));
        url = strdup_printf("http://127.0.0.1:%d/", port);
        for (unsigned i = 0; i < ELEMENTSOF(res); i++)
                ASSERT_OK(http_client_request(c, "POST", url, "{}",
                                              &(HttpOptions) { .timeout_usec = 300 * USEC_PER_MSEC }, on_done,
                                              &res[i], NULL));
        for (unsigned i = 0; i < 300; i++) {
                bool all = true;

                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
                for (unsigned j = 0; j < ELEMENTSOF(res); j++)
                        all = all && res[j].done;
                if (all)
                        break;
        }
        for (unsigned j = 0; j < ELEMENTSOF(res); j++) {
                ASSERT_TRUE(res[j].done);
                ASSERT_ERROR(res[j].error, ETIMEDOUT);
        }

        /* two more; the first handler frees the client: the second never runs, nothing leaks */
        ASSERT_OK(http_client_request(c, "GET", url, NULL, &(HttpOptions) { .timeout_usec = 200 * USEC_PER_MSEC },
                                      on_done_free_client, &c, NULL));
        ASSERT_OK(http_client_request(c, "GET", url, NULL, &(HttpOptions) { .timeout_usec = 200 * USEC_PER_MSEC },
                                      on_done_free_client, &c, NULL));
        for (unsigned i = 0; c && i < 300; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_TRUE(!c);
        ASSERT_OK(sd_event_run(e, 50 * USEC_PER_MSEC));
        close(fd);
        sd_event_unref(e);
}

int main(void) {
        RUN(display);
        RUN(failures);
        RUN(finished_together);
        return 0;
}
