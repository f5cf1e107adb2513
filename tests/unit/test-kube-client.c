/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes client: its pure parts (errno mapping, retry decision, back-off, Retry-After, the
 * watch line splitter) and, against the test API server, every way a request can go: CRUD with
 * the documented errors, TLS and the three kinds of credentials, retries through injected faults
 * and an outage, body caps, watches that resume and re-list, and the server's clock. */
#include <fcntl.h>
#include <sys/stat.h>

#include "fileio.h"
#include "json-util.h"
#include "kube-client-internal.h"
#include "kube-client.h"
#include "kube-test-server.h"
#include "log.h"
#include "string-util.h"
#include "tests.h"

/* A CA that signed nothing the test server uses. */
static const char WRONG_CA_PEM[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBkTCCATegAwIBAgIUAn/dytj012xMetfDb3kjelBKauMwCgYIKoZIzj0EAwIw\n"
        "HTEbMBkGA1UEAwwSbm90LXRoZS1jbHVzdGVyLWNhMCAXDTI2MTEyNzIzMTkzOVoY\n"
        "DzIxMjYxMTAzMjMxOTM5WjAdMRswGQYDVQQDDBJub3QtdGhlLWNsdXN0ZXItY2Ew\n"
        "WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQxEi7yo/y8m/uXiGH4EukuqoUkrvJi\n"
        "rMNP9T8/rLI1MrLrqidTrRXM7YyHS8dWWV3/z2c6Q4HCp2l6p5lFz6Q7o1MwUTAd\n"
        "BgNVHQ4EFgQUsYr+3+ZTA1KM27MIJRPrWaoLZmwwHwYDVR0jBBgwFoAUsYr+3+ZT\n"
        "A1KM27MIJRPrWaoLZmwwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF\n"
        "AiEAhuFajPz8Bn/Yh8wOOxZEzBJZ629jQJsWxZFnjndGq90CIFSuheWii+F8KmOA\n"
        "0KEPsXsFO3OjAQye39uC0VOuKewt\n"
        "-----END CERTIFICATE-----\n";

#define CALL_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define NODE(name) "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"" name "\"}}"

static KubeTestServer *server;
static sd_event *event;

/* ---- pure parts ------------------------------------------------------------------------------ */

TEST(errno_mapping) {
        static const struct {
                CURLcode code;
                long status;
                int write_error;
                int expected;
        } table[] = {
                { CURLE_OK, 200, 0, 0 },
                { CURLE_OK, 201, 0, 0 },
                { CURLE_OK, 204, 0, 0 },
                { CURLE_OK, 400, 0, -EINVAL },
                { CURLE_OK, 401, 0, -EACCES },
                { CURLE_OK, 403, 0, -EACCES },
                { CURLE_OK, 404, 0, -ENOENT },
                { CURLE_OK, 405, 0, -EPROTO },
                { CURLE_OK, 409, 0, -ESTALE },
                { CURLE_OK, 410, 0, -EKEYEXPIRED },
                { CURLE_OK, 413, 0, -EPROTO },
                { CURLE_OK, 422, 0, -EINVAL },
                { CURLE_OK, 429, 0, -EBUSY },
                { CURLE_OK, 500, 0, -EIO },
                { CURLE_OK, 503, 0, -EIO },
                { CURLE_OK, 504, 0, -EIO },
                { CURLE_OK, 302, 0, -EPROTO },
                { CURLE_OK, 0, 0, -EPROTO },
                { CURLE_OPERATION_TIMEDOUT, 0, 0, -ETIMEDOUT },
                { CURLE_COULDNT_CONNECT, 0, 0, -ECONNREFUSED },
                { CURLE_COULDNT_RESOLVE_HOST, 0, 0, -ECONNREFUSED },
                { CURLE_RECV_ERROR, 200, 0, -ECONNREFUSED },
                { CURLE_SEND_ERROR, 0, 0, -ECONNREFUSED },
                { CURLE_GOT_NOTHING, 0, 0, -ECONNREFUSED },
                { CURLE_PARTIAL_FILE, 200, 0, -ECONNREFUSED },
                { CURLE_SSL_CONNECT_ERROR, 0, 0, -ECONNREFUSED },
                { CURLE_PEER_FAILED_VERIFICATION, 0, 0, -EPERM },
                { CURLE_SSL_CACERT_BADFILE, 0, 0, -EPERM },
                { CURLE_SSL_CERTPROBLEM, 0, 0, -EPERM },
                { CURLE_WRITE_ERROR, 200, -EFBIG, -EFBIG },
                { CURLE_WRITE_ERROR, 200, -ENOMEM, -ENOMEM },
                { CURLE_WRITE_ERROR, 200, 0, -EIO },
                { CURLE_FILESIZE_EXCEEDED, 200, 0, -EFBIG },
                { CURLE_OUT_OF_MEMORY, 0, 0, -ENOMEM },
                { CURLE_UNSUPPORTED_PROTOCOL, 0, 0, -EINVAL },
                { CURLE_ABORTED_BY_CALLBACK, 0, 0, -EIO },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r = kube_errno_from_result(table[i].code, table[i].status, table[i].write_error);
                if (r != table[i].expected)
                        fprintf(stderr, "row %zu: code %d status %ld → %d, expected %d\n", i,
                                (int) table[i].code, table[i].status, r, table[i].expected);
                ASSERT_EQ(r, table[i].expected);
        }
}

TEST(retriable) {
        const KubeCallFlags idem = KUBE_CALL_IDEMPOTENT;

        ASSERT_TRUE(kube_error_is_retriable(idem, -ECONNREFUSED));
        ASSERT_TRUE(kube_error_is_retriable(idem, -ETIMEDOUT));
        ASSERT_TRUE(kube_error_is_retriable(idem, -EIO));
        ASSERT_TRUE(kube_error_is_retriable(idem, -EBUSY));
        ASSERT_FALSE(kube_error_is_retriable(idem | KUBE_CALL_NO_RETRY_ON_429, -EBUSY));
        ASSERT_TRUE(kube_error_is_retriable(idem | KUBE_CALL_NO_RETRY_ON_429, -EIO));

        /* answers that repeating cannot change */
        ASSERT_FALSE(kube_error_is_retriable(idem, 0));
        ASSERT_FALSE(kube_error_is_retriable(idem, -ENOENT));
        ASSERT_FALSE(kube_error_is_retriable(idem, -ESTALE));
        ASSERT_FALSE(kube_error_is_retriable(idem, -EACCES));
        ASSERT_FALSE(kube_error_is_retriable(idem, -EPERM));
        ASSERT_FALSE(kube_error_is_retriable(idem, -EFBIG));
        ASSERT_FALSE(kube_error_is_retriable(idem, -EINVAL));

        /* a POST that may have reached the server is never repeated */
        ASSERT_FALSE(kube_error_is_retriable(0, -ECONNREFUSED));
        ASSERT_FALSE(kube_error_is_retriable(0, -ETIMEDOUT));
        ASSERT_FALSE(kube_error_is_retriable(0, -EIO));
        ASSERT_FALSE(kube_error_is_retriable(0, -EBUSY));
}

TEST(backoff) {
        const usec_t initial = 200 * USEC_PER_MSEC, max = 30 * USEC_PER_SEC;
        usec_t caps[] = { 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };

        for (unsigned a = 0; a < ELEMENTSOF(caps); a++) {
                usec_t cap = caps[a] * USEC_PER_MSEC;

                /* full jitter: anything from 0 to the cap, both ends reachable */
                ASSERT_EQ(kube_backoff_usec(a, initial, max, 0), 0);
                ASSERT_EQ(kube_backoff_usec(a, initial, max, cap), cap);
                ASSERT_EQ(kube_backoff_usec(a, initial, max, cap + 1), 0);
                ASSERT_EQ(kube_backoff_usec(a, initial, max, cap / 2), cap / 2);
        }
        /* no overflow for absurd attempts or random values */
        for (unsigned a = 10; a < 100000; a = a * 3 + 1)
                for (uint64_t rnd = 1; rnd != 0; rnd <<= 7)
                        ASSERT_TRUE(kube_backoff_usec(a, initial, max, rnd * 0x9e3779b97f4a7c15ULL) <= max);
        ASSERT_TRUE(kube_backoff_usec(UINT32_MAX, USEC_PER_SEC, USEC_INFINITY - 1, UINT64_MAX) <
                    USEC_INFINITY);
        ASSERT_EQ(kube_backoff_usec(UINT32_MAX, 0, max, UINT64_MAX), 0);       /* no back-off asked for */
        ASSERT_EQ(kube_backoff_usec(UINT32_MAX, initial, 0, UINT64_MAX), 0);

        /* the spread is real: many draws cover low and high quarters of the cap */
        {
                bool low = false, high = false;
                uint64_t x = 12345;

                for (int i = 0; i < 1000; i++) {
                        usec_t v;

                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        v = kube_backoff_usec(3, initial, max, x);
                        ASSERT_TRUE(v <= 1600 * USEC_PER_MSEC);
                        low = low || v < 400 * USEC_PER_MSEC;
                        high = high || v > 1200 * USEC_PER_MSEC;
                }
                ASSERT_TRUE(low && high);
        }
}

TEST(retry_after_parse) {
        usec_t u, now = 1764288000ULL * USEC_PER_SEC;       /* Fri, 28 Nov 2025 00:00:00 GMT */

        ASSERT_OK(kube_parse_retry_after("3", now, &u));
        ASSERT_EQ(u, 3 * USEC_PER_SEC);
        ASSERT_OK(kube_parse_retry_after(" 120 ", now, &u));
        ASSERT_EQ(u, 120 * USEC_PER_SEC);
        ASSERT_OK(kube_parse_retry_after("0", now, &u));
        ASSERT_EQ(u, 0);
        ASSERT_OK(kube_parse_retry_after("Fri, 28 Nov 2025 00:00:30 GMT", now, &u));
        ASSERT_EQ(u, 30 * USEC_PER_SEC);
        ASSERT_OK(kube_parse_retry_after("Thu, 27 Nov 2025 23:00:00 GMT", now, &u));
        ASSERT_EQ(u, 0);
        ASSERT_ERROR(kube_parse_retry_after("soon", now, &u), EINVAL);
        ASSERT_ERROR(kube_parse_retry_after("5s", now, &u), EINVAL);
        ASSERT_ERROR(kube_parse_retry_after("99999999999999999999", now, &u), ERANGE);
}

static void collect_lines(KubeLineBuffer *b, char ***lines) {
        char *line;
        size_t size;
        int r;

        while ((r = kube_line_buffer_next(b, &line, &size)) > 0) {
                ASSERT_EQ(strlen(line), size);
                ASSERT_OK(strv_extend(lines, line));
        }
        ASSERT_OK(r);
}

TEST(line_splitting) {
        uint64_t x = 42;

        for (int round = 0; round < 300; round++) {
                _cleanup_strv_free_ char **expected = NULL, **got = NULL;
                _cleanup_free_ char *stream = NULL;
                KubeLineBuffer b;
                size_t n = 0, size;
                int lines;

                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                lines = 1 + (int) ((x >> 33) % 40);

                /* lines of 0..300 bytes, some ending in \r\n, then cut at random places */
                stream = malloc(lines * 310 + 1);
                ASSERT_TRUE(stream);
                for (int i = 0; i < lines; i++) {
                        char line[301];
                        size_t len;

                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        len = (size_t) ((x >> 33) % 301);
                        for (size_t k = 0; k < len; k++)
                                line[k] = (char) ('a' + (i + k) % 26);
                        line[len] = 0;
                        ASSERT_OK(strv_extend(&expected, line));
                        memcpy(stream + n, line, len);
                        n += len;
                        if ((x >> 20) & 1)
                                stream[n++] = '\r';
                        stream[n++] = '\n';
                }
                size = n;

                kube_line_buffer_init(&b, 1024);
                for (size_t off = 0; off < size;) {
                        size_t frag;

                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        /* mostly tiny fragments (splitting "\r\n" and multi-line chunks alike) */
                        frag = 1 + (size_t) ((x >> 33) % ((x >> 60) < 4 ? 3 : 700));
                        frag = MIN(frag, size - off);
                        ASSERT_OK(kube_line_buffer_feed(&b, stream + off, frag));
                        off += frag;
                        /* not after every fragment: several may pile up between dispatches */
                        if ((x >> 40) & 1)
                                collect_lines(&b, &got);
                }
                collect_lines(&b, &got);

                ASSERT_EQ(strv_length(got), strv_length(expected));
                for (size_t i = 0; expected[i]; i++)
                        ASSERT_STREQ(got[i], expected[i]);
                {
                        char *rest;
                        ASSERT_EQ(kube_line_buffer_rest(&b, &rest), 0);
                }
                kube_line_buffer_done(&b);
        }
}

TEST(line_buffer_limits) {
        KubeLineBuffer b;
        char *line, *rest;
        size_t size;

        /* an incomplete line is refused as soon as it outgrows the cap */
        kube_line_buffer_init(&b, 16);
        ASSERT_OK(kube_line_buffer_feed(&b, "0123456789", 10));
        ASSERT_OK(kube_line_buffer_feed(&b, "012345", 6));
        ASSERT_ERROR(kube_line_buffer_feed(&b, "x", 1), EFBIG);
        kube_line_buffer_done(&b);

        /* exactly the cap is fine; a newline resets the count */
        kube_line_buffer_init(&b, 16);
        ASSERT_OK(kube_line_buffer_feed(&b, "0123456789abcdef\n0123456789", 27));
        ASSERT_OK(kube_line_buffer_feed(&b, "abcdef\nxy", 9));
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 1);
        ASSERT_STREQ(line, "0123456789abcdef");
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 1);
        ASSERT_STREQ(line, "0123456789abcdef");
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 0);
        /* the unterminated end of a stream */
        ASSERT_EQ(kube_line_buffer_rest(&b, &rest), 2);
        ASSERT_TRUE(strneq(rest, "xy", 2));
        kube_line_buffer_done(&b);

        /* a complete line over the cap, arriving with others in one fragment */
        kube_line_buffer_init(&b, 16);
        ASSERT_OK(kube_line_buffer_feed(&b, "ok\n0123456789abcdefg\nok\n", 24));
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 1);
        ASSERT_STREQ(line, "ok");
        ASSERT_ERROR(kube_line_buffer_next(&b, &line, &size), EFBIG);
        kube_line_buffer_done(&b);

        /* empty lines are lines */
        kube_line_buffer_init(&b, 16);
        ASSERT_OK(kube_line_buffer_feed(&b, "\n\r\n", 3));
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 1);
        ASSERT_EQ(size, 0);
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 1);
        ASSERT_EQ(size, 0);
        ASSERT_EQ(kube_line_buffer_next(&b, &line, &size), 0);
        kube_line_buffer_done(&b);
}

TEST(watch_event_names) {
        ASSERT_STREQ(kube_watch_event_to_string(KUBE_WATCH_ADDED), "ADDED");
        ASSERT_STREQ(kube_watch_event_to_string(KUBE_WATCH_SYNCED), "SYNCED");
        ASSERT_STREQ(kube_watch_event_to_string(KUBE_WATCH_ERROR), "ERROR");
        ASSERT_TRUE(kube_watch_event_to_string(_KUBE_WATCH_EVENT_MAX) == NULL);
        ASSERT_TRUE(kube_watch_event_to_string(_KUBE_WATCH_EVENT_INVALID) == NULL);
}

/* ---- helpers for the tests against the server ------------------------------------------------ */

typedef struct Result {
        bool done;
        unsigned calls;
        int error;
        long status;
        usec_t retry_after_usec;
        json_object *body;
} Result;

static void result_clear(Result *r) {
        json_object_put(r->body);
        *r = (Result) {};
}

static void on_result(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Result *res = userdata;

        ASSERT_TRUE(response);
        res->calls++;
        res->done = true;
        res->error = error;
        res->status = response->status;
        res->retry_after_usec = response->retry_after_usec;
        json_object_put(res->body);
        res->body = response->body ? json_object_get(response->body) : NULL;
}

static json_object *json(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

/* Runs one call to its end; returns its error. */
static int run_call(KubeClient *c, const char *method, const char *path, const char *content_type,
                    const char *body, KubeCallFlags flags, Result *res) {
        _cleanup_json_ json_object *b = body ? json(body) : NULL;

        result_clear(res);
        ASSERT_OK(kube_client_call(c, method, path, content_type, b, flags, on_result, res, NULL));
        ASSERT_OK(kube_test_run_until(event, &res->done, CALL_TIMEOUT_USEC));
        ASSERT_EQ(res->calls, 1);
        return res->error;
}

static KubeClient *new_client(const Kubeconfig *k) {
        KubeClient *c = NULL;

        ASSERT_OK(kube_client_new(&c, event, k));
        /* fast retries, so that the tests do not wait on the production back-off */
        kube_client_set_retry(c, 5, 10 * USEC_PER_MSEC, 100 * USEC_PER_MSEC);
        return c;
}

static KubeClient *new_admin_client(void) {
        Kubeconfig k;

        kube_test_server_kubeconfig(server, &k);
        return new_client(&k);
}

static void reset_server(void) {
        ASSERT_OK(kube_test_control(server, "DELETE", "/faults", NULL, NULL));
        ASSERT_OK(kube_test_control(server, "DELETE", "/log", NULL, NULL));
}

/* One fault rule: the path regex, and the rest of the rule as JSON members. */
static void add_fault(const char *match, const char *members) {
        _cleanup_free_ char *rule = strdup_printf("{\"match\":\"%s\",%s}", match, members);

        ASSERT_TRUE(rule);
        ASSERT_OK(kube_test_control(server, "POST", "/faults", rule, NULL));
}

static int get(KubeClient *c, const char *path, Result *res) {
        return run_call(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, res);
}

static usec_t msec_since(usec_t start) {
        return (now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_MSEC;
}

/* ---- against the server ---------------------------------------------------------------------- */

TEST(node_crud) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        _cleanup_free_ char *old_rv = NULL, *put_body = NULL, *stale_body = NULL;
        Result res = {};

        reset_server();

        ASSERT_OK(run_call(c, "POST", "/api/v1/nodes", NULL,
                           "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"crud-node\","
                           "\"labels\":{\"a\":\"1\"}}}", 0, &res));
        ASSERT_EQ(res.status, 201);
        ASSERT_STREQ(json_get_string(res.body, "metadata.name"), "crud-node");

        /* an object that exists already: 409 AlreadyExists, same errno as a conflict */
        ASSERT_ERROR(run_call(c, "POST", "/api/v1/nodes", NULL,
                              NODE("crud-node"),
                              0, &res), ESTALE);
        ASSERT_EQ(res.status, 409);
        ASSERT_STREQ(json_get_string(res.body, "kind"), "Status");

        ASSERT_OK(get(c, "/api/v1/nodes/crud-node", &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_STREQ(json_get_string(res.body, "metadata.labels.a"), "1");
        old_rv = strdup(json_get_string(res.body, "metadata.resourceVersion"));
        ASSERT_TRUE(old_rv);

        ASSERT_OK(run_call(c, "PATCH", "/api/v1/nodes/crud-node", "application/merge-patch+json",
                           "{\"metadata\":{\"labels\":{\"b\":\"2\"}}}", 0, &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_STREQ(json_get_string(res.body, "metadata.labels.b"), "2");
        ASSERT_FALSE(streq(json_get_string(res.body, "metadata.resourceVersion"), old_rv));

        /* the server saw the content type we gave */
        {
                _cleanup_json_ json_object *log = NULL;
                json_object *last;

                ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
                last = json_object_array_get_idx(log, json_object_array_length(log) - 1);
                ASSERT_STREQ(json_get_string(last, "method"), "PATCH");
                ASSERT_STREQ(json_get_string(last, "content_type"), "application/merge-patch+json");
                ASSERT_STREQ(json_get_string(last, "user"), "admin");
        }

        /* a write with the resourceVersion read before the patch: 409 */
        stale_body = strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Node\","
                                   "\"metadata\":{\"name\":\"crud-node\","
                                   "\"resourceVersion\":\"%s\",\"labels\":{\"c\":\"3\"}}}", old_rv);
        ASSERT_ERROR(run_call(c, "PUT", "/api/v1/nodes/crud-node", NULL, stale_body, KUBE_CALL_IDEMPOTENT,
                              &res), ESTALE);
        ASSERT_EQ(res.status, 409);
        ASSERT_EQ(kube_test_count_requests(server, "PUT", "/api/v1/nodes/crud-node"), 1);

        ASSERT_OK(get(c, "/api/v1/nodes/crud-node", &res));
        put_body = strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Node\","
                                 "\"metadata\":{\"name\":\"crud-node\","
                                 "\"resourceVersion\":\"%s\",\"labels\":{\"c\":\"3\"}}}",
                                 json_get_string(res.body, "metadata.resourceVersion"));
        ASSERT_OK(run_call(c, "PUT", "/api/v1/nodes/crud-node", NULL, put_body, KUBE_CALL_IDEMPOTENT, &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_STREQ(json_get_string(res.body, "metadata.labels.c"), "3");
        ASSERT_TRUE(json_get(res.body, "metadata.labels.a") == NULL);

        ASSERT_OK(run_call(c, "DELETE", "/api/v1/nodes/crud-node", NULL, NULL, 0, &res));
        ASSERT_EQ(res.status, 200);

        ASSERT_ERROR(get(c, "/api/v1/nodes/crud-node", &res),
                     ENOENT);
        ASSERT_EQ(res.status, 404);
        ASSERT_STREQ(json_get_string(res.body, "reason"), "NotFound");
        ASSERT_ERROR(run_call(c, "DELETE", "/api/v1/nodes/crud-node", NULL, NULL, 0, &res), ENOENT);

        /* a 404 is an answer, not a failure: not repeated */
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes/crud-node"), 3);

        result_clear(&res);
}

TEST(lease_crud) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        _cleanup_free_ char *stale = NULL, *update = NULL;
        const char *base = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
        const char *path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/crud-lease";
        Result res = {};

        reset_server();

        ASSERT_OK(run_call(c, "POST", base, NULL,
                           "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                           "\"metadata\":{\"name\":\"crud-lease\",\"labels\":{\"nodereboot.io/lock\":\"x\"}},"
                           "\"spec\":{\"leaseDurationSeconds\":60}}", 0, &res));
        ASSERT_EQ(res.status, 201);
        stale = strdup(json_get_string(res.body, "metadata.resourceVersion"));

        /* acquire: write holderIdentity with the resourceVersion just read */
        update = strdup_printf("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                               "\"metadata\":{\"name\":\"crud-lease\",\"resourceVersion\":\"%s\","
                               "\"labels\":{\"nodereboot.io/lock\":\"x\"}},"
                               "\"spec\":{\"holderIdentity\":\"node-a\",\"leaseDurationSeconds\":60}}",
                               stale);
        ASSERT_OK(run_call(c, "PUT", path, NULL, update, KUBE_CALL_IDEMPOTENT, &res));
        ASSERT_STREQ(json_get_string(res.body, "spec.holderIdentity"), "node-a");

        /* a second node with the same, now stale, resourceVersion loses */
        free(update);
        update = strdup_printf("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                               "\"metadata\":{\"name\":\"crud-lease\",\"resourceVersion\":\"%s\","
                               "\"labels\":{\"nodereboot.io/lock\":\"x\"}},"
                               "\"spec\":{\"holderIdentity\":\"node-b\",\"leaseDurationSeconds\":60}}",
                               stale);
        ASSERT_ERROR(run_call(c, "PUT", path, NULL, update, KUBE_CALL_IDEMPOTENT, &res), ESTALE);
        ASSERT_STREQ(json_get_string(res.body, "reason"), "Conflict");

        ASSERT_OK(get(c, path, &res));
        ASSERT_STREQ(json_get_string(res.body, "spec.holderIdentity"), "node-a");

        ASSERT_OK(run_call(c, "PATCH", path, "application/merge-patch+json",
                           "{\"spec\":{\"holderIdentity\":null}}", 0, &res));
        ASSERT_TRUE(json_get_string(res.body, "spec.holderIdentity") == NULL);

        ASSERT_OK(get(c, "/apis/coordination.k8s.io/v1/namespaces/default/leases"
                      "?labelSelector=nodereboot.io%2Flock%3Dx", &res));
        ASSERT_EQ(json_array_length(json_get(res.body, "items")), 1);

        ASSERT_OK(run_call(c, "DELETE", path, NULL, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\"}",
                           0, &res));
        ASSERT_ERROR(get(c, path, &res), ENOENT);
        result_clear(&res);
}

TEST(wrong_token) {
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        Kubeconfig k;
        Result res = {};

        reset_server();
        kube_test_server_kubeconfig(server, &k);
        k.token = (char *) "not-a-valid-token";
        c = new_client(&k);

        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EACCES);
        ASSERT_EQ(res.status, 401);
        ASSERT_STREQ(json_get_string(res.body, "kind"), "Status");
        /* no token file to re-read, and 401 is not retried */
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 1);

        /* no credentials at all */
        c = kube_client_free(c);
        k.token = NULL;
        c = new_client(&k);
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EACCES);
        result_clear(&res);
}

TEST(tls_ca) {
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        _cleanup_free_ char *ca = NULL;
        size_t ca_size;
        Kubeconfig k;
        Result res = {};

        /* the wrong CA (as PEM data): refused before anything is sent */
        reset_server();
        kube_test_server_kubeconfig(server, &k);
        k.ca_file = NULL;
        k.ca_data = (char *) WRONG_CA_PEM;
        k.ca_data_size = strlen(WRONG_CA_PEM);
        c = new_client(&k);
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EPERM);
        ASSERT_EQ(res.status, 0);
        ASSERT_ERROR(run_call(c, "POST", "/api/v1/nodes", NULL, NODE("x"), 0, &res), EPERM);
        ASSERT_EQ(kube_test_count_requests(server, NULL, NULL), 0);

        /* the system's CAs are no substitute for the cluster's */
        c = kube_client_free(c);
        k.ca_data = NULL;
        k.ca_data_size = 0;
        k.ca_file = (char *) "/etc/ssl/certs/ca-certificates.crt";
        if (access(k.ca_file, R_OK) == 0) {
                c = new_client(&k);
                ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EPERM);
                c = kube_client_free(c);
        }
        ASSERT_EQ(kube_test_count_requests(server, NULL, NULL), 0);

        /* the right CA as PEM data */
        ASSERT_OK(read_full_file(server->ca_file, 1024 * 1024, &ca, &ca_size));
        k.ca_file = NULL;
        k.ca_data = ca;
        k.ca_data_size = ca_size;
        c = new_client(&k);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        ASSERT_EQ(res.status, 200);
        c = kube_client_free(c);

        /* and insecure-skip-tls-verify with no CA at all */
        k.ca_data = NULL;
        k.ca_data_size = 0;
        k.insecure_skip_tls_verify = true;
        c = new_client(&k);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 2);
        result_clear(&res);
}

TEST(tls_server_name) {
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        Kubeconfig k;
        Result res = {};

        reset_server();
        kube_test_server_kubeconfig(server, &k);

        /* The server's certificate names localhost and 127.0.0.1. A name it does not carry fails
         * verification, which proves the name is used for TLS; and since .invalid never resolves,
         * reaching the TLS stage at all proves the connection went to the server's address. */
        k.tls_server_name = (char *) "apiserver.invalid";
        c = new_client(&k);
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EPERM);
        ASSERT_EQ(kube_test_count_requests(server, NULL, NULL), 0);
        c = kube_client_free(c);

        k.tls_server_name = (char *) "localhost";
        c = new_client(&k);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 1);
        result_clear(&res);
}

TEST(client_certificate) {
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        _cleanup_free_ char *cert = NULL, *key = NULL;
        _cleanup_json_ json_object *log = NULL;
        size_t cert_size, key_size;
        Kubeconfig k = {};
        Result res = {};

        reset_server();

        /* the files admin-cert.kubeconfig names, no token */
        k.server = server->url;
        k.ca_file = server->ca_file;
        k.client_cert_file = server->admin_cert_file;
        k.client_key_file = server->admin_key_file;
        c = new_client(&k);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        c = kube_client_free(c);

        /* the same as PEM data */
        ASSERT_OK(read_full_file(server->admin_cert_file, 1024 * 1024, &cert, &cert_size));
        ASSERT_OK(read_full_file(server->admin_key_file, 1024 * 1024, &key, &key_size));
        k.client_cert_file = k.client_key_file = NULL;
        k.client_cert_data = cert;
        k.client_cert_data_size = cert_size;
        k.client_key_data = key;
        k.client_key_data_size = key_size;
        c = new_client(&k);
        ASSERT_OK(get(c, "/api/v1/namespaces", &res));
        ASSERT_EQ(json_array_length(json_get(res.body, "items")), 4);

        /* the server knew us by the certificate alone */
        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        ASSERT_EQ(json_array_length(log), 2);
        for (size_t i = 0; i < 2; i++)
                ASSERT_STREQ(json_get_string(json_object_array_get_idx(log, i), "user"), "admin");
        result_clear(&res);
}

static void write_token_file(const char *path, const char *token) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, token, strlen(token)), (ssize_t) strlen(token));
        ASSERT_EQ(write(fd, "\n", 1), 1);
}

/* Rewrites the token file in place, keeping inode, size and mtime: a change stat() cannot see. */
static void rewrite_token_unseen(const char *path, const char *token) {
        struct timespec times[2];
        struct stat st, after;

        ASSERT_OK(stat(path, &st));
        ASSERT_EQ((size_t) st.st_size, strlen(token) + 1);
        write_token_file(path, token);
        times[0] = st.st_atim;
        times[1] = st.st_mtim;
        ASSERT_OK(utimensat(AT_FDCWD, path, times, 0));
        ASSERT_OK(stat(path, &after));
        ASSERT_TRUE(after.st_ino == st.st_ino && after.st_size == st.st_size &&
                    after.st_mtim.tv_sec == st.st_mtim.tv_sec && after.st_mtim.tv_nsec == st.st_mtim.tv_nsec);
}

TEST(token_file) {
        _cleanup_(kube_client_freep) KubeClient *c = NULL, *admin = new_admin_client();
        _cleanup_free_ char *path = strjoin(server->state_dir, "/test.token");
        _cleanup_free_ char *same_length_wrong = strdup(server->admin_token);
        _cleanup_json_ json_object *log = NULL;
        Kubeconfig k;
        Result res = {};

        ASSERT_TRUE(path && same_length_wrong);
        memset(same_length_wrong, '0', strlen(same_length_wrong));
        kube_test_server_kubeconfig(server, &k);
        k.token = NULL;
        k.token_file = path;

        /* a rotation that stat() notices is picked up before the request: one request each */
        reset_server();
        write_token_file(path, "wrong");
        c = new_client(&k);
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EACCES);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 1);
        write_token_file(path, server->admin_token);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 2);
        c = kube_client_free(c);

        /* A rotation stat() cannot see: the 401 makes the client re-read the file and send the
         * request once more, a POST too (the server refused it before acting on it). */
        reset_server();
        write_token_file(path, same_length_wrong);
        c = new_client(&k);
        rewrite_token_unseen(path, server->admin_token);
        ASSERT_OK(run_call(c, "POST", "/api/v1/nodes", NULL,
                           NODE("token-node"),
                           0, &res));
        ASSERT_EQ(res.status, 201);
        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        ASSERT_EQ(json_array_length(log), 2);
        ASSERT_EQ(json_object_get_int(json_get(json_object_array_get_idx(log, 0), "status")), 401);
        ASSERT_EQ(json_object_get_int(json_get(json_object_array_get_idx(log, 1), "status")), 201);
        c = kube_client_free(c);

        /* only once: a token that is still wrong after the re-read fails after two requests */
        reset_server();
        write_token_file(path, "wrong-again");
        c = new_client(&k);
        rewrite_token_unseen(path, "wrong-agai2");
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EACCES);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 2);

        /* and a 401 with an unchanged file is not repeated */
        reset_server();
        ASSERT_ERROR(get(c, "/api/v1/nodes", &res), EACCES);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/nodes"), 1);

        /* a token file that disappears keeps the last token */
        write_token_file(path, server->admin_token);
        ASSERT_OK(get(c, "/api/v1/nodes", &res));
        ASSERT_OK(unlink(path));
        ASSERT_OK(get(c, "/api/v1/nodes", &res));

        ASSERT_OK(run_call(admin, "DELETE", "/api/v1/nodes/token-node", NULL, NULL, 0, &res));
        result_clear(&res);
}

TEST(retry_5xx) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};

        reset_server();
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":503,\"count\":2");
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 3);

        /* a POST is not repeated */
        reset_server();
        add_fault("^/api/v1/nodes$", "\"action\":\"status\",\"status\":503,\"count\":1");
        ASSERT_ERROR(run_call(c, "POST", "/api/v1/nodes", NULL,
                              NODE("retry-node"),
                              0, &res), EIO);
        ASSERT_EQ(res.status, 503);
        ASSERT_STREQ(json_get_string(res.body, "kind"), "Status");
        ASSERT_EQ(kube_test_count_requests(server, "POST", "/api/v1/nodes"), 1);

        /* 429 is retried, unless the caller wants to see it */
        reset_server();
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":429,\"count\":1");
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 2);
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":429,\"count\":1");
        ASSERT_ERROR(run_call(c, "GET", "/api/v1/namespaces/default", NULL, NULL,
                              KUBE_CALL_IDEMPOTENT | KUBE_CALL_NO_RETRY_ON_429, &res), EBUSY);
        ASSERT_EQ(res.status, 429);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 3);

        /* the retry limit: 1 + 3 requests, then the handler gets the last answer */
        reset_server();
        kube_client_set_retry(c, 3, 10 * USEC_PER_MSEC, 50 * USEC_PER_MSEC);
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":500,\"count\":50");
        ASSERT_ERROR(get(c, "/api/v1/namespaces/default", &res), EIO);
        ASSERT_EQ(res.status, 500);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 4);
        result_clear(&res);
}

TEST(retry_dropped_connection) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};

        reset_server();
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"drop\",\"count\":2");
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 3);

        /* A POST whose connection dies may have been carried out: the caller hears of it, and
         * nothing repeats it, not even libcurl's silent resend on a reused connection (the
         * connection of the GET above is still open). */
        reset_server();
        add_fault("^/api/v1/nodes$", "\"method\":\"POST\",\"action\":\"drop\",\"count\":1");
        ASSERT_ERROR(run_call(c, "POST", "/api/v1/nodes", NULL,
                              NODE("drop-node"),
                              0, &res), ECONNREFUSED);
        ASSERT_EQ(res.status, 0);
        ASSERT_EQ(kube_test_count_requests(server, "POST", "/api/v1/nodes"), 1);
        ASSERT_ERROR(get(c, "/api/v1/nodes/drop-node", &res), ENOENT);
        result_clear(&res);
}

TEST(retry_after_header) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};
        usec_t start;

        /* back-off of 10 ms, but the server asks for 1 s */
        reset_server();
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":503,"
                  "\"retry_after\":1,\"count\":1");
        start = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        ASSERT_TRUE(msec_since(start) >= 950);
        ASSERT_EQ(res.retry_after_usec, 0);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces/default"), 2);

        /* a 429 the caller sees carries the server's advice */
        add_fault("^/api/v1/namespaces/default$", "\"action\":\"status\",\"status\":429,"
                  "\"retry_after\":7,\"count\":1");
        start = now_usec(CLOCK_MONOTONIC);
        ASSERT_ERROR(run_call(c, "GET", "/api/v1/namespaces/default", NULL, NULL,
                              KUBE_CALL_IDEMPOTENT | KUBE_CALL_NO_RETRY_ON_429, &res), EBUSY);
        ASSERT_TRUE(msec_since(start) < 900);
        ASSERT_EQ(res.retry_after_usec, 7 * USEC_PER_SEC);
        result_clear(&res);
}

TEST(timeout) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};
        usec_t start;

        reset_server();
        kube_client_set_timeouts(c, 5 * USEC_PER_SEC, 300 * USEC_PER_MSEC);
        add_fault("^/api/v1/namespaces/kube-public$", "\"action\":\"delay\",\"delay\":2,\"count\":1");
        start = now_usec(CLOCK_MONOTONIC);
        ASSERT_ERROR(run_call(c, "GET", "/api/v1/namespaces/kube-public", NULL, NULL, 0, &res), ETIMEDOUT);
        ASSERT_TRUE(msec_since(start) < 1500);

        /* idempotent: the next attempt is not delayed */
        add_fault("^/api/v1/namespaces/kube-public$", "\"action\":\"delay\",\"delay\":2,\"count\":1");
        ASSERT_OK(get(c, "/api/v1/namespaces/kube-public", &res));
        result_clear(&res);
}

TEST(body_cap) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};

        reset_server();
        kube_client_set_max_body_size(c, 256);
        ASSERT_ERROR(get(c, "/api/v1/namespaces", &res), EFBIG);
        ASSERT_TRUE(res.body == NULL);
        ASSERT_EQ(kube_test_count_requests(server, "GET", "/api/v1/namespaces"), 1);

        kube_client_set_max_body_size(c, 64 * 1024);
        ASSERT_OK(get(c, "/api/v1/namespaces", &res));
        ASSERT_EQ(json_array_length(json_get(res.body, "items")), 4);
        result_clear(&res);
}

TEST(outage) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Result res = {};
        usec_t start;

        reset_server();
        kube_client_set_retry(c, 40, 50 * USEC_PER_MSEC, 400 * USEC_PER_MSEC);
        ASSERT_OK(kube_test_control(server, "POST", "/outage", "{\"seconds\":2}", NULL));
        start = now_usec(CLOCK_MONOTONIC);

        /* a write fails at once */
        ASSERT_ERROR(run_call(c, "POST", "/api/v1/nodes", NULL,
                              NODE("outage-node"),
                              0, &res), ECONNREFUSED);
        ASSERT_TRUE(msec_since(start) < 1000);

        /* a read waits it out */
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_TRUE(msec_since(start) >= 1500);
        ASSERT_EQ(kube_test_count_requests(server, "POST", "/api/v1/nodes"), 0);
        result_clear(&res);
}

typedef struct WatchLog {
        unsigned added, modified, deleted, synced, errors;
        bool flag;                      /* set by the event the test waits for */
        KubeWatchEvent wait_event;
        const char *wait_name;
        char *last_name;
        int last_error;
        bool kind_seen;
} WatchLog;

static void watch_log_expect(WatchLog *l, KubeWatchEvent e, const char *name) {
        l->flag = false;
        l->wait_event = e;
        l->wait_name = name;
}

static void on_watch(KubeWatch *w, KubeWatchEvent type, json_object *object, int error, void *userdata) {
        WatchLog *l = userdata;
        const char *name = json_get_string(object, "metadata.name");

        switch (type) {
        case KUBE_WATCH_ADDED:
                l->added++;
                /* list items get the kind their events carry */
                l->kind_seen = streq_ptr(json_get_string(object, "kind"), "ConfigMap");
                ASSERT_TRUE(l->kind_seen);
                break;
        case KUBE_WATCH_MODIFIED:
                l->modified++;
                break;
        case KUBE_WATCH_DELETED:
                l->deleted++;
                break;
        case KUBE_WATCH_SYNCED:
                ASSERT_TRUE(object == NULL);
                l->synced++;
                break;
        case KUBE_WATCH_ERROR:
                ASSERT_TRUE(object == NULL);
                ASSERT_TRUE(error < 0);
                l->errors++;
                l->last_error = error;
                break;
        default:
                ASSERT_TRUE(false);
        }
        if (name)
                ASSERT_OK(free_and_strdup(&l->last_name, name));
        if (type == l->wait_event && (!l->wait_name || streq_ptr(name, l->wait_name)))
                l->flag = true;
}

/* Requests on path that were lists (no watch=) or watches, in the server's log. */
static void count_list_and_watch(const char *path, unsigned *ret_lists, unsigned *ret_watches,
                                 unsigned *ret_watch_with_rv) {
        _cleanup_json_ json_object *log = NULL;
        unsigned lists = 0, watches = 0, with_rv = 0;

        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (!streq_ptr(json_get_string(e, "path"), path) ||
                    !streq_ptr(json_get_string(e, "method"), "GET"))
                        continue;
                if (json_get_string(e, "query.watch")) {
                        watches++;
                        ASSERT_STREQ(json_get_string(e, "query.allowWatchBookmarks"), "true");
                        ASSERT_STREQ(json_get_string(e, "query.labelSelector"), "test=watch");
                        if (!isempty(json_get_string(e, "query.resourceVersion")))
                                with_rv++;
                } else
                        lists++;
        }
        *ret_lists = lists;
        *ret_watches = watches;
        *ret_watch_with_rv = with_rv;
}

static void configmap_patch(KubeClient *c, const char *name, const char *patch) {
        _cleanup_free_ char *path = strjoin("/api/v1/namespaces/default/configmaps/", name);
        Result res = {};

        ASSERT_OK(run_call(c, "PATCH", path, "application/merge-patch+json", patch, 0, &res));
        result_clear(&res);
}

/* ConfigMaps: a resource no simulated controller writes (the bench's kubelets post Node status), so
 * every event is the test's own. */
TEST(watch) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        _cleanup_(kube_watch_freep) KubeWatch *w = NULL;
        _cleanup_free_ char *many = NULL;
        unsigned lists, watches, with_rv, synced_before;
        usec_t live;
        WatchLog l = { .wait_event = KUBE_WATCH_SYNCED };
        Result res = {};
        size_t n = 0;

        reset_server();
        kube_client_set_watch_timeout(c, 2);
        ASSERT_OK(run_call(c, "POST", "/api/v1/namespaces/default/configmaps", NULL,
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"watch-a\",\"namespace\":\"default\","
                           "\"labels\":{\"test\":\"watch\"}}}", 0, &res));
        /* not selected */
        ASSERT_OK(run_call(c, "POST", "/api/v1/namespaces/default/configmaps", NULL,
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"watch-other\",\"namespace\":\"default\"}}",
                           0, &res));

        /* the list: each item ADDED, then SYNCED */
        ASSERT_OK(kube_client_watch(c, "/api/v1/namespaces/default/configmaps?labelSelector=test%3Dwatch", on_watch, &l, &w));
        ASSERT_TRUE(kube_watch_live_since(w) == USEC_INFINITY);
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.added, 1);
        ASSERT_EQ(l.synced, 1);
        ASSERT_STREQ(l.last_name, "watch-a");
        /* seeing since the list */
        live = kube_watch_live_since(w);
        ASSERT_TRUE(live != USEC_INFINITY && live <= now_usec(CLOCK_MONOTONIC));

        /* the stream */
        watch_log_expect(&l, KUBE_WATCH_ADDED, "watch-b");
        ASSERT_OK(run_call(c, "POST", "/api/v1/namespaces/default/configmaps", NULL,
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"watch-b\",\"namespace\":\"default\","
                           "\"labels\":{\"test\":\"watch\"}}}", 0, &res));
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        watch_log_expect(&l, KUBE_WATCH_MODIFIED, "watch-b");
        configmap_patch(c, "watch-b", "{\"data\":{\"k\":\"v\"}}");
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        watch_log_expect(&l, KUBE_WATCH_DELETED, "watch-b");
        ASSERT_OK(run_call(c, "DELETE", "/api/v1/namespaces/default/configmaps/watch-b", NULL, NULL, 0, &res));
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.added, 2);
        ASSERT_EQ(l.modified, 1);
        ASSERT_EQ(l.deleted, 1);
        ASSERT_EQ(l.errors, 0);

        /* The server ends each stream after timeoutSeconds=2: the watch resumes from the last
         * resourceVersion at once, without listing again, and misses nothing. */
        ASSERT_OK(kube_test_run_for(event, 4500 * USEC_PER_MSEC));
        count_list_and_watch("/api/v1/namespaces/default/configmaps", &lists, &watches, &with_rv);
        ASSERT_EQ(lists, 1);
        ASSERT_TRUE(watches >= 3);
        ASSERT_EQ(with_rv, watches);
        ASSERT_EQ(l.synced, 1);
        ASSERT_EQ(l.errors, 0);
        /* a stream the server ended is no break */
        ASSERT_TRUE(kube_watch_live_since(w) == live);
        watch_log_expect(&l, KUBE_WATCH_MODIFIED, "watch-a");
        configmap_patch(c, "watch-a", "{\"metadata\":{\"labels\":{\"step\":\"resumed\"}}}");
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.modified, 2);

        /* 410 Gone as the answer to a watch request: list again */
        watch_log_expect(&l, KUBE_WATCH_SYNCED, NULL);
        add_fault("^/api/v1/namespaces/default/configmaps$", "\"method\":\"GET\",\"action\":\"status\",\"status\":410,\"count\":1");
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.synced, 2);
        ASSERT_EQ(l.added, 3);          /* watch-a again */
        count_list_and_watch("/api/v1/namespaces/default/configmaps", &lists, &watches, &with_rv);
        ASSERT_EQ(lists, 2);

        /* 410 inside the stream: while the server is down, 2100 writes push the watch's
         * resourceVersion out of the server's history (2000 events); the resumed watch gets an
         * ERROR event with code 410 and lists again. The outage is reported on the way. */
        synced_before = l.synced;
        watch_log_expect(&l, KUBE_WATCH_ERROR, NULL);
        ASSERT_OK(kube_test_control(server, "POST", "/outage", "{\"seconds\":60}", NULL));
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_TRUE(l.last_error == -ECONNREFUSED);
        ASSERT_TRUE(kube_watch_live_since(w) == USEC_INFINITY);

        many = malloc(2100 * 128 + 16);
        ASSERT_TRUE(many);
        n += (size_t) sprintf(many + n, "[");
        for (int i = 0; i < 2100; i++)
                n += (size_t) sprintf(many + n, "%s{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                                      "\"metadata\":{\"name\":\"cm-%d\",\"namespace\":\"default\"}}",
                                      i ? "," : "", i);
        sprintf(many + n, "]");
        ASSERT_OK(kube_test_control(server, "POST", "/objects", many, NULL));
        ASSERT_OK(kube_test_control(server, "POST", "/outage", "{\"seconds\":0}", NULL));

        watch_log_expect(&l, KUBE_WATCH_SYNCED, NULL);
        ASSERT_OK(kube_test_run_until(event, &l.flag, 60 * USEC_PER_SEC));
        ASSERT_EQ(l.synced, synced_before + 1);
        {
                _cleanup_json_ json_object *log = NULL;
                bool saw_expired_resume = false;

                /* the resume that got the in-stream 410 was answered 200, then came a list */
                ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
                for (size_t i = 0; i + 1 < json_array_length(log); i++) {
                        json_object *a = json_object_array_get_idx(log, i);
                        json_object *b = json_object_array_get_idx(log, i + 1);

                        int64_t status = 0;

                        if (json_get_string(a, "query.watch") && json_get_int64(a, "status", &status) &&
                            status == 200 && streq_ptr(json_get_string(b, "path"), "/api/v1/namespaces/default/configmaps") &&
                            !json_get_string(b, "query.watch"))
                                saw_expired_resume = true;
                }
                ASSERT_TRUE(saw_expired_resume);
        }

        /* and the watch goes on, seeing again since after the outage */
        ASSERT_TRUE(kube_watch_live_since(w) != USEC_INFINITY && kube_watch_live_since(w) > live);
        watch_log_expect(&l, KUBE_WATCH_MODIFIED, "watch-a");
        configmap_patch(c, "watch-a", "{\"metadata\":{\"labels\":{\"step\":\"relisted\"}}}");
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));

        /* after the watch is freed, its handler is never called again */
        w = kube_watch_free(w);
        {
                unsigned total = l.added + l.modified + l.deleted + l.synced + l.errors;

                configmap_patch(c, "watch-a", "{\"metadata\":{\"labels\":{\"step\":\"freed\"}}}");
                ASSERT_OK(kube_test_run_for(event, 300 * USEC_PER_MSEC));
                ASSERT_EQ(l.added + l.modified + l.deleted + l.synced + l.errors, total);
        }

        ASSERT_OK(run_call(c, "DELETE", "/api/v1/namespaces/default/configmaps/watch-a", NULL, NULL, 0, &res));
        ASSERT_OK(run_call(c, "DELETE", "/api/v1/namespaces/default/configmaps/watch-other", NULL, NULL, 0, &res));
        free(l.last_name);
        result_clear(&res);
}

/* A list in pages: limit=, then continue= until the server gives no token; every page's items are
 * ADDED, SYNCED comes once. With KUBE_WATCH_LIST_FROM_CACHE the first list asks for the cache
 * (resourceVersion=0), which answers whole (kube-apiserver 1.28 ignores limit there), and a list
 * after 410 Gone for the current state, in pages of one snapshot. */
TEST(watch_pages) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        _cleanup_(kube_watch_freep) KubeWatch *w = NULL;
        _cleanup_json_ json_object *log = NULL;
        WatchLog l = { .wait_event = KUBE_WATCH_SYNCED };
        unsigned pages = 0, continued = 0, from_cache = 0, first_rv_zero = 0;
        Result res = {};

        reset_server();
        kube_client_set_list_page_size(c, 2);
        ASSERT_EQ(kube_client_get_list_page_size(c), 2U);
        for (int i = 0; i < 5; i++) {
                _cleanup_free_ char *body = strdup_printf(
                        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"page-%d\","
                        "\"namespace\":\"default\",\"labels\":{\"test\":\"pages\"}}}", i);
                ASSERT_OK(run_call(c, "POST", "/api/v1/namespaces/default/configmaps", NULL, body, 0, &res));
        }

        ASSERT_OK(kube_client_watch_full(c, "/api/v1/namespaces/default/configmaps?labelSelector=test%3Dpages",
                                         KUBE_WATCH_LIST_FROM_CACHE, on_watch, &l, &w));
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.added, 5);
        ASSERT_EQ(l.synced, 1);

        /* 410 Gone: the list starts over, from the current state */
        watch_log_expect(&l, KUBE_WATCH_SYNCED, NULL);
        add_fault("^/api/v1/namespaces/default/configmaps$", "\"method\":\"GET\",\"action\":\"status\",\"status\":410,\"count\":1");
        ASSERT_OK(kube_test_run_until(event, &l.flag, 10 * USEC_PER_SEC));
        ASSERT_EQ(l.added, 10);
        ASSERT_EQ(l.synced, 2);

        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (!streq_ptr(json_get_string(e, "path"), "/api/v1/namespaces/default/configmaps") ||
                    json_get_string(e, "query.watch") || !streq_ptr(json_get_string(e, "method"), "GET") ||
                    json_get_string(e, "fault"))
                        continue;
                ASSERT_STREQ(json_get_string(e, "query.limit"), "2");
                pages++;
                if (json_get_string(e, "query.continue")) {
                        continued++;
                        ASSERT_TRUE(json_get_string(e, "query.resourceVersion") == NULL);
                } else if (streq_ptr(json_get_string(e, "query.resourceVersion"), "0")) {
                        from_cache++;
                        if (pages == 1)
                                first_rv_zero++;
                }
        }
        ASSERT_EQ(pages, 4U);           /* 5 from the cache, then 2 + 2 + 1 */
        ASSERT_EQ(continued, 2U);
        ASSERT_EQ(from_cache, 1U);      /* the first list only */
        ASSERT_EQ(first_rv_zero, 1U);

        w = kube_watch_free(w);
        for (int i = 0; i < 5; i++) {
                _cleanup_free_ char *path = strdup_printf("/api/v1/namespaces/default/configmaps/page-%d", i);
                ASSERT_OK(run_call(c, "DELETE", path, NULL, NULL, 0, &res));
        }
        free(l.last_name);
        result_clear(&res);
}

/* ---- handlers that free things --------------------------------------------------------------- */

typedef struct FreeCtx {
        KubeClient *client;
        KubeWatch *watch;
        KubeCall *other;
        unsigned calls;
        unsigned events;
        bool done;
} FreeCtx;

static void on_free_client(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        FreeCtx *f = userdata;

        f->calls++;
        f->done = true;
        f->client = kube_client_free(f->client);
}

static void on_cancel_other(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        FreeCtx *f = userdata;

        f->calls++;
        f->done = true;
        ASSERT_OK(error);
        f->other = kube_call_cancel(f->other);
        /* and start a new one from inside the handler */
        ASSERT_OK(kube_client_call(c, "GET", "/api/v1/namespaces/kube-system", NULL, NULL, 0,
                                   on_free_client, f, NULL));
}

static void on_never(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        ASSERT_TRUE(false);
}

static void on_watch_free_self(KubeWatch *w, KubeWatchEvent type, json_object *object, int error,
                               void *userdata) {
        FreeCtx *f = userdata;

        ASSERT_TRUE(w == f->watch);
        f->events++;
        f->done = true;
        f->watch = kube_watch_free(f->watch);
}

static void on_watch_free_client(KubeWatch *w, KubeWatchEvent type, json_object *object, int error,
                                 void *userdata) {
        FreeCtx *f = userdata;

        f->events++;
        f->done = true;
        f->client = kube_client_free(f->client);
}

TEST(free_from_handlers) {
        KubeCall *held = NULL;
        FreeCtx f = {};

        reset_server();

        /* the first handler frees the client while other calls are in flight: they never
         * complete, the floating ones are freed with it, the held one stays cancellable */
        f.client = new_admin_client();
        /* the held call is slow, so it is surely still in flight when the client goes */
        add_fault("^/api/v1/namespaces/kube-node-lease$", "\"action\":\"delay\",\"delay\":2,\"count\":1");
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/namespaces/default", NULL, NULL,
                                   KUBE_CALL_IDEMPOTENT, on_free_client, &f, NULL));
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/namespaces/default", NULL, NULL,
                                   KUBE_CALL_IDEMPOTENT, on_free_client, &f, NULL));
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/namespaces/kube-node-lease", NULL, NULL,
                                   KUBE_CALL_IDEMPOTENT, on_free_client, &f, &held));
        ASSERT_OK(kube_test_run_until(event, &f.done, CALL_TIMEOUT_USEC));
        ASSERT_OK(kube_test_run_for(event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(f.calls, 1);
        ASSERT_TRUE(f.client == NULL);
        held = kube_call_cancel(held);

        /* a handler cancels another call in flight and starts a new one */
        f = (FreeCtx) { .client = new_admin_client() };
        add_fault("^/api/v1/namespaces/kube-public$", "\"action\":\"delay\",\"delay\":0.5,\"count\":1");
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/namespaces/kube-public", NULL, NULL, 0,
                                   on_never, NULL, &f.other));
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/namespaces/default", NULL, NULL, 0,
                                   on_cancel_other, &f, NULL));
        ASSERT_OK(kube_test_run_until(event, &f.done, CALL_TIMEOUT_USEC));
        f.done = false;
        ASSERT_OK(kube_test_run_until(event, &f.done, CALL_TIMEOUT_USEC));   /* the new call */
        ASSERT_OK(kube_test_run_for(event, 800 * USEC_PER_MSEC));
        ASSERT_EQ(f.calls, 2);
        ASSERT_TRUE(f.client == NULL);

        /* a call cancelled before it ran */
        f = (FreeCtx) { .client = new_admin_client() };
        ASSERT_OK(kube_client_call(f.client, "GET", "/api/v1/nodes", NULL, NULL, 0, on_never, NULL, &held));
        held = kube_call_cancel(held);
        ASSERT_OK(kube_test_run_for(event, 200 * USEC_PER_MSEC));

        /* a watch handler frees its watch at the first event */
        f.done = false;
        ASSERT_OK(kube_client_watch(f.client, "/api/v1/namespaces", on_watch_free_self, &f, &f.watch));
        ASSERT_OK(kube_test_run_until(event, &f.done, CALL_TIMEOUT_USEC));
        ASSERT_OK(kube_test_run_for(event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(f.events, 1);
        ASSERT_TRUE(f.watch == NULL);

        /* a watch handler frees the client; the watch stays the owner's to free */
        f.done = false;
        f.events = 0;
        ASSERT_OK(kube_client_watch(f.client, "/api/v1/namespaces", on_watch_free_client, &f, &f.watch));
        ASSERT_OK(kube_test_run_until(event, &f.done, CALL_TIMEOUT_USEC));
        ASSERT_OK(kube_test_run_for(event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(f.events, 1);
        ASSERT_TRUE(f.client == NULL);
        f.watch = kube_watch_free(f.watch);
}

TEST(invalid_arguments) {
        _cleanup_(kube_client_freep) KubeClient *c = new_admin_client();
        Kubeconfig k = { .server = (char *) "ftp://127.0.0.1:1" };
        KubeClient *bad = NULL;
        KubeWatch *w = NULL;

        ASSERT_ERROR(kube_client_new(&bad, event, &k), EINVAL);
        k.server = NULL;
        ASSERT_ERROR(kube_client_new(&bad, event, &k), EINVAL);
        ASSERT_ERROR(kube_client_call(c, "get", "/api", NULL, NULL, 0, on_never, NULL, NULL), EINVAL);
        ASSERT_ERROR(kube_client_call(c, "GET", "api", NULL, NULL, 0, on_never, NULL, NULL), EINVAL);
        ASSERT_ERROR(kube_client_call(c, "GET", "/api", NULL, NULL, 0, NULL, NULL, NULL), EINVAL);
        ASSERT_ERROR(kube_client_watch(c, "api/v1/nodes", on_watch, NULL, &w), EINVAL);
        ASSERT_TRUE(kube_call_cancel(NULL) == NULL);
        ASSERT_TRUE(kube_watch_free(NULL) == NULL);
        ASSERT_TRUE(kube_client_free(NULL) == NULL);
}

static void assert_offset_near(KubeClient *c, double seconds) {
        int64_t offset = (int64_t) kube_client_server_now(c) - (int64_t) now_usec(CLOCK_REALTIME);
        int64_t want = (int64_t) (seconds * 1e6);

        if (llabs(offset - want) > (int64_t) (1500 * USEC_PER_MSEC))
                fprintf(stderr, "server clock offset %lld us, expected about %lld us\n", (long long) offset,
                        (long long) want);
        ASSERT_TRUE(llabs(offset - want) <= (int64_t) (1500 * USEC_PER_MSEC));
}

TEST(server_clock) {
        _cleanup_(kube_test_server_stopp) KubeTestServer *s = NULL;
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        Kubeconfig k;
        Result res = {};

        /* a server whose clock runs an hour ahead of ours */
        ASSERT_OK(kube_test_server_start(&s, "--clock-offset 3600"));
        kube_test_server_kubeconfig(s, &k);
        c = new_client(&k);

        /* before any response, our own clock */
        assert_offset_near(c, 0);
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        assert_offset_near(c, 3600);

        /* the estimate follows the server */
        ASSERT_OK(kube_test_control(s, "POST", "/clock", "{\"offset\":-300}", NULL));
        ASSERT_OK(get(c, "/api/v1/namespaces/default", &res));
        assert_offset_near(c, -300);
        result_clear(&res);
}

int main(void) {
        log_set_max_level(getenv("KUBE_TEST_QUIET") ? LOG_INFO : LOG_DEBUG);

        RUN(errno_mapping);
        RUN(retriable);
        RUN(backoff);
        RUN(retry_after_parse);
        RUN(line_splitting);
        RUN(line_buffer_limits);
        RUN(watch_event_names);

        if (!kube_test_server_available()) {
                fprintf(stderr, "test API server not available ($SOURCE_ROOT unset?), skipping the rest\n");
                return 77;
        }

        ASSERT_OK(sd_event_new(&event));
        ASSERT_OK(kube_test_server_start(&server, NULL));

        RUN(invalid_arguments);
        RUN(node_crud);
        RUN(lease_crud);
        RUN(wrong_token);
        RUN(tls_ca);
        RUN(tls_server_name);
        RUN(client_certificate);
        RUN(token_file);
        RUN(retry_5xx);
        RUN(retry_dropped_connection);
        RUN(retry_after_header);
        RUN(timeout);
        RUN(body_cap);
        RUN(outage);
        RUN(free_from_handlers);
        RUN(watch);
        RUN(watch_pages);
        RUN(server_clock);

        server = kube_test_server_stop(server);
        event = sd_event_unref(event);
        return 0;
}
