/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>

#include "curl-event.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

#define TIMER_ACCURACY_USEC (1 * USEC_PER_MSEC)

typedef struct CurlSocket CurlSocket;
struct CurlSocket {
        CurlEvent *owner;
        sd_event_source *source;
        CurlSocket *prev, *next;
};

struct CurlEvent {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        CurlSocket *sockets;
        char *io_description;
        char *timer_description;
        CurlEventDispatch dispatch;
        void *userdata;
        bool stopped;
};

static void curl_socket_free(CurlEvent *ce, CurlSocket *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->source);
        if (s->next)
                s->next->prev = s->prev;
        if (s->prev)
                s->prev->next = s->next;
        else
                ce->sockets = s->next;
        free(s);
}

/* The owner may free ce in dispatch: nothing of ce is touched after it. */
static void curl_event_action(CurlEvent *ce, curl_socket_t fd, int flags) {
        CURLMcode m;
        int running;

        m = curl_multi_socket_action(ce->multi, fd, flags, &running);
        if (m != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(m));
        if (!ce->stopped)
                ce->dispatch(ce, ce->userdata);
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        CurlSocket *s = userdata;
        int flags = 0;

        if (revents & (EPOLLIN | EPOLLHUP))
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                flags |= CURL_CSELECT_ERR;
        /* s may be freed inside: curl removes the socket */
        curl_event_action(s->owner, fd, flags);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        curl_event_action(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlEvent *ce = userp;
        CurlSocket *s = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                (void) curl_multi_assign(ce->multi, fd, NULL);
                curl_socket_free(ce, s);
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (s) {
                r = sd_event_source_set_io_events(s->source, events);
                if (r < 0) {
                        log_debug_errno(r, "Failed to update I/O events of a curl socket: %m");
                        return -1;
                }
                return 0;
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -1;
        s->owner = ce;
        r = sd_event_add_io(ce->event, &s->source, fd, events, on_io, s);
        if (r < 0) {
                log_debug_errno(r, "Failed to watch a curl socket: %m");
                free(s);
                return -1;
        }
        (void) sd_event_source_set_description(s->source, ce->io_description);
        s->next = ce->sockets;
        if (s->next)
                s->next->prev = s;
        ce->sockets = s;
        (void) curl_multi_assign(ce->multi, fd, s);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        CurlEvent *ce = userp;
        usec_t usec;
        int r;

        if (ce->stopped)
                return 0;
        if (timeout_ms < 0) {
                if (ce->timer)
                        (void) sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF);
                return 0;
        }

        /* Even 0 means "from the event loop": curl must not be re-entered from here. */
        usec = (usec_t) timeout_ms * USEC_PER_MSEC;
        if (ce->timer) {
                r = sd_event_source_set_time_relative(ce->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ce->timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time_relative(ce->event, &ce->timer, CLOCK_MONOTONIC, usec, TIMER_ACCURACY_USEC,
                                               on_timer, ce);
                if (r >= 0) {
                        (void) sd_event_source_set_description(ce->timer, ce->timer_description);
                        r = sd_event_source_set_enabled(ce->timer, SD_EVENT_ONESHOT);
                }
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to arm the curl timer: %m");
                return -1;
        }
        return 0;
}

int curl_event_new(CurlEvent **ret, sd_event *event, const char *description, CurlEventDispatch dispatch,
                   void *userdata) {
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;

        if (!ret || !event || !description || !dispatch)
                return -EINVAL;
        ce = calloc(1, sizeof *ce);
        if (!ce)
                return -ENOMEM;
        ce->event = sd_event_ref(event);
        ce->dispatch = dispatch;
        ce->userdata = userdata;
        ce->io_description = strjoin(description, "-io");
        ce->timer_description = strjoin(description, "-timer");
        ce->multi = curl_multi_init();
        if (!ce->io_description || !ce->timer_description || !ce->multi)
                return -ENOMEM;
        if (curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce) != CURLM_OK)
                return -EIO;
        *ret = TAKE_PTR(ce);
        return 0;
}

void curl_event_stop(CurlEvent *ce) {
        if (!ce)
                return;
        ce->stopped = true;
        ce->timer = sd_event_source_disable_unref(ce->timer);
}

CurlEvent *curl_event_free(CurlEvent *ce) {
        if (!ce)
                return NULL;
        curl_event_stop(ce);
        if (ce->multi)
                (void) curl_multi_cleanup(ce->multi);
        while (ce->sockets)
                curl_socket_free(ce, ce->sockets);
        sd_event_unref(ce->event);
        free(ce->io_description);
        free(ce->timer_description);
        free(ce);
        return NULL;
}

CURLM *curl_event_multi(CurlEvent *ce) {
        return ce ? ce->multi : NULL;
}
