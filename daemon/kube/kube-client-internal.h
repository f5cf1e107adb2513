/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the Kubernetes client, exposed for its unit test: the one errno mapping, the
 * retry decision, back-off with full jitter, Retry-After parsing and the line splitter that cuts a
 * watch stream (arriving in arbitrary fragments) into JSON lines. No I/O, no logging. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube-client.h"
#include "time-util.h"

/* The mapping documented in kube-client.h, in one place. write_error is the error a write callback
 * stored before aborting a transfer (-EFBIG, -ENOMEM) or 0. With code == CURLE_OK it maps the HTTP
 * status alone (also used for the "code" of a watch ERROR event). */
int kube_errno_from_result(CURLcode code, long status, int write_error);

/* Whether a call with these flags that failed with error (from kube_errno_from_result()) may be
 * repeated: only idempotent calls, only for connection errors, timeouts, 5xx and 429. */
bool kube_error_is_retriable(KubeCallFlags flags, int error);

/* Capped exponential back-off with full jitter: a value in [0, min(max, initial * 2^attempt)],
 * chosen by random. attempt counts from 0. */
usec_t kube_backoff_usec(unsigned attempt, usec_t initial_usec, usec_t max_usec, uint64_t random);

/* Retry-After as delta-seconds or HTTP-date (relative to now_realtime_usec). */
int kube_parse_retry_after(const char *value, usec_t now_realtime_usec, usec_t *ret);

/* Splits a byte stream into lines. Lines are returned without "\n" (and without a "\r" before it),
 * NUL-terminated and writable, valid until the next feed. A line longer than max_line fails with
 * -EFBIG, detected as soon as the incomplete tail outgrows the cap. */
typedef struct KubeLineBuffer {
        char *data;
        size_t size;            /* bytes held, from data[0] */
        size_t allocated;
        size_t start;           /* first byte not yet returned */
        size_t scanned;         /* bytes after start known to hold no newline */
        size_t partial;         /* bytes after the last newline held */
        size_t max_line;
} KubeLineBuffer;

void kube_line_buffer_init(KubeLineBuffer *b, size_t max_line);
void kube_line_buffer_reset(KubeLineBuffer *b);
void kube_line_buffer_done(KubeLineBuffer *b);
int kube_line_buffer_feed(KubeLineBuffer *b, const void *data, size_t size);
/* 1 and the next complete line, 0 when no complete line is held, or -EFBIG. */
int kube_line_buffer_next(KubeLineBuffer *b, char **ret, size_t *ret_size);
/* What follows the last complete line (an unterminated last line at the end of a stream). */
size_t kube_line_buffer_rest(KubeLineBuffer *b, char **ret);

/* One line of a watch stream: {"type": T, "object": {...}}. 0 with the parsed event (the caller
 * owns it) and its type and object (borrowed from the event); -EBADMSG for anything else (or
 * -EFBIG, -ENOMEM from the JSON parser). */
int kube_watch_line_parse(const char *line, size_t size, json_object **ret_event, const char **ret_type,
                          json_object **ret_object);
