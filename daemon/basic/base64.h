/* SPDX-License-Identifier: Apache-2.0 */
/* Base64 (RFC 4648 standard alphabet, padded) as kubeconfig "-data" fields use it. Decoding skips
 * whitespace, so folded YAML scalars work. Pure, no logging. */
#pragma once

#include <stddef.h>

/* Decodes len bytes of s. The result is NUL-terminated (not counted in ret_size), so decoded PEM
 * can be used as a string. -EINVAL for a character outside the alphabet, bad padding or a length
 * that is not a multiple of 4 (whitespace not counted). */
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_size);
/* Encodes with padding and no line breaks; -ENOMEM or 0. */
int base64_encode(const void *data, size_t size, char **ret);
