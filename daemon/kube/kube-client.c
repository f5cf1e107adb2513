/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "build-config.h"
#include "curl-event.h"
#include "fileio.h"
#include "json-util.h"
#include "kube-client-internal.h"
#include "kube-client.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

#define DEFAULT_CONNECT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define DEFAULT_REQUEST_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define DEFAULT_MAX_RETRIES 5U
#define DEFAULT_BACKOFF_INITIAL_USEC (200 * USEC_PER_MSEC)
#define DEFAULT_BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define DEFAULT_MAX_BODY_SIZE ((size_t) 16 * 1024 * 1024)
#define DEFAULT_USER_AGENT "noderebootd/" PACKAGE_VERSION
/* Product and node name in the User-Agent: node names are at most 253 characters. */
#define USER_AGENT_PART_MAX 253U

/* A server asking us to wait longer than this is still retried after this long. */
#define RETRY_AFTER_MAX_USEC (10 * USEC_PER_MINUTE)
#define TOKEN_FILE_MAX_SIZE ((size_t) 64 * 1024)

#define WATCH_MAX_LINE_SIZE ((size_t) 8 * 1024 * 1024)
/* Spread watch ends over time so that many nodes do not reconnect in step. */
#define WATCH_TIMEOUT_MIN_SEC 290U
#define WATCH_TIMEOUT_SPREAD_SEC 21U
/* The server ends a watch after timeoutSeconds; curl gives up only well after that. */
#define WATCH_GRACE_USEC (30 * USEC_PER_SEC)
#define WATCH_BACKOFF_INITIAL_USEC (200 * USEC_PER_MSEC)
#define WATCH_BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
/* A stream that ends sooner than this after it started is restarted with back-off, not at once. */
#define WATCH_MIN_RUN_USEC (1 * USEC_PER_SEC)

/* sd-event's default accuracy (250 ms) would delay every curl timeout; ask for 1 ms. */
#define TIMER_ACCURACY_USEC (1 * USEC_PER_MSEC)

/* Simple intrusive doubly linked lists; "linked" makes removal idempotent. */
#define LIST_PREPEND(head, item)                                        \
        do {                                                            \
                (item)->prev = NULL;                                    \
                (item)->next = (head);                                  \
                if (head)                                               \
                        (head)->prev = (item);                          \
                (head) = (item);                                        \
                (item)->linked = true;                                  \
        } while (0)
#define LIST_REMOVE(head, item)                                         \
        do {                                                            \
                if ((item)->linked) {                                   \
                        if ((item)->next)                               \
                                (item)->next->prev = (item)->prev;      \
                        if ((item)->prev)                               \
                                (item)->prev->next = (item)->next;      \
                        else                                            \
                                (head) = (item)->next;                  \
                        (item)->prev = (item)->next = NULL;             \
                        (item)->linked = false;                         \
                }                                                       \
        } while (0)


typedef struct Buffer {
        char *data;
        size_t size;
        size_t allocated;
} Buffer;

struct KubeCall {
        KubeClient *client;             /* NULL once detached by kube_client_free() */
        KubeCall *prev, *next;
        bool linked;

        CURL *easy;
        char *method;
        char *path;
        char *content_type;
        char *body;                     /* serialised request body, or NULL */
        size_t body_size;
        struct curl_slist *headers;
        KubeCallFlags flags;
        KubeCallHandler handler;
        void *userdata;
        void (*userdata_free)(void *);  /* for floating calls the client drops unanswered */
        bool floating;                  /* nobody holds a pointer: freed with the client */

        KubeWatch *watch;               /* set for the stream of a watch */
        usec_t timeout_usec;            /* total, per attempt; 0 for none */

        bool running;                   /* easy handle added to the multi handle */
        bool dispatching;               /* its handler is running; freed afterwards */
        sd_event_source *retry_source;
        unsigned attempt;
        bool retried_401;
        usec_t start_usec;              /* CLOCK_MONOTONIC, of the current attempt */

        Buffer response;                /* plain calls */
        KubeLineBuffer lines;           /* watch streams */
        bool stream_pending;            /* lines arrived that were not processed yet */
        int write_error;
        usec_t retry_after_usec;
};

struct KubeWatch {
        unsigned n_ref;
        KubeClient *client;             /* NULL once detached */
        KubeWatch *prev, *next;
        bool linked;
        bool dead;                      /* freed by its owner; memory kept while referenced */

        char *path;
        KubeWatchHandler handler;
        void *userdata;

        char *resource_version;         /* last seen */
        KubeWatchFlags flags;
        bool listed;                    /* a list completed once */
        char *continue_token;           /* of the list's next page, NULL on its first */
        bool need_list;
        KubeCall *call;                 /* the list or the stream in flight */
        bool streaming;
        sd_event_source *timer;         /* back-off */
        unsigned attempt;
        unsigned generation;            /* bumped whenever the call in flight changes */
        usec_t request_start_usec;
        usec_t live_since;              /* CLOCK_MONOTONIC; USEC_INFINITY since a failure */
};

struct KubeClient {
        unsigned n_ref;
        bool closed;

        sd_event *event;
        CurlEvent *curl;
        CURLM *multi;                   /* curl_event_multi(curl) */

        char *base_url;                 /* server URL; its host is tls_server_name when set */
        char *host_header;              /* "Host: <server host>" when tls_server_name is set */
        struct curl_slist *connect_to;  /* the real address when tls_server_name is set */

        bool insecure;
        char *ca_file;
        char *ca_data;
        size_t ca_data_size;
        char *cert_file;
        char *cert_data;
        size_t cert_data_size;
        char *key_file;
        char *key_data;
        size_t key_data_size;

        char *token;                    /* inline token from the kubeconfig */
        char *token_file;
        char *token_file_value;         /* last value read from token_file */
        struct stat token_file_stat;
        bool token_file_read;

        usec_t connect_timeout_usec;
        usec_t request_timeout_usec;
        unsigned max_retries;
        usec_t backoff_initial_usec;
        usec_t backoff_max_usec;
        size_t max_body_size;
        unsigned watch_timeout_sec;     /* 0: random in 290..310 */
        unsigned list_page_size;
        char *user_agent;               /* NULL: DEFAULT_USER_AGENT */
        char *proxy;                    /* NULL: direct; may hold credentials */

        int64_t clock_offset_usec;      /* server clock minus local CLOCK_REALTIME */

        KubeCall *calls;
        KubeWatch *watches;
};

static const char *const watch_event_table[_KUBE_WATCH_EVENT_MAX] = {
        [KUBE_WATCH_ADDED] = "ADDED",
        [KUBE_WATCH_MODIFIED] = "MODIFIED",
        [KUBE_WATCH_DELETED] = "DELETED",
        [KUBE_WATCH_SYNCED] = "SYNCED",
        [KUBE_WATCH_ERROR] = "ERROR",
};

const char *kube_watch_event_to_string(KubeWatchEvent e) {
        if (e < 0 || e >= _KUBE_WATCH_EVENT_MAX)
                return NULL;
        return watch_event_table[e];
}

/* ---- pure helpers ---------------------------------------------------------------------------- */

int kube_errno_from_result(CURLcode code, long status, int write_error) {
        switch (code) {
        case CURLE_OK:
                break;

        case CURLE_WRITE_ERROR:
                return write_error < 0 ? write_error : -EIO;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;

        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;

        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:   /* handshake cut short: the peer went away */
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return -ECONNREFUSED;

        case CURLE_PEER_FAILED_VERIFICATION:    /* also CURLE_SSL_CACERT */
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return -EPERM;

        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;

        default:
                return -EIO;
        }

        if (status >= 200 && status < 300)
                return 0;
        switch (status) {
        case 400:
        case 422:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 409:
                return -ESTALE;
        case 410:
                return -EKEYEXPIRED;
        case 429:
                return -EBUSY;
        }
        if (status >= 500 && status < 600)
                return -EIO;
        /* other 4xx, and anything unexpected (1xx, 3xx: we follow no redirects) */
        return -EPROTO;
}

bool kube_error_is_retriable(KubeCallFlags flags, int error) {
        if (!(flags & KUBE_CALL_IDEMPOTENT))
                return false;
        switch (error) {
        case -ECONNREFUSED:
        case -ETIMEDOUT:
        case -EIO:
                return true;
        case -EBUSY:
                return !(flags & KUBE_CALL_NO_RETRY_ON_429);
        default:
                return false;
        }
}

usec_t kube_backoff_usec(unsigned attempt, usec_t initial_usec, usec_t max_usec, uint64_t random) {
        usec_t cap = initial_usec;

        if (cap == 0 || max_usec == 0)
                return 0;
        for (unsigned i = 0; i < attempt && cap < max_usec; i++)
                cap = cap > max_usec / 2 ? max_usec : cap * 2;
        cap = MIN(cap, max_usec);
        if (cap == USEC_INFINITY)
                return random;
        return random % (cap + 1);
}

int kube_parse_retry_after(const char *value, usec_t now_realtime_usec, usec_t *ret) {
        const char *p = value;
        uint64_t seconds = 0;
        time_t t;

        while (*p == ' ' || *p == '\t')
                p++;
        if (*p >= '0' && *p <= '9') {
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (seconds > (UINT64_MAX / USEC_PER_SEC - 9) / 10)
                                return -ERANGE;
                        seconds = seconds * 10 + (uint64_t) (*p - '0');
                }
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p != 0)
                        return -EINVAL;
                *ret = seconds * USEC_PER_SEC;
                return 0;
        }

        t = curl_getdate(p, NULL);
        if (t <= 0)
                return -EINVAL;
        if ((usec_t) t * USEC_PER_SEC <= now_realtime_usec)
                *ret = 0;
        else
                *ret = (usec_t) t * USEC_PER_SEC - now_realtime_usec;
        return 0;
}

void kube_line_buffer_init(KubeLineBuffer *b, size_t max_line) {
        *b = (KubeLineBuffer) { .max_line = max_line };
}

void kube_line_buffer_reset(KubeLineBuffer *b) {
        b->size = b->start = b->scanned = b->partial = 0;
}

void kube_line_buffer_done(KubeLineBuffer *b) {
        b->data = mfree(b->data);
        b->allocated = 0;
        kube_line_buffer_reset(b);
}

int kube_line_buffer_feed(KubeLineBuffer *b, const void *data, size_t size) {
        const char *nl;
        size_t partial;

        if (size == 0)
                return 0;

        nl = memrchr(data, '\n', size);
        if (nl)
                partial = size - (size_t) (nl - (const char *) data) - 1;
        else if (size > b->max_line || b->partial > b->max_line - size)
                return -EFBIG;
        else
                partial = b->partial + size;
        if (partial > b->max_line)
                return -EFBIG;

        /* Drop what was returned already. A long incomplete line is moved at most once, since
         * start stays 0 until a line is returned. */
        if (b->start > 0) {
                memmove(b->data, b->data + b->start, b->size - b->start);
                b->size -= b->start;
                b->start = 0;
        }

        if (size > SIZE_MAX - 1 - b->size)
                return -ENOMEM;
        if (b->size + size + 1 > b->allocated) {
                size_t want = MAX(b->allocated * 2, b->size + size + 1);
                char *t;

                want = MAX(want, (size_t) 4096);
                t = realloc(b->data, want);
                if (!t)
                        return -ENOMEM;
                b->data = t;
                b->allocated = want;
        }
        memcpy(b->data + b->size, data, size);
        b->size += size;
        b->data[b->size] = 0;
        b->partial = partial;
        return 0;
}

int kube_line_buffer_next(KubeLineBuffer *b, char **ret, size_t *ret_size) {
        size_t avail = b->size - b->start, len;
        char *s, *nl;

        if (avail == 0)
                return 0;
        s = b->data + b->start;
        nl = memchr(s + b->scanned, '\n', avail - b->scanned);
        if (!nl) {
                b->scanned = avail;
                return avail > b->max_line ? -EFBIG : 0;
        }

        len = (size_t) (nl - s);
        b->start += len + 1;
        b->scanned = 0;
        if (len > b->max_line)
                return -EFBIG;
        *nl = 0;
        if (len > 0 && s[len - 1] == '\r')
                s[--len] = 0;
        *ret = s;
        *ret_size = len;
        return 1;
}

size_t kube_line_buffer_rest(KubeLineBuffer *b, char **ret) {
        *ret = b->data ? b->data + b->start : NULL;
        return b->size - b->start;
}

/* ---- small internals ------------------------------------------------------------------------- */

static uint64_t random_u64(void) {
        static uint64_t fallback_state;
        uint64_t v;

        /* Jitter needs no cryptographic quality, but must never block early at boot. */
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;

        /* splitmix64 over the clock */
        fallback_state += now_usec(CLOCK_MONOTONIC) + 0x9e3779b97f4a7c15ULL;
        v = fallback_state;
        v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
        v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
        return v ^ (v >> 31);
}

static int buffer_append(Buffer *b, const void *p, size_t n, size_t max) {
        if (n > max || b->size > max - n)
                return -EFBIG;
        if (b->size + n + 1 > b->allocated) {
                size_t want = MAX(b->allocated * 2, b->size + n + 1);
                char *t;

                want = MAX(want, (size_t) 4096);
                want = MIN(want, max + 1);
                t = realloc(b->data, want);
                if (!t)
                        return -ENOMEM;
                b->data = t;
                b->allocated = want;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = 0;
        return 0;
}

static int errno_from_curl_setopt(CURLcode code) {
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_UNKNOWN_OPTION:
        case CURLE_NOT_BUILT_IN:
                return -EOPNOTSUPP;
        default:
                return -EINVAL;
        }
}

static int memdup_or_null(const char *p, size_t size, char **ret, size_t *ret_size) {
        char *t;

        if (!p || size == 0) {
                *ret = NULL;
                *ret_size = 0;
                return 0;
        }
        t = malloc(size);
        if (!t)
                return -ENOMEM;
        memcpy(t, p, size);
        *ret = t;
        *ret_size = size;
        return 0;
}

static void kube_client_ref(KubeClient *c) {
        c->n_ref++;
}

static void client_destroy(KubeClient *c);

static void kube_client_unref(KubeClient *c) {
        assert(c->n_ref > 0);
        if (--c->n_ref == 0)
                client_destroy(c);
}

/* ---- tokens ---------------------------------------------------------------------------------- */

/* Mode and owner count too: a chmod or chown alone changes whether the file may be used. */
static bool stat_same(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
                a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
                a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Re-reads the token file when it changed (or always, with force). Returns 1 when the token in use
 * changed. A file that cannot be read keeps the last token: a rotation in progress, or a 401. */
static int client_refresh_token(KubeClient *c, bool force) {
        _cleanup_free_ char *data = NULL, *what = NULL;
        struct stat st;
        size_t size = 0;
        char *t;
        int r;

        if (!c->token_file)
                return 0;
        if (stat(c->token_file, &st) < 0)
                return -errno;
        if (!force && c->token_file_read && stat_same(&st, &c->token_file_stat))
                return 0;

        /* The same check as at start: a token file someone made world-readable since is refused. */
        what = strjoin("token file ", c->token_file);
        if (!what)
                return -ENOMEM;
        r = kubeconfig_read_credential(c->token_file, what, TOKEN_FILE_MAX_SIZE, &data, &size);
        /* Looked at, whatever the answer: a file refused once (it was made world-readable, say) is
         * read again, and complained about again, only when it changes. */
        c->token_file_stat = st;
        c->token_file_read = true;
        if (r < 0)
                return r;

        t = strstrip(data);
        if (isempty(t) || streq_ptr(t, c->token_file_value)) {
                explicit_bzero(data, size);
                return 0;
        }
        t = strdup(t);
        explicit_bzero(data, size);
        if (!t)
                return -ENOMEM;
        erase_and_free(c->token_file_value);
        c->token_file_value = t;
        log_debug("Read a new bearer token from %s.", c->token_file);
        return 1;
}

static const char *client_token(KubeClient *c) {
        /* As client-go does: the last value read from the file wins over an inline token. */
        return c->token_file_value ?: c->token;
}

/* ---- calls ----------------------------------------------------------------------------------- */

/* Header lists carry "Authorization: Bearer ...": wiped before they are freed. */
static void header_list_erase_and_free(struct curl_slist *l) {
        for (struct curl_slist *i = l; i; i = i->next)
                if (i->data)
                        explicit_bzero(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

static void call_release(KubeCall *call) {
        /* Everything but the struct itself; the caller has removed the easy handle already. */
        call->retry_source = sd_event_source_disable_unref(call->retry_source);
        if (call->easy) {
                curl_easy_cleanup(call->easy);
                call->easy = NULL;
        }
        header_list_erase_and_free(call->headers);
        call->headers = NULL;
        call->response.data = mfree(call->response.data);
        call->response.size = call->response.allocated = 0;
        kube_line_buffer_done(&call->lines);
        call->method = mfree(call->method);
        call->path = mfree(call->path);
        call->content_type = mfree(call->content_type);
        call->body = mfree(call->body);
}

static void call_stop(KubeCall *call) {
        KubeClient *c = call->client;

        if (c && call->running) {
                (void) curl_multi_remove_handle(c->multi, call->easy);
                call->running = false;
        }
        call->retry_source = sd_event_source_disable_unref(call->retry_source);
}

static KubeCall *call_free(KubeCall *call) {
        if (!call)
                return NULL;
        call_stop(call);
        if (call->client)
                LIST_REMOVE(call->client->calls, call);
        call_release(call);
        return mfree(call);
}

KubeCall *kube_call_cancel(KubeCall *call) {
        if (!call)
                return NULL;
        /* Its handler is running: the call is over, and is freed when the handler returns. */
        if (call->dispatching)
                return NULL;
        call_free(call);
        return NULL;
}

static size_t call_write_cb(char *p, size_t size, size_t nmemb, void *userdata) {
        KubeCall *call = userdata;
        size_t n = size * nmemb;
        int r;

        /* Never call out of here: a handler must not run inside a curl callback. */
        if (call->watch) {
                r = kube_line_buffer_feed(&call->lines, p, n);
                if (r >= 0)
                        call->stream_pending = true;
        } else
                r = buffer_append(&call->response, p, n, call->client->max_body_size);
        if (r < 0) {
                call->write_error = r;
                return 0;       /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        return n;
}

static bool header_is(const char *line, size_t n, const char *name, const char **ret_value,
                      size_t *ret_size) {
        size_t l = strlen(name);
        const char *v, *e;

        if (n <= l || line[l] != ':' || strncasecmp(line, name, l) != 0)
                return false;
        v = line + l + 1;
        e = line + n;
        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
        *ret_value = v;
        *ret_size = (size_t) (e - v);
        return true;
}

static size_t call_header_cb(char *p, size_t size, size_t nmemb, void *userdata) {
        KubeCall *call = userdata;
        KubeClient *c = call->client;
        size_t n = size * nmemb, vn;
        char value[128];
        const char *v;

        if (n >= 5 && strneq(p, "HTTP/", 5)) {
                /* a new response (after a 100 Continue, say): forget the previous one's headers */
                call->retry_after_usec = 0;
                return n;
        }
        if (call->watch && (n == 2 ? p[0] == '\r' && p[1] == '\n' : n == 1 && p[0] == '\n')) {
                long status = 0;

                /* The end of a watch stream's headers: the API server sends them at once, so a
                 * 200 here means we see its changes from now on, even when none come. */
                (void) curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200 && call->watch->live_since == USEC_INFINITY)
                        call->watch->live_since = now_usec(CLOCK_MONOTONIC);
                return n;
        }

        if (header_is(p, n, "Date", &v, &vn) && vn < sizeof value) {
                time_t t;

                memcpy(value, v, vn);
                value[vn] = 0;
                t = curl_getdate(value, NULL);
                if (t > 0)
                        /* Date has whole seconds, truncated: the server's clock read somewhere in
                         * [t, t+1), so take the middle. */
                        c->clock_offset_usec = (int64_t) ((usec_t) t * USEC_PER_SEC + USEC_PER_SEC / 2) -
                                (int64_t) now_usec(CLOCK_REALTIME);
        } else if (header_is(p, n, "Retry-After", &v, &vn) && vn < sizeof value) {
                usec_t u;

                memcpy(value, v, vn);
                value[vn] = 0;
                if (kube_parse_retry_after(value, kube_client_server_now(c), &u) >= 0)
                        call->retry_after_usec = u;
        }
        return n;
}

static int call_setup(KubeCall *call) {
        KubeClient *c = call->client;
        _cleanup_free_ char *url = NULL;
        CURL *e;
        int r;

#define SETOPT(opt, value)                                                      \
        do {                                                                    \
                r = errno_from_curl_setopt(curl_easy_setopt(e, opt, value));    \
                if (r < 0)                                                      \
                        return r;                                               \
        } while (0)

        url = strjoin(c->base_url, call->path);
        if (!url)
                return -ENOMEM;

        e = call->easy = curl_easy_init();
        if (!e)
                return -ENOMEM;

        SETOPT(CURLOPT_URL, url);
        SETOPT(CURLOPT_PRIVATE, call);
        SETOPT(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
        SETOPT(CURLOPT_PROTOCOLS_STR, "https,http");
#else
        SETOPT(CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        SETOPT(CURLOPT_USERAGENT, c->user_agent ?: DEFAULT_USER_AGENT);
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_TCP_KEEPIDLE, 30L);
        SETOPT(CURLOPT_TCP_KEEPINTVL, 10L);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) MAX(c->connect_timeout_usec / USEC_PER_MSEC, (usec_t) 1));
        SETOPT(CURLOPT_TIMEOUT_MS, (long) (call->timeout_usec / USEC_PER_MSEC));
        SETOPT(CURLOPT_WRITEFUNCTION, call_write_cb);
        SETOPT(CURLOPT_WRITEDATA, call);
        SETOPT(CURLOPT_HEADERFUNCTION, call_header_cb);
        SETOPT(CURLOPT_HEADERDATA, call);
        if (!call->watch)
                SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_body_size);
        /* On a reused connection that dies before any response byte, libcurl silently sends the
         * request again (Curl_retry_request(), POSTs included). A request that must not run twice
         * gets a connection of its own, so a failure reaches the caller instead. */
        if (!(call->flags & KUBE_CALL_IDEMPOTENT) && !call->watch)
                SETOPT(CURLOPT_FRESH_CONNECT, 1L);

        if (c->connect_to)
                SETOPT(CURLOPT_CONNECT_TO, c->connect_to);
        /* Always set, so that libcurl reads neither *_proxy nor NO_PROXY from the environment: "" is
         * a direct connection. Through an HTTP proxy the CONNECT names the CONNECT_TO address, the
         * server's real one. */
        SETOPT(CURLOPT_PROXY, c->proxy ?: "");
        SETOPT(CURLOPT_NOPROXY, "");

        /* TLS */
        SETOPT(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
        if (c->ca_data || c->ca_file) {
                /* The cluster's CA is the only trust anchor, as with kubectl: without this, curl
                 * would also trust every CA in the system's certificate folder. */
                SETOPT(CURLOPT_CAPATH, NULL);
                if (c->ca_data) {
                        struct curl_blob blob = {
                                .data = c->ca_data, .len = c->ca_data_size, .flags = CURL_BLOB_COPY,
                        };
                        SETOPT(CURLOPT_CAINFO_BLOB, &blob);
                } else
                        SETOPT(CURLOPT_CAINFO, c->ca_file);
        }
        if (c->cert_data) {
                struct curl_blob blob = {
                        .data = c->cert_data, .len = c->cert_data_size, .flags = CURL_BLOB_NOCOPY,
                };
                SETOPT(CURLOPT_SSLCERT_BLOB, &blob);
                SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        } else if (c->cert_file) {
                SETOPT(CURLOPT_SSLCERT, c->cert_file);
                SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        }
        if (c->key_data) {
                struct curl_blob blob = {
                        .data = c->key_data, .len = c->key_data_size, .flags = CURL_BLOB_NOCOPY,
                };
                SETOPT(CURLOPT_SSLKEY_BLOB, &blob);
                SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        } else if (c->key_file) {
                SETOPT(CURLOPT_SSLKEY, c->key_file);
                SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }

        /* Method and body. The body string stays ours, so curl need not copy it, and it is still
         * there for a retry. */
        if (streq(call->method, "GET"))
                SETOPT(CURLOPT_HTTPGET, 1L);
        else if (streq(call->method, "HEAD"))
                SETOPT(CURLOPT_NOBODY, 1L);
        else if (!call->body && streq(call->method, "DELETE"))
                SETOPT(CURLOPT_CUSTOMREQUEST, "DELETE");
        else {
                SETOPT(CURLOPT_POSTFIELDS, call->body ?: "");
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) call->body_size);
                if (!streq(call->method, "POST"))
                        SETOPT(CURLOPT_CUSTOMREQUEST, call->method);
        }
#undef SETOPT
        return 0;
}

static int call_build_headers(KubeCall *call) {
        KubeClient *c = call->client;
        struct curl_slist *l = NULL, *t;
        const char *token = client_token(c);
        _cleanup_free_ char *ct = NULL;

#define APPEND(s)                                       \
        do {                                            \
                t = curl_slist_append(l, (s));          \
                if (!t)                                 \
                        goto oom;                       \
                l = t;                                  \
        } while (0)

        APPEND("Accept: application/json");
        /* no "Expect: 100-continue" round trip for large bodies */
        APPEND("Expect:");
        if (c->host_header)
                APPEND(c->host_header);
        if (call->body) {
                ct = strjoin("Content-Type: ", call->content_type ?: "application/json");
                if (!ct)
                        goto oom;
                APPEND(ct);
        }
        if (token) {
                char *auth = strjoin("Authorization: Bearer ", token);

                if (!auth)
                        goto oom;
                t = curl_slist_append(l, auth);
                erase_and_free(auth);
                if (!t)
                        goto oom;
                l = t;
        }
#undef APPEND

        if (curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, l) != CURLE_OK) {
                header_list_erase_and_free(l);
                return -ENOMEM;
        }
        header_list_erase_and_free(call->headers);
        call->headers = l;
        return 0;

oom:
        header_list_erase_and_free(l);
        return -ENOMEM;
}

static int call_start_attempt(KubeCall *call) {
        KubeClient *c = call->client;
        int r;

        assert(!call->running);

        /* A stat per request is cheap, and picks up a rotated token before it is rejected. */
        r = client_refresh_token(c, /* force= */ false);
        if (r < 0)
                log_debug_errno(r, "Failed to read token file %s, using the last token: %m", c->token_file);

        r = call_build_headers(call);
        if (r < 0)
                return r;

        call->response.size = 0;
        kube_line_buffer_reset(&call->lines);
        call->stream_pending = false;
        call->write_error = 0;
        call->retry_after_usec = 0;
        call->start_usec = now_usec(CLOCK_MONOTONIC);

        if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK)
                return -ENOMEM;
        call->running = true;
        return 0;
}

static void call_finish(KubeCall *call, int error, long status);

static int call_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        KubeCall *call = userdata;
        KubeClient *c = call->client;
        int r;

        kube_client_ref(c);
        call->retry_source = sd_event_source_disable_unref(call->retry_source);
        r = call_start_attempt(call);
        if (r < 0)
                call_finish(call, r, 0);
        kube_client_unref(c);
        return 0;
}

static int call_schedule_retry(KubeCall *call, int error) {
        KubeClient *c = call->client;
        char buf[FORMAT_TIMESPAN_MAX];
        usec_t delay;
        int r;

        delay = kube_backoff_usec(call->attempt, c->backoff_initial_usec, c->backoff_max_usec, random_u64());
        if (call->retry_after_usec > 0)
                delay = MAX(delay, MIN(call->retry_after_usec, RETRY_AFTER_MAX_USEC));
        call->attempt++;

        call->retry_source = sd_event_source_disable_unref(call->retry_source);
        r = sd_event_add_time_relative(c->event, &call->retry_source, CLOCK_MONOTONIC, delay,
                                       TIMER_ACCURACY_USEC, call_retry_cb, call);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(call->retry_source, "kube-call-retry");

        log_debug_errno(error, "%s %s: retrying in %s (retry %u of %u): %m", call->method, call->path,
                        format_timespan(buf, sizeof buf, delay / USEC_PER_MSEC * USEC_PER_MSEC),
                        call->attempt, c->max_retries);
        return 0;
}

static void watch_stream_done(KubeWatch *w, KubeCall *call, int error, long status);

static void call_finish(KubeCall *call, int error, long status) {
        KubeClient *c = call->client;
        _cleanup_json_ json_object *body = NULL;
        KubeResponse response = {
                .status = status,
                .retry_after_usec = call->retry_after_usec,
        };

        assert(!call->running);
        LIST_REMOVE(c->calls, call);

        if (call->watch) {
                KubeWatch *w = call->watch;

                call->dispatching = true;
                watch_stream_done(w, call, error, status);
                call_free(call);
                return;
        }

        if (call->response.size > 0) {
                int r = json_parse(call->response.data, call->response.size, &body);
                if (r < 0) {
                        /* Error statuses may carry non-JSON text (a proxy's page): keep their
                         * error. A success must be JSON. */
                        if (error == 0) {
                                log_debug("%s %s: malformed JSON in response body.",
                                          call->method, call->path);
                                error = r;
                        }
                } else
                        response.body = body;
        }

        call->dispatching = true;
        call->handler(c, error, &response, call->userdata);
        call_free(call);
}

static void call_complete(KubeCall *call, CURLcode code) {
        KubeClient *c = call->client;
        long status = 0;
        usec_t elapsed;
        int error, r;

        (void) curl_multi_remove_handle(c->multi, call->easy);
        call->running = false;

        (void) curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        error = kube_errno_from_result(code, status, call->write_error);
        elapsed = now_usec(CLOCK_MONOTONIC) - call->start_usec;
        if (code == CURLE_OK)
                log_debug("%s %s → %ld in %" PRIu64 " ms", call->method, call->path, status,
                          elapsed / USEC_PER_MSEC);
        else
                log_debug_errno(error, "%s %s → failed after %" PRIu64 " ms (%s): %m", call->method,
                                call->path, elapsed / USEC_PER_MSEC, curl_easy_strerror(code));

        /* A rotated token: re-read the file and try once more, whatever the method, since the
         * server rejected the request before acting on it. */
        if (status == 401 && c->token_file && !call->retried_401) {
                call->retried_401 = true;
                if (client_refresh_token(c, /* force= */ true) > 0) {
                        r = call_start_attempt(call);
                        if (r >= 0)
                                return;
                        call_finish(call, r, 0);
                        return;
                }
        }

        if (call->attempt < c->max_retries && kube_error_is_retriable(call->flags, error)) {
                r = call_schedule_retry(call, error);
                if (r >= 0)
                        return;
                error = r;
        }

        call_finish(call, error, status);
}

static int call_new(KubeClient *c, const char *method, const char *path, const char *content_type,
                    json_object *body, KubeCallFlags flags, KubeCallHandler handler, void *userdata,
                    KubeWatch *watch, usec_t timeout_usec, KubeCall **ret) {
        KubeCall *call;
        int r;

        call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;

        call->client = c;
        call->flags = flags;
        call->handler = handler;
        call->userdata = userdata;
        call->watch = watch;
        call->timeout_usec = timeout_usec;
        kube_line_buffer_init(&call->lines, WATCH_MAX_LINE_SIZE);
        LIST_PREPEND(c->calls, call);

        call->method = strdup(method);
        call->path = strdup(path);
        if (!call->method || !call->path) {
                r = -ENOMEM;
                goto fail;
        }
        if (content_type) {
                call->content_type = strdup(content_type);
                if (!call->content_type) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (body) {
                const char *s = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);

                if (!s) {
                        r = -ENOMEM;
                        goto fail;
                }
                call->body = strdup(s);
                if (!call->body) {
                        r = -ENOMEM;
                        goto fail;
                }
                call->body_size = strlen(call->body);
        }

        r = call_setup(call);
        if (r < 0)
                goto fail;
        r = call_start_attempt(call);
        if (r < 0)
                goto fail;

        *ret = call;
        return 0;

fail:
        call_free(call);
        return r;
}

static bool method_valid(const char *m) {
        if (isempty(m))
                return false;
        for (const char *p = m; *p; p++)
                if (*p < 'A' || *p > 'Z')
                        return false;
        return true;
}

int kube_client_call(KubeClient *c, const char *method, const char *path, const char *content_type,
                     json_object *body, KubeCallFlags flags, KubeCallHandler handler, void *userdata,
                     KubeCall **ret_call) {
        return kube_client_call_full(c, method, path, content_type, body, flags, handler, userdata, NULL,
                                     ret_call);
}

int kube_client_call_full(KubeClient *c, const char *method, const char *path, const char *content_type,
                          json_object *body, KubeCallFlags flags, KubeCallHandler handler, void *userdata,
                          void (*userdata_free)(void *), KubeCall **ret_call) {
        KubeCall *call;
        int r;

        if (!c || !handler || !method_valid(method) || !path || path[0] != '/')
                return -EINVAL;
        if (c->closed)
                return -ESHUTDOWN;

        r = call_new(c, method, path, content_type, body, flags, handler, userdata, NULL,
                     c->request_timeout_usec, &call);
        if (r < 0)
                return r;

        call->floating = !ret_call;
        call->userdata_free = userdata_free;
        if (ret_call)
                *ret_call = call;
        return 0;
}

/* ---- the event loop glue --------------------------------------------------------------------- */

static void watch_dispatch_lines(KubeWatch *w, KubeCall *call);
static void kube_watch_ref(KubeWatch *w);
static void kube_watch_unref(KubeWatch *w);

/* Runs after every curl_multi_socket_action(), outside all curl callbacks: only here (and in our
 * own timers) do handlers run, so they may add, cancel and free whatever they like. */
static void client_dispatch(KubeClient *c) {
        /* Stream lines first, so that the events a transfer carried come before its end. */
        for (;;) {
                KubeWatch *w;

                if (c->closed)
                        return;
                for (w = c->watches; w; w = w->next)
                        if (w->call && w->streaming && w->call->stream_pending)
                                break;
                if (!w)
                        break;

                kube_watch_ref(w);
                watch_dispatch_lines(w, w->call);
                kube_watch_unref(w);
        }

        for (;;) {
                KubeCall *call = NULL;
                CURLMsg *m;
                CURLcode code;
                int n;

                if (c->closed)
                        return;
                m = curl_multi_info_read(c->multi, &n);
                if (!m)
                        break;
                if (m->msg != CURLMSG_DONE)
                        continue;
                code = m->data.result;
                (void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &call);
                if (!call || !call->running)
                        continue;
                call_complete(call, code);
        }
}

static void on_curl_dispatch(CurlEvent *ce, void *userdata) {
        KubeClient *c = userdata;

        kube_client_ref(c);
        client_dispatch(c);
        kube_client_unref(c);
}

/* ---- the client ------------------------------------------------------------------------------ */

/* With tls_server_name, the URL names that host, so that curl sends it as SNI and verifies the
 * certificate against it, while CURLOPT_CONNECT_TO makes the connection to the server's real
 * host and port (curl does not resolve the URL's host then). "Host:" keeps the server's own
 * authority, as kubectl sends it. libcurl 7.88 has no option to set SNI alone. */
static int client_setup_url(KubeClient *c, const Kubeconfig *k) {
        _cleanup_free_ char *connect_to = NULL;
        char *host = NULL, *port = NULL, *explicit_port = NULL, *url = NULL;
        CURLU *u = NULL;
        int r;

        if (!startswith(k->server, "https://") && !startswith(k->server, "http://"))
                return -EINVAL;

        if (isempty(k->tls_server_name)) {
                c->base_url = strdup(k->server);
                if (!c->base_url)
                        return -ENOMEM;
                goto strip;
        }

        u = curl_url();
        if (!u)
                return -ENOMEM;
        r = -EINVAL;
        if (curl_url_set(u, CURLUPART_URL, k->server, 0) != CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_PORT, &explicit_port, 0) != CURLUE_OK)
                explicit_port = NULL;
        if (curl_url_set(u, CURLUPART_HOST, k->tls_server_name, 0) != CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
                goto finish;

        r = -ENOMEM;
        c->base_url = strdup(url);
        connect_to = strjoin(k->tls_server_name, ":", port, ":", host, ":", port);
        c->host_header = explicit_port ? strjoin("Host: ", host, ":", explicit_port) :
                                         strjoin("Host: ", host);
        if (!c->base_url || !connect_to || !c->host_header)
                goto finish;
        c->connect_to = curl_slist_append(NULL, connect_to);
        if (!c->connect_to)
                goto finish;
        r = 0;

finish:
        curl_free(host);
        curl_free(port);
        curl_free(explicit_port);
        curl_free(url);
        curl_url_cleanup(u);
        if (r < 0)
                return r;

strip:
        /* paths are appended, and start with "/" */
        for (size_t l = strlen(c->base_url); l > 0 && c->base_url[l - 1] == '/'; l--)
                c->base_url[l - 1] = 0;
        return 0;
}

static int client_copy_kubeconfig(KubeClient *c, const Kubeconfig *k) {
        int r;

        c->insecure = k->insecure_skip_tls_verify;
        if ((k->ca_file && !(c->ca_file = strdup(k->ca_file))) ||
            (k->client_cert_file && !(c->cert_file = strdup(k->client_cert_file))) ||
            (k->client_key_file && !(c->key_file = strdup(k->client_key_file))) ||
            (k->token_file && !(c->token_file = strdup(k->token_file))))
                return -ENOMEM;
        if (!isempty(k->token) && !(c->token = strdup(k->token)))
                return -ENOMEM;

        r = memdup_or_null(k->ca_data, k->ca_data_size, &c->ca_data, &c->ca_data_size);
        if (r < 0)
                return r;
        r = memdup_or_null(k->client_cert_data, k->client_cert_data_size, &c->cert_data, &c->cert_data_size);
        if (r < 0)
                return r;
        return memdup_or_null(k->client_key_data, k->client_key_data_size, &c->key_data, &c->key_data_size);
}

int kube_client_new(KubeClient **ret, sd_event *event, const Kubeconfig *kubeconfig) {
        static bool curl_initialized = false;
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        int r;

        if (!ret || !kubeconfig || isempty(kubeconfig->server))
                return -EINVAL;

        if (!curl_initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -EIO;
                curl_initialized = true;
        }

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->connect_timeout_usec = DEFAULT_CONNECT_TIMEOUT_USEC;
        c->request_timeout_usec = DEFAULT_REQUEST_TIMEOUT_USEC;
        c->list_page_size = KUBE_LIST_PAGE_SIZE;
        c->max_retries = DEFAULT_MAX_RETRIES;
        c->backoff_initial_usec = DEFAULT_BACKOFF_INITIAL_USEC;
        c->backoff_max_usec = DEFAULT_BACKOFF_MAX_USEC;
        c->max_body_size = DEFAULT_MAX_BODY_SIZE;

        if (event)
                c->event = sd_event_ref(event);
        else {
                r = sd_event_default(&c->event);
                if (r < 0)
                        return r;
        }

        r = client_setup_url(c, kubeconfig);
        if (r < 0)
                return r;
        r = client_copy_kubeconfig(c, kubeconfig);
        if (r < 0)
                return r;

        r = client_refresh_token(c, /* force= */ true);
        if (r < 0)
                log_debug_errno(r, "Failed to read token file %s, ignoring for now: %m", c->token_file);

        r = curl_event_new(&c->curl, c->event, "kube-curl", on_curl_dispatch, c);
        if (r < 0)
                return r;
        c->multi = curl_event_multi(c->curl);

        *ret = TAKE_PTR(c);
        return 0;
}

static void watch_detach(KubeWatch *w);

/* Stops all activity. Calls nobody holds are freed; calls and watches that their owners hold are
 * detached and freed when the owners let go of them. */
static void client_close(KubeClient *c) {
        if (c->closed)
                return;
        c->closed = true;

        while (c->watches)
                watch_detach(c->watches);

        while (c->calls) {
                KubeCall *call = c->calls;

                call_stop(call);
                LIST_REMOVE(c->calls, call);
                if (call->floating) {
                        call->client = NULL;
                        if (call->userdata_free)
                                call->userdata_free(call->userdata);
                        call_release(call);
                        free(call);
                } else {
                        call_release(call);
                        call->client = NULL;
                }
        }

        curl_event_stop(c->curl);
}

static void client_destroy(KubeClient *c) {
        client_close(c);

        c->curl = curl_event_free(c->curl);
        c->multi = NULL;
        c->event = sd_event_unref(c->event);

        curl_slist_free_all(c->connect_to);
        erase_and_free(c->base_url);    /* may carry user info */
        free(c->host_header);
        free(c->ca_file);
        free(c->ca_data);
        free(c->cert_file);
        if (c->cert_data) {
                explicit_bzero(c->cert_data, c->cert_data_size);
                free(c->cert_data);
        }
        free(c->key_file);
        if (c->key_data) {
                explicit_bzero(c->key_data, c->key_data_size);
                free(c->key_data);
        }
        erase_and_free(c->token);
        erase_and_free(c->token_file_value);
        free(c->token_file);
        free(c->user_agent);
        erase_and_free(c->proxy);
        free(c);
}

KubeClient *kube_client_free(KubeClient *c) {
        if (!c)
                return NULL;
        client_close(c);
        kube_client_unref(c);
        return NULL;
}

void kube_client_set_timeouts(KubeClient *c, usec_t connect_usec, usec_t request_usec) {
        c->connect_timeout_usec = connect_usec;
        c->request_timeout_usec = request_usec;
}

void kube_client_set_retry(KubeClient *c, unsigned max_retries, usec_t initial_usec, usec_t max_usec) {
        c->max_retries = max_retries;
        c->backoff_initial_usec = initial_usec;
        c->backoff_max_usec = MAX(max_usec, initial_usec);
}

void kube_client_set_max_body_size(KubeClient *c, size_t max_size) {
        c->max_body_size = max_size;
}

void kube_client_set_watch_timeout(KubeClient *c, unsigned seconds) {
        c->watch_timeout_sec = seconds;
}

void kube_client_set_list_page_size(KubeClient *c, unsigned n) {
        c->list_page_size = n > 0 ? n : KUBE_LIST_PAGE_SIZE;
}

unsigned kube_client_get_list_page_size(KubeClient *c) {
        return c ? c->list_page_size : KUBE_LIST_PAGE_SIZE;
}

/* A header value: printable ASCII only, and no parentheses or slash that would blur the fields. */
static bool user_agent_part_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > USER_AGENT_PART_MAX)
                return false;
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;

                if (ch <= ' ' || ch >= 0x7f || strchr("()/\\", ch))
                        return false;
        }
        return true;
}

int kube_client_set_user_agent(KubeClient *c, const char *program, const char *node_name) {
        char *ua;

        if (!c || !program || !user_agent_part_is_valid(program) ||
            (node_name && !user_agent_part_is_valid(node_name)))
                return -EINVAL;

        if (node_name)
                ua = strdup_printf("%s/%s (node %s)", program, PACKAGE_VERSION, node_name);
        else
                ua = strdup_printf("%s/%s", program, PACKAGE_VERSION);
        if (!ua)
                return -ENOMEM;
        free(c->user_agent);
        c->user_agent = ua;
        return 0;
}

int kube_client_set_proxy(KubeClient *c, const char *proxy) {
        char *p = NULL;

        if (!isempty(proxy)) {
                p = strdup(proxy);
                if (!p)
                        return -ENOMEM;
        }
        erase_and_free(c->proxy);
        c->proxy = p;
        return 0;
}

usec_t kube_client_server_now(KubeClient *c) {
        usec_t n = now_usec(CLOCK_REALTIME);

        if (c->clock_offset_usec < 0 && (usec_t) -c->clock_offset_usec > n)
                return 0;
        return (usec_t) ((int64_t) n + c->clock_offset_usec);
}

/* ---- watches --------------------------------------------------------------------------------- */

static void kube_watch_ref(KubeWatch *w) {
        w->n_ref++;
}

static void kube_watch_unref(KubeWatch *w) {
        assert(w->n_ref > 0);
        if (--w->n_ref > 0)
                return;
        assert(!w->call);
        sd_event_source_disable_unref(w->timer);
        free(w->path);
        free(w->resource_version);
        free(w->continue_token);
        free(w);
}

static bool watch_alive(KubeWatch *w) {
        return !w->dead && w->client && !w->client->closed;
}

/* Stops the watch's activity: its call in flight and its timer. */
static void watch_stop(KubeWatch *w) {
        w->generation++;
        if (w->call) {
                KubeCall *call = TAKE_PTR(w->call);

                /* a call whose handler runs right now is freed by its dispatcher */
                if (!call->dispatching)
                        call_free(call);
        }
        w->streaming = false;
        w->timer = sd_event_source_disable_unref(w->timer);
}

static void watch_detach(KubeWatch *w) {
        watch_stop(w);
        if (w->client)
                LIST_REMOVE(w->client->watches, w);
        w->client = NULL;
}

KubeWatch *kube_watch_free(KubeWatch *w) {
        if (!w)
                return NULL;
        watch_detach(w);
        w->dead = true;
        w->handler = NULL;
        kube_watch_unref(w);
        return NULL;
}

/* Returns whether the watch is still alive after its handler ran. The caller holds a ref. */
static bool watch_emit(KubeWatch *w, KubeWatchEvent event, json_object *object, int error) {
        if (!watch_alive(w))
                return false;
        w->handler(w, event, object, error, w->userdata);
        return watch_alive(w);
}

static int watch_start(KubeWatch *w);
static void watch_fail(KubeWatch *w, int error);

static int watch_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        KubeWatch *w = userdata;
        KubeClient *c = w->client;
        int r;

        kube_client_ref(c);
        kube_watch_ref(w);
        w->timer = sd_event_source_disable_unref(w->timer);
        r = watch_start(w);
        if (r < 0)
                watch_fail(w, r);
        kube_watch_unref(w);
        kube_client_unref(c);
        return 0;
}

static void watch_schedule_backoff(KubeWatch *w) {
        usec_t delay;
        int r;

        delay = kube_backoff_usec(w->attempt, WATCH_BACKOFF_INITIAL_USEC, WATCH_BACKOFF_MAX_USEC,
                                  random_u64());
        if (w->attempt < 64)
                w->attempt++;

        w->timer = sd_event_source_disable_unref(w->timer);
        r = sd_event_add_time_relative(w->client->event, &w->timer, CLOCK_MONOTONIC, delay,
                                       TIMER_ACCURACY_USEC, watch_timer_cb, w);
        if (r < 0) {
                /* Nothing left to retry with: say so; the owner may start over. */
                log_debug_errno(r, "Failed to schedule the restart of watch %s: %m", w->path);
                (void) watch_emit(w, KUBE_WATCH_ERROR, NULL, r);
                return;
        }
        (void) sd_event_source_set_description(w->timer, "kube-watch-backoff");
}

/* Reports the error, then tries again after a back-off. The caller holds a ref. */
static void watch_fail(KubeWatch *w, int error) {
        watch_stop(w);
        w->live_since = USEC_INFINITY;
        w->continue_token = mfree(w->continue_token);   /* a list starts over from its first page */
        log_debug_errno(error, "Watch %s failed, retrying: %m", w->path);
        if (!watch_emit(w, KUBE_WATCH_ERROR, NULL, error))
                return;
        watch_schedule_backoff(w);
}

/* A stream line outgrew WATCH_MAX_LINE_SIZE: the stream was cut off there, unread. Only a broken or
 * hostile server (or proxy) sends such a line, and every owner merely retries a failed watch: so
 * it is said here, once per stream cut off, above debug level. */
static void watch_fail_line_too_long(KubeWatch *w) {
        log_warning("Watch %s: an event line longer than %zu MiB, cut off unread; watching again.",
                    w->path, WATCH_MAX_LINE_SIZE / 1024 / 1024);
        watch_fail(w, -EFBIG);
}

/* Starts over after the stream ended without an error, or after 410 Gone. */
static void watch_restart(KubeWatch *w) {
        int r;

        watch_stop(w);
        /* A stream that ends as soon as it starts, again and again, must not spin. */
        if (now_usec(CLOCK_MONOTONIC) < w->request_start_usec + WATCH_MIN_RUN_USEC) {
                watch_schedule_backoff(w);
                return;
        }
        r = watch_start(w);
        if (r < 0)
                watch_fail(w, r);
}

static void watch_on_list(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        KubeWatch *w = userdata;
        _cleanup_free_ char *item_kind = NULL;
        const char *rv, *next, *kind, *api_version;
        json_object *items;
        int r;

        w->call = NULL;         /* freed by our caller when we return */
        kube_watch_ref(w);

        if (error < 0) {
                watch_fail(w, error);
                goto finish;
        }

        items = json_get(response->body, "items");
        rv = json_get_string(response->body, "metadata.resourceVersion");
        next = json_get_string(response->body, "metadata.continue");
        if (!items || !json_object_is_type(items, json_type_array) || isempty(rv)) {
                watch_fail(w, -EBADMSG);
                goto finish;
        }
        /* Every page of one list is the same snapshot, at the same resourceVersion. */
        r = free_and_strdup(&w->resource_version, rv);
        if (r >= 0)
                r = free_and_strdup(&w->continue_token, isempty(next) ? NULL : next);
        if (r < 0) {
                watch_fail(w, r);
                goto finish;
        }
        if (!w->continue_token) {
                w->need_list = false;
                w->listed = true;
                w->attempt = 0;
                if (w->live_since == USEC_INFINITY)
                        w->live_since = now_usec(CLOCK_MONOTONIC);
        }

        /* Items of a list carry no kind; give them the one their watch events carry. */
        kind = json_get_string(response->body, "kind");
        api_version = json_get_string(response->body, "apiVersion");
        if (kind && endswith(kind, "List") && strlen(kind) > 4)
                item_kind = strndup(kind, strlen(kind) - 4);

        for (size_t i = 0, n = json_object_array_length(items); i < n; i++) {
                json_object *item = json_object_array_get_idx(items, i);

                if (!json_object_is_type(item, json_type_object))
                        continue;
                if (item_kind && !json_get_member(item, "kind"))
                        (void) json_object_object_add(item, "kind", json_object_new_string(item_kind));
                if (api_version && !json_get_member(item, "apiVersion"))
                        (void) json_object_object_add(item, "apiVersion",
                                                      json_object_new_string(api_version));
                if (!watch_emit(w, KUBE_WATCH_ADDED, item, 0))
                        goto finish;
        }
        /* more pages: the next one; SYNCED once the last arrived */
        if (!w->continue_token && !watch_emit(w, KUBE_WATCH_SYNCED, NULL, 0))
                goto finish;

        r = watch_start(w);
        if (r < 0)
                watch_fail(w, r);

finish:
        kube_watch_unref(w);
}

static int watch_start_list(KubeWatch *w) {
        KubeClient *c = w->client;
        _cleanup_free_ char *path = NULL, *token = NULL;
        const char *sep = strchr(w->path, '?') ? "&" : "?";
        int r;

        if (w->continue_token) {
                /* a page after the first: the token carries the snapshot; no resourceVersion */
                token = url_escape(w->continue_token);
                if (!token)
                        return -ENOMEM;
                path = strdup_printf("%s%slimit=%u&continue=%s", w->path, sep, c->list_page_size, token);
        } else
                path = strdup_printf("%s%slimit=%u%s", w->path, sep, c->list_page_size,
                                     (w->flags & KUBE_WATCH_LIST_FROM_CACHE) && !w->listed ?
                                     "&resourceVersion=0" : "");
        if (!path)
                return -ENOMEM;
        r = call_new(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, watch_on_list, w, NULL,
                     c->request_timeout_usec, &w->call);
        if (r < 0)
                return r;
        w->streaming = false;
        return 0;
}

static int watch_start_stream(KubeWatch *w) {
        KubeClient *c = w->client;
        _cleanup_free_ char *rv = NULL, *path = NULL;
        unsigned timeout_sec;
        KubeCall *call;
        int r;

        timeout_sec = c->watch_timeout_sec > 0 ? c->watch_timeout_sec :
                WATCH_TIMEOUT_MIN_SEC + (unsigned) (random_u64() % WATCH_TIMEOUT_SPREAD_SEC);

        rv = url_escape(w->resource_version);
        if (!rv)
                return -ENOMEM;
        path = strdup_printf("%s%swatch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
                             w->path, strchr(w->path, '?') ? "&" : "?", rv, timeout_sec);
        if (!path)
                return -ENOMEM;

        r = call_new(c, "GET", path, NULL, NULL, 0, NULL, NULL, w,
                     timeout_sec * USEC_PER_SEC + WATCH_GRACE_USEC, &call);
        if (r < 0)
                return r;
        w->call = call;
        w->streaming = true;
        return 0;
}

static int watch_start(KubeWatch *w) {
        assert(!w->call);

        w->generation++;
        w->request_start_usec = now_usec(CLOCK_MONOTONIC);
        if (w->need_list || !w->resource_version)
                return watch_start_list(w);
        return watch_start_stream(w);
}

int kube_watch_line_parse(const char *line, size_t size, json_object **ret_event, const char **ret_type,
                          json_object **ret_object) {
        _cleanup_json_ json_object *event = NULL;
        json_object *object;
        const char *type;
        int r;

        r = json_parse(line, size, &event);
        if (r < 0)
                return r;
        type = json_get_string(event, "type");
        object = json_get(event, "object");
        if (!type || !object || !json_object_is_type(object, json_type_object))
                return -EBADMSG;
        *ret_type = type;
        *ret_object = object;
        *ret_event = TAKE_PTR(event);
        return 0;
}

/* Handles one line of the stream. The caller holds a ref and checks the generation after. */
static void watch_handle_line(KubeWatch *w, char *line, size_t size) {
        _cleanup_json_ json_object *event = NULL;
        json_object *object;
        const char *type, *rv;
        int r;

        r = kube_watch_line_parse(line, size, &event, &type, &object);
        if (r < 0) {
                watch_fail(w, r);
                return;
        }

        if (streq(type, "ERROR")) {
                int64_t code = 0;

                (void) json_get_int64(object, "code", &code);
                if (code == 410) {
                        /* Our resourceVersion is too old for the server's history: list again. */
                        log_debug("Watch %s: resourceVersion %s expired, listing again.", w->path,
                                  strna(w->resource_version));
                        w->need_list = true;
                        watch_restart(w);
                        return;
                }
                r = code > 0 ? kube_errno_from_result(CURLE_OK, (long) code, 0) : -EPROTO;
                watch_fail(w, r < 0 ? r : -EPROTO);
                return;
        }

        rv = json_get_string(object, "metadata.resourceVersion");
        if (!isempty(rv)) {
                r = free_and_strdup(&w->resource_version, rv);
                if (r < 0) {
                        watch_fail(w, r);
                        return;
                }
        }
        w->attempt = 0;         /* a healthy stream */

        if (streq(type, "ADDED"))
                (void) watch_emit(w, KUBE_WATCH_ADDED, object, 0);
        else if (streq(type, "MODIFIED"))
                (void) watch_emit(w, KUBE_WATCH_MODIFIED, object, 0);
        else if (streq(type, "DELETED"))
                (void) watch_emit(w, KUBE_WATCH_DELETED, object, 0);
        else if (!streq(type, "BOOKMARK"))
                log_debug("Watch %s: ignoring event of unknown type %s.", w->path, type);
}

/* Processes the complete lines call holds. The caller holds a ref. */
static void watch_dispatch_lines(KubeWatch *w, KubeCall *call) {
        unsigned generation = w->generation;
        long status = 0;

        call->stream_pending = false;
        /* A failed watch request carries a Status object, not events: its end handles it. */
        (void) curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200)
                return;

        while (watch_alive(w) && w->generation == generation) {
                char *line;
                size_t size;
                int r;

                r = kube_line_buffer_next(&call->lines, &line, &size);
                if (r == -EFBIG) {
                        watch_fail_line_too_long(w);
                        return;
                }
                if (r < 0) {
                        watch_fail(w, r);
                        return;
                }
                if (r == 0)
                        return;
                if (size == 0)
                        continue;
                watch_handle_line(w, line, size);
        }
}

static void watch_stream_done(KubeWatch *w, KubeCall *call, int error, long status) {
        unsigned generation;

        /* The call is freed by our caller. */
        if (w->call == call)
                w->call = NULL;
        w->streaming = false;
        kube_watch_ref(w);

        /* Events that arrived before the end, even one caused by a dropped connection, are
         * real: deliver them first. */
        generation = ++w->generation;
        if (status == 200) {
                watch_dispatch_lines(w, call);
                if (!watch_alive(w) || w->generation != generation)
                        goto finish;

                if (error == 0) {
                        char *rest;
                        size_t n = kube_line_buffer_rest(&call->lines, &rest);

                        while (n > 0 && strchr(" \t\r\n", rest[n - 1]))
                                rest[--n] = 0;
                        if (n > 0) {
                                watch_handle_line(w, rest, n);
                                if (!watch_alive(w) || w->generation != generation)
                                        goto finish;
                        }
                }
        }

        if (status == 410) {
                w->need_list = true;
                watch_restart(w);
        } else if (error == -EFBIG && status == 200)
                /* the only -EFBIG of a stream: the line buffer refused a line (no size cap on
                 * watch transfers otherwise); a refusal's body goes through it too, and is not
                 * an event line */
                watch_fail_line_too_long(w);
        else if (error < 0)
                watch_fail(w, error);
        else
                /* the server ended the watch (timeoutSeconds): resume from where we are */
                watch_restart(w);

finish:
        kube_watch_unref(w);
}

usec_t kube_watch_live_since(KubeWatch *w) {
        return w && watch_alive(w) ? w->live_since : USEC_INFINITY;
}

int kube_client_watch(KubeClient *c, const char *collection_path, KubeWatchHandler handler,
                      void *userdata, KubeWatch **ret) {
        return kube_client_watch_full(c, collection_path, 0, handler, userdata, ret);
}

int kube_client_watch_full(KubeClient *c, const char *collection_path, KubeWatchFlags flags,
                           KubeWatchHandler handler, void *userdata, KubeWatch **ret) {
        KubeWatch *w;
        int r;

        if (!c || !collection_path || collection_path[0] != '/' || !handler || !ret)
                return -EINVAL;
        if (c->closed)
                return -ESHUTDOWN;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->n_ref = 1;
        w->client = c;
        w->handler = handler;
        w->userdata = userdata;
        w->flags = flags;
        w->need_list = true;
        w->live_since = USEC_INFINITY;
        w->path = strdup(collection_path);
        if (!w->path) {
                free(w);
                return -ENOMEM;
        }
        LIST_PREPEND(c->watches, w);

        r = watch_start(w);
        if (r < 0) {
                kube_watch_free(w);
                return r;
        }

        *ret = w;
        return 0;
}
