/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers for single configuration values: booleans, bounded integers, socket addresses. Pure,
 * no logging. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int parse_boolean(const char *s);
/* Decimal, no sign, no trailing garbage, no overflow. */
int parse_unsigned(const char *s, unsigned *ret);
int parse_uint64(const char *s, unsigned long long *ret);

/* "ADDRESS:PORT" with a numeric IPv4 address, or "[ADDRESS]:PORT" with a numeric IPv6 one; port
 * 1 to 65535. No host names: an address to listen on is never looked up. -EINVAL otherwise. */
int parse_socket_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
