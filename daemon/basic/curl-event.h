/* SPDX-License-Identifier: Apache-2.0 */
/* A libcurl multi handle driven by an sd-event loop: each of curl's sockets is an I/O source, its
 * timeout one timer (disabled while curl wants none, so an idle handle never wakes the loop).
 * After every curl_multi_socket_action() the owner's dispatch callback runs, outside every curl
 * callback: only there should transfers be completed, added or freed. The owner may free the
 * CurlEvent from its dispatch callback. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct CurlEvent CurlEvent;

typedef void (*CurlEventDispatch)(CurlEvent *ce, void *userdata);

/* description names the event sources ("<description>-io", "<description>-timer"). */
int curl_event_new(CurlEvent **ret, sd_event *event, const char *description, CurlEventDispatch dispatch,
                   void *userdata);
/* No more dispatches; the multi handle stays, for its transfers to be removed. */
void curl_event_stop(CurlEvent *ce);
CurlEvent *curl_event_free(CurlEvent *ce);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_free);

CURLM *curl_event_multi(CurlEvent *ce);
